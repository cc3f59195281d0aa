// Which proxy a request goes through: the proxy URL (config, else HTTPS_PROXY / HTTP_PROXY), and
// NO_PROXY as curl reads it, so the broker, the Node client and the sh client (curl itself) agree.
// Pure: no I/O, the environment is handed in.
import { isIP } from 'node:net';

export interface ProxyUrl {
  url: URL;
  /** scheme://host:port, never the credentials: the only form that may be logged or shown. */
  display: string;
  /** `Basic …` for the Proxy-Authorization header, when the URL carries credentials. */
  authorization: string | undefined;
}

/** What a broker's outbound requests use: a proxy per target scheme, and the hosts that bypass it. */
export interface ProxyPlan {
  https: ProxyUrl | undefined;
  http: ProxyUrl | undefined;
  noProxy: NoProxy;
  /** Where the proxy came from, for the start-up log: `network.proxy`, `HTTPS_PROXY`… */
  source: { https?: string; http?: string; noProxy?: string };
}

/** Why a proxy URL cannot be used, or undefined. Accepts `host:port` (http:// assumed), as curl does. */
export function proxyUrlProblem(text: string): string | undefined {
  const parsed = parseProxyUrl(text);
  return typeof parsed === 'string' ? parsed : undefined;
}

export function parseProxyUrl(text: string): ProxyUrl | string {
  const raw = text.trim();
  if (raw === '') return 'empty';
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    return 'not a URL (expected http://host:port or https://host:port)';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `scheme ${url.protocol.replace(/:$/, '')} is not supported (http:// or https:// proxies only)`;
  if (!url.hostname) return 'has no host';
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) return 'must be scheme://[user:password@]host:port, without a path, query or fragment';
  let authorization: string | undefined;
  if (url.username || url.password) {
    try {
      authorization = `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`;
    } catch {
      return 'has badly percent-encoded credentials';
    }
  }
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  return { url, display: `${url.protocol}//${url.hostname}:${port}`, authorization };
}

// ---------------------------------------------------------------------------------------------
// NO_PROXY, as curl (7.86 and later) reads it: comma- or space-separated entries; `*` alone
// bypasses every host; a host name matches itself and its subdomains (a leading dot changes
// nothing: `.example.com` and `example.com` both match `api.example.com`); an IP address or CIDR
// matches a target given as an IP address. A host name never matches an IP, nor the reverse, and
// ports are not part of an entry.

export interface NoProxy {
  all: boolean;
  entries: string[];
}

export function parseNoProxy(value: string | readonly string[] | undefined): NoProxy {
  const text = typeof value === 'string' ? value : (value ?? []).join(',');
  const entries = text
    .split(/[\s,]+/)
    .map((e) => e.trim().toLowerCase())
    .filter((e) => e !== '');
  return { all: entries.length === 1 && entries[0] === '*', entries };
}

/** A no_proxy entry the matcher can never use (a port, a wildcard), or undefined. */
export function noProxyEntryProblem(entry: string): string | undefined {
  const e = entry.trim();
  if (e === '*') return undefined;
  if (e.includes('*')) return `"${e}": wildcards other than a lone "*" are not supported; write ".example.com" for a domain and its subdomains`;
  const [address, bits, ...rest] = e.split('/');
  if (bits !== undefined) {
    const family = isIP(address ?? '');
    if (family === 0 || rest.length > 0 || !/^\d{1,3}$/.test(bits) || Number(bits) > (family === 4 ? 32 : 128)) return `"${e}" is not a CIDR`;
    return undefined;
  }
  if (isIP(e) !== 0) return undefined;
  if (e.includes(':') || e.includes('[')) return `"${e}": entries name hosts, domains or CIDRs, without a port`;
  if (!/^\.?[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?$/i.test(e)) return `"${e}" is not a host name, a domain, an IP address or a CIDR`;
  return undefined;
}

function ipv4ToInt(ip: string): number {
  return ip.split('.').reduce((n, part) => n * 256 + Number(part), 0);
}

function ipv6ToBigInt(ip: string): bigint | undefined {
  // Expand `::` and a trailing dotted quad; isIP has already said the text is an IPv6 address.
  let text = ip;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const n = ipv4ToInt(dotted[1]!);
    text = `${text.slice(0, -dotted[1]!.length)}${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined ? [] : tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
  if (groups.length !== 8) return undefined;
  return groups.reduce((n, g) => (n << 16n) + BigInt(Number.parseInt(g, 16)), 0n);
}

function cidrMatch(target: string, family: 4 | 6, entry: string): boolean {
  const [address, bitsText] = entry.split('/') as [string, string | undefined];
  if (isIP(address) !== family) return false;
  const width = family === 4 ? 32 : 128;
  const bits = bitsText === undefined ? width : Number(bitsText);
  if (!Number.isInteger(bits) || bits < 0 || bits > width) return false;
  if (family === 4) {
    if (bits === 0) return true;
    const mask = bits === 32 ? 0xffffffff : ~(0xffffffff >>> bits) >>> 0;
    return ((ipv4ToInt(target) & mask) >>> 0) === ((ipv4ToInt(address) & mask) >>> 0);
  }
  const a = ipv6ToBigInt(target);
  const b = ipv6ToBigInt(address);
  if (a === undefined || b === undefined) return false;
  const shift = BigInt(width - bits);
  return a >> shift === b >> shift;
}

/** Whether a request to `hostname` bypasses the proxy. `hostname` as in URL.hostname (IPv6 in brackets). */
export function bypassesProxy(noProxy: NoProxy, hostname: string): boolean {
  if (noProxy.all) return true;
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase().replace(/\.$/, '');
  const family = isIP(host);
  for (const raw of noProxy.entries) {
    if (family === 4 || family === 6) {
      if (cidrMatch(host, family, raw)) return true;
      continue;
    }
    const entry = raw.replace(/\.$/, '').replace(/^\./, '');
    if (entry === '') continue;
    if (host === entry || host.endsWith(`.${entry}`)) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Where the proxy comes from.

export interface ProxySettings {
  /** network.proxy: one proxy for http:// and https:// targets; wins over the environment. */
  proxy?: string | undefined;
  /** network.no_proxy: wins over NO_PROXY. */
  noProxy?: readonly string[] | undefined;
  /** Read HTTPS_PROXY / HTTP_PROXY / NO_PROXY where the config does not say. */
  useEnv: boolean;
}

/** The first of the names that is set to a non-empty value: lower case before upper case, as curl. */
function fromEnv(env: NodeJS.ProcessEnv, names: string[]): { name: string; value: string } | undefined {
  for (const name of names) {
    const value = env[name];
    if (value !== undefined && value.trim() !== '') return { name, value };
  }
  return undefined;
}

export const HTTPS_PROXY_VARS = ['https_proxy', 'HTTPS_PROXY'];
export const HTTP_PROXY_VARS = ['http_proxy', 'HTTP_PROXY'];
export const NO_PROXY_VARS = ['no_proxy', 'NO_PROXY'];

/** The plan, or every problem found (a malformed proxy URL is refused, never ignored). */
export function proxyPlan(settings: ProxySettings, env: NodeJS.ProcessEnv): { plan?: ProxyPlan; problems: Array<{ path: string; message: string }> } {
  const problems: Array<{ path: string; message: string }> = [];
  const source: ProxyPlan['source'] = {};
  const parse = (text: string, where: string): ProxyUrl | undefined => {
    const p = parseProxyUrl(text);
    if (typeof p === 'string') {
      problems.push({ path: where, message: `proxy URL ${p}` });
      return undefined;
    }
    return p;
  };
  let https: ProxyUrl | undefined;
  let http: ProxyUrl | undefined;
  if (settings.proxy !== undefined) {
    https = http = parse(settings.proxy, 'network.proxy');
    source.https = source.http = 'network.proxy';
  } else if (settings.useEnv) {
    const s = fromEnv(env, HTTPS_PROXY_VARS);
    if (s) {
      https = parse(s.value, s.name);
      source.https = s.name;
    }
    const h = fromEnv(env, HTTP_PROXY_VARS);
    if (h) {
      http = parse(h.value, h.name);
      source.http = h.name;
    }
  }
  let noProxy = parseNoProxy(undefined);
  if (settings.noProxy !== undefined) {
    noProxy = parseNoProxy(settings.noProxy);
    source.noProxy = 'network.no_proxy';
  } else if (settings.useEnv) {
    const n = fromEnv(env, NO_PROXY_VARS);
    if (n) {
      noProxy = parseNoProxy(n.value);
      source.noProxy = n.name;
    }
  }
  if (problems.length > 0) return { problems };
  return { plan: { https, http, noProxy, source }, problems };
}

/** The proxy for one target URL, or undefined for a direct connection. */
export function proxyFor(plan: ProxyPlan, target: URL): ProxyUrl | undefined {
  const proxy = target.protocol === 'https:' ? plan.https : target.protocol === 'http:' ? plan.http : undefined;
  if (!proxy || bypassesProxy(plan.noProxy, target.hostname)) return undefined;
  return proxy;
}
