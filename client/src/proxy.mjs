// @ts-check
// The egress proxy, as curl (and so the sh client) chooses it: https_proxy / HTTPS_PROXY for https://
// URLs, http_proxy / HTTP_PROXY for http:// ones (lower case first; an empty value is unset; no
// fallback from one to the other; ALL_PROXY is not read), minus NO_PROXY. NO_PROXY entries: `*`
// alone (every host); a host name, which also matches its subdomains (a leading dot changes
// nothing); an IP address or CIDR, which matches a target given as an IP. The broker reads them
// the same way (server/src/net/proxy.ts); test/client/proxy.test.ts holds all three to one table.
//
// The tunnel is a CONNECT over node:net (node:tls for an https:// proxy), then node:tls to the
// target over that socket: a few dozen lines, no dependency. Proxy credentials go in a
// Proxy-Authorization header and are never printed: only scheme://host:port is.
import net from 'node:net';
import { usage } from './errors.mjs';

/** @typedef {{ url: URL, display: string, authorization: string | undefined, source: string }} Proxy */

const HTTPS_VARS = ['https_proxy', 'HTTPS_PROXY'];
const HTTP_VARS = ['http_proxy', 'HTTP_PROXY'];
const NO_PROXY_VARS = ['no_proxy', 'NO_PROXY'];

/** @param {NodeJS.ProcessEnv} env @param {string[]} names */
function fromEnv(env, names) {
  for (const name of names) {
    const value = env[name];
    if (value !== undefined && value.trim() !== '') return { name, value };
  }
  return undefined;
}

/**
 * A proxy URL as curl takes it (host:port means http://host:port), or a usage error: a proxy that
 * cannot be used must stop the client before it spends a token, not be skipped.
 * @param {string} text
 * @param {string} source the variable it came from, for messages
 * @returns {Proxy}
 */
export function parseProxy(text, source) {
  const raw = text.trim();
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`;
  let url;
  try {
    url = new URL(withScheme);
  } catch {
    throw usage(`${source} is not a proxy URL (expected http://host:port)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw usage(`${source}: ${url.protocol.replace(/:$/, '')} proxies are not supported (http:// or https:// only)`);
  if (!url.hostname || (url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) {
    throw usage(`${source} must be scheme://[user:password@]host:port, without a path`);
  }
  let authorization;
  if (url.username || url.password) {
    try {
      authorization = `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`;
    } catch {
      throw usage(`${source}: badly percent-encoded credentials`);
    }
  }
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  return { url, display: `${url.protocol}//${url.hostname}:${port}`, authorization, source };
}

/** @param {string} ip */
function ipv4ToInt(ip) {
  return ip.split('.').reduce((n, part) => n * 256 + Number(part), 0);
}

/** @param {string} ip @returns {bigint | undefined} */
function ipv6ToBigInt(ip) {
  let text = ip;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const n = ipv4ToInt(dotted[1]);
    text = `${text.slice(0, -dotted[1].length)}${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
  }
  const [head, tail] = text.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
  if (groups.length !== 8) return undefined;
  return groups.reduce((n, g) => (n << 16n) + BigInt(Number.parseInt(g, 16)), 0n);
}

/** @param {string} target @param {number} family @param {string} entry */
function cidrMatch(target, family, entry) {
  const [address, bitsText] = entry.split('/');
  if (net.isIP(address) !== family) return false;
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

/**
 * Whether NO_PROXY sends `hostname` (as in URL.hostname) directly.
 * @param {string} noProxy
 * @param {string} hostname
 */
export function bypassesProxy(noProxy, hostname) {
  const entries = noProxy.split(/[\s,]+/).map((e) => e.trim().toLowerCase()).filter((e) => e !== '');
  if (entries.length === 1 && entries[0] === '*') return true;
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase().replace(/\.$/, '');
  const family = net.isIP(host);
  for (const raw of entries) {
    if (family !== 0) {
      if (cidrMatch(host, family, raw)) return true;
      continue;
    }
    const entry = raw.replace(/\.$/, '').replace(/^\./, '');
    if (entry !== '' && (host === entry || host.endsWith(`.${entry}`))) return true;
  }
  return false;
}

/**
 * The proxy for a request to `target`, or undefined for a direct connection.
 * @param {URL} target
 * @param {NodeJS.ProcessEnv} env
 * @returns {Proxy | undefined}
 */
export function proxyFor(target, env) {
  const found = fromEnv(env, target.protocol === 'https:' ? HTTPS_VARS : HTTP_VARS);
  if (!found) return undefined;
  const proxy = parseProxy(found.value, found.name);
  const noProxy = fromEnv(env, NO_PROXY_VARS);
  if (noProxy && bypassesProxy(noProxy.value, target.hostname)) return undefined;
  return proxy;
}

/** Every proxy variable the client may read must be usable: checked before a token is spent. @param {NodeJS.ProcessEnv} env */
export function checkProxyEnvironment(env) {
  for (const names of [HTTPS_VARS, HTTP_VARS]) {
    const found = fromEnv(env, names);
    if (found) parseProxy(found.value, found.name);
  }
}

/** Why a tunnel could not be opened, in the words both clients use. */
export class TunnelError extends Error {
  /** @param {string} message @param {string} [detail] */
  constructor(message, detail) {
    super(message);
    this.detail = detail;
  }
}

const MAX_CONNECT_RESPONSE = 16 * 1024;

/**
 * Opens a CONNECT tunnel to `host:port` through `proxy` and resolves with the socket, over which
 * the caller speaks TLS (https targets) or plain HTTP. Rejects with a TunnelError, or the socket's
 * own error (ECONNREFUSED… from the proxy connection).
 * @param {Proxy} proxy
 * @param {string} host
 * @param {number} port
 * @returns {Promise<import('node:net').Socket>}
 */
export async function openTunnel(proxy, host, port) {
  const proxyPort = Number(proxy.url.port || (proxy.url.protocol === 'https:' ? 443 : 80));
  const proxyHost = proxy.url.hostname.replace(/^\[|\]$/g, '');
  /** @type {import('node:net').Socket} */
  let socket;
  if (proxy.url.protocol === 'https:') {
    const tls = process.getBuiltinModule('node:tls');
    socket = tls.connect({ host: proxyHost, port: proxyPort, ...(net.isIP(proxyHost) ? {} : { servername: proxyHost }), ALPNProtocols: ['http/1.1'] });
  } else {
    socket = net.connect({ host: proxyHost, port: proxyPort });
  }
  const authority = net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    const fail = (/** @type {Error} */ e) => {
      cleanup();
      socket.destroy();
      reject(e);
    };
    const onData = (/** @type {Buffer} */ chunk) => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end === -1) {
        if (buffered.length > MAX_CONNECT_RESPONSE) fail(new TunnelError('the proxy sent an unreadable answer to CONNECT'));
        return;
      }
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(buffered.subarray(0, end).toString('latin1'));
      if (!status) return fail(new TunnelError('the proxy sent an unreadable answer to CONNECT'));
      if (status[1] !== '200') {
        const code = Number(status[1]);
        const auth = code === 407 || code === 401 ? ', proxy authentication required' : '';
        return fail(new TunnelError(`the proxy refused the tunnel (HTTP ${code}${auth})`, `CONNECT ${authority}`));
      }
      cleanup();
      // Anything after the blank line already belongs to the tunnel.
      const rest = buffered.subarray(end + 4);
      if (rest.length > 0) socket.unshift(rest);
      resolve(socket);
    };
    const onEnd = () => fail(new TunnelError('the proxy closed the connection during CONNECT'));
    const cleanup = () => {
      socket.off('data', onData);
      socket.off('error', fail);
      socket.off('end', onEnd);
    };
    socket.on('data', onData);
    socket.on('error', fail);
    socket.on('end', onEnd);
    const headers = [`CONNECT ${authority} HTTP/1.1`, `Host: ${authority}`, ...(proxy.authorization ? [`Proxy-Authorization: ${proxy.authorization}`] : [])];
    socket.write(`${headers.join('\r\n')}\r\n\r\n`);
  });
}
