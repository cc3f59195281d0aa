// The broker's outbound network: how a request reaches an issuer, STS, IAM or a CI API — directly
// or through the egress proxy (network.proxy, else HTTPS_PROXY / HTTP_PROXY, minus NO_PROXY) — and
// which certificate authorities it trusts (the system's, plus network.ca_file; an issuer may add its
// own). One instance per process, built at start; its pools are kept alive and shared:
// - node:http(s) agents for the AWS SDK and the lean STS client: a plain keep-alive agent when
//   direct, https-proxy-agent (CONNECT) when proxied;
// - an undici dispatcher for fetch (discovery, JWKS, sinks): Agent or ProxyAgent per origin.
// Verification is never switched off: there is no option for it.
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { Agent as RoutingBase, type AgentConnectOpts } from 'agent-base';
import { HttpsProxyAgent } from 'https-proxy-agent';
import { Agent as UndiciAgent, Dispatcher, ProxyAgent, fetch as undiciFetch } from 'undici';
import { proxyFor, proxyPlan, type ProxyPlan, type ProxySettings, type ProxyUrl } from './proxy.js';
import { ProxyTunnelError, describeNetworkError } from './errors.js';

/** The network section once compiled: CA certificates already read (and checked) from their files. */
export interface NetworkConfig extends ProxySettings {
  /** PEM certificates of network.ca_file, added to the system roots (or alone with caFileOnly). */
  caCerts: string[] | undefined;
  caFile: string | undefined;
  caFileOnly: boolean;
}

export const DEFAULT_NETWORK: NetworkConfig = Object.freeze({ useEnv: true, caCerts: undefined, caFile: undefined, caFileOnly: false });

/** Extra trust for one issuer: its ca_file, alone or on top of the network's. */
export interface TrustSettings {
  caCerts: string[];
  only: boolean;
}

export interface Network {
  readonly plan: ProxyPlan;
  /** The node:http(s) agent for requests to this origin, decided once: direct or through the proxy. */
  agentFor(url: URL): http.Agent;
  /** Agents that decide per host, for the AWS SDK's NodeHttpHandler (its endpoints resolve later). destroy() on them is harmless. */
  readonly httpAgent: http.Agent;
  readonly httpsAgent: https.Agent;
  /** fetch (undici) through this network. */
  fetch: typeof fetch;
  /** The same proxy, trusting an issuer's CA file too (or only it). Cached per certificate set. */
  withTrust(trust: TrustSettings | undefined): Network;
  /** The failure of a request to `url`, in words (TLS reason, host, whether the proxy was in the way). */
  describeError(err: unknown, url: string | URL): string;
  /** For the start-up log: never a credential. */
  summary(): Record<string, unknown>;
  close(): Promise<void>;
}

/** The CAs Node trusts by default (bundled roots + NODE_EXTRA_CA_CERTS), to which a CA file is added. */
function defaultRoots(env: NodeJS.ProcessEnv): string[] {
  const get = (tls as { getCACertificates?: (kind: string) => string[] }).getCACertificates;
  if (typeof get === 'function') return get('default');
  const extra: string[] = [];
  const file = env.NODE_EXTRA_CA_CERTS;
  if (file) {
    try {
      extra.push(readFileSync(file, 'utf8'));
    } catch {
      // Node itself warns about an unreadable NODE_EXTRA_CA_CERTS at start.
    }
  }
  return [...tls.rootCertificates, ...extra];
}

/** The `ca` option for TLS connections, or undefined for Node's defaults (no CA file configured). */
function caOption(base: string[] | undefined, caCerts: string[] | undefined, only: boolean, env: NodeJS.ProcessEnv): string[] | undefined {
  if (!caCerts || caCerts.length === 0) return base;
  if (only) return caCerts;
  return [...(base ?? defaultRoots(env)), ...caCerts];
}

const KEEP_ALIVE = { keepAlive: true, maxSockets: 128 } as const;

/**
 * https-proxy-agent with the target's CA bundle (the library takes TLS options from the request,
 * which the AWS SDK does not set) and a refused tunnel as an error: the library would hand the
 * proxy's 407 page to the caller as if the target had answered it.
 */
class TunnelAgent extends HttpsProxyAgent<string> {
  constructor(
    proxy: ProxyUrl,
    private readonly targetCa: string[] | undefined,
    proxyCa: string[] | undefined,
  ) {
    // The URL without credentials (the library's debug output prints it); they go in a header.
    super(proxy.display, {
      ...KEEP_ALIVE,
      ...(proxyCa ? { ca: proxyCa } : {}),
      headers: proxy.authorization ? { 'Proxy-Authorization': proxy.authorization } : {},
    });
  }

  override async connect(req: http.ClientRequest, opts: AgentConnectOpts): Promise<import('node:net').Socket> {
    let status: number | undefined;
    req.once('proxyConnect', (connect: { statusCode: number }) => (status = connect.statusCode));
    const socket = await super.connect(req, this.targetCa ? ({ ...opts, ca: this.targetCa } as AgentConnectOpts) : opts);
    if (status !== undefined && status !== 200) {
      socket.destroy();
      throw new ProxyTunnelError(`${opts.host}:${opts.port}`, status);
    }
    return socket;
  }
}

/** An agent that hands each request to the direct or the proxy agent of its host (decision cached per host). */
class RoutingAgent extends RoutingBase {
  constructor(
    private readonly pick: (url: URL) => http.Agent,
    secure: boolean,
  ) {
    super({ keepAlive: true });
    this.protocol = secure ? 'https:' : 'http:';
  }

  override connect(_req: http.ClientRequest, opts: AgentConnectOpts): http.Agent {
    const scheme = opts.secureEndpoint ? 'https' : 'http';
    const host = opts.host && opts.host.includes(':') && !opts.host.startsWith('[') ? `[${opts.host}]` : (opts.host ?? 'localhost');
    return this.pick(new URL(`${scheme}://${host}:${opts.port}`));
  }

  /** The pools belong to the network, which closes them; an SDK client's destroy() must not. */
  override destroy(): void {}
}

/** A dispatcher that sends each origin to the direct agent or the proxy agent. */
class RoutingDispatcher extends Dispatcher {
  constructor(private readonly pick: (origin: URL) => Dispatcher) {
    super();
  }

  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const origin = typeof options.origin === 'string' ? new URL(options.origin) : options.origin!;
    return this.pick(origin as URL).dispatch(options, handler);
  }
}

class OutboundNetwork implements Network {
  readonly httpAgent: http.Agent;
  readonly httpsAgent: https.Agent;
  private readonly direct: { http: http.Agent; https: https.Agent };
  private readonly tunnels = new Map<string, TunnelAgent>();
  private readonly decisions = new Map<string, http.Agent>();
  private readonly undiciDirect: UndiciAgent;
  private readonly undiciProxies = new Map<string, ProxyAgent>();
  private readonly dispatcher: Dispatcher;
  private readonly trusted = new Map<string, OutboundNetwork>();
  private readonly ca: string[] | undefined;

  constructor(
    readonly plan: ProxyPlan,
    private readonly cfg: { caFile: string | undefined; caCerts: string[] | undefined; caFileOnly: boolean },
    private readonly env: NodeJS.ProcessEnv,
    /** The network's own CA option, for the proxy connection itself (an https:// proxy). */
    private readonly proxyCa: string[] | undefined,
    ca: string[] | undefined,
  ) {
    this.ca = ca;
    const tlsOpts = ca ? { ca } : {};
    this.direct = { http: new http.Agent(KEEP_ALIVE), https: new https.Agent({ ...KEEP_ALIVE, ...tlsOpts }) };
    this.httpAgent = new RoutingAgent((u) => this.agentFor(u), false);
    this.httpsAgent = new RoutingAgent((u) => this.agentFor(u), true) as unknown as https.Agent;
    this.undiciDirect = new UndiciAgent({ connect: tlsOpts });
    this.dispatcher = new RoutingDispatcher((origin) => this.dispatcherFor(origin));
  }

  agentFor(url: URL): http.Agent {
    const key = `${url.protocol}//${url.host}`;
    let agent = this.decisions.get(key);
    if (!agent) {
      const proxy = proxyFor(this.plan, url);
      if (!proxy) agent = url.protocol === 'https:' ? this.direct.https : this.direct.http;
      else {
        // CONNECT for http:// targets too: one path, and no request ever shows the proxy a header.
        const tunnelKey = `${url.protocol}|${proxy.url.href}`;
        agent = this.tunnels.get(tunnelKey);
        if (!agent) {
          const tunnel = new TunnelAgent(proxy, url.protocol === 'https:' ? this.ca : undefined, this.proxyCa);
          this.tunnels.set(tunnelKey, tunnel);
          agent = tunnel;
        }
      }
      this.decisions.set(key, agent);
    }
    return agent;
  }

  private dispatcherFor(origin: URL): Dispatcher {
    const proxy = proxyFor(this.plan, origin);
    if (!proxy) return this.undiciDirect;
    let agent = this.undiciProxies.get(proxy.url.href);
    if (!agent) {
      agent = new ProxyAgent({
        uri: proxy.display,
        ...(proxy.authorization ? { token: proxy.authorization } : {}),
        ...(this.ca ? { requestTls: { ca: this.ca } } : {}),
        ...(this.proxyCa ? { proxyTls: { ca: this.proxyCa } } : {}),
      });
      this.undiciProxies.set(proxy.url.href, agent);
    }
    return agent;
  }

  fetch: typeof fetch = (input, init) =>
    undiciFetch(input as Parameters<typeof undiciFetch>[0], { ...(init as object), dispatcher: this.dispatcher } as Parameters<typeof undiciFetch>[1]) as unknown as Promise<Response>;

  withTrust(trust: TrustSettings | undefined): Network {
    if (!trust || trust.caCerts.length === 0) return this;
    const key = `${trust.only}|${trust.caCerts.join('')}`;
    let n = this.trusted.get(key);
    if (!n) {
      n = new OutboundNetwork(this.plan, this.cfg, this.env, this.proxyCa, caOption(this.ca, trust.caCerts, trust.only, this.env));
      this.trusted.set(key, n);
    }
    return n;
  }

  describeError(err: unknown, url: string | URL): string {
    const text = describeNetworkError(err, url);
    let proxied = false;
    try {
      proxied = proxyFor(this.plan, typeof url === 'string' ? new URL(url) : url) !== undefined;
    } catch {
      proxied = false;
    }
    // The proxy's address is in the start-up log; messages (which /readyz shows) only say it was in the way.
    return proxied && !(err instanceof ProxyTunnelError) && !text.startsWith('the proxy') ? `${text}, through the proxy` : text;
  }

  summary(): Record<string, unknown> {
    const { https: s, http: h, noProxy, source } = this.plan;
    return {
      https_proxy: s ? `${s.display}${s.authorization ? ' (with credentials)' : ''}` : 'none',
      http_proxy: h ? `${h.display}${h.authorization ? ' (with credentials)' : ''}` : 'none',
      ...(source.https || source.http ? { proxy_from: [...new Set([source.https, source.http].filter(Boolean))].join(', ') } : {}),
      no_proxy: noProxy.all ? ['*'] : noProxy.entries,
      ...(source.noProxy ? { no_proxy_from: source.noProxy } : {}),
      ca_file: this.cfg.caFile ?? 'none',
      ...(this.cfg.caFile ? { ca_file_only: this.cfg.caFileOnly } : {}),
    };
  }

  async close(): Promise<void> {
    for (const n of this.trusted.values()) await n.close();
    this.direct.http.destroy();
    this.direct.https.destroy();
    for (const t of this.tunnels.values()) t.destroy();
    await Promise.all([this.undiciDirect.close(), ...[...this.undiciProxies.values()].map((a) => a.close())]);
  }
}

export class NetworkConfigError extends Error {
  override readonly name = 'NetworkConfigError';
}

/** The network for a compiled `network` section and an environment; a malformed proxy URL throws. */
export function createNetwork(cfg: NetworkConfig = DEFAULT_NETWORK, env: NodeJS.ProcessEnv = process.env): Network {
  const { plan, problems } = proxyPlan(cfg, env);
  if (!plan) throw new NetworkConfigError(problems.map((p) => `${p.path}: ${p.message}`).join('; '));
  const ca = caOption(undefined, cfg.caCerts, cfg.caFileOnly, env);
  return new OutboundNetwork(plan, cfg, env, ca, ca);
}

let processDefault: Network | undefined;
/** The network of adapters built without one: the environment's proxy, the system's CAs. */
export function defaultNetwork(): Network {
  processDefault ??= createNetwork(DEFAULT_NETWORK, process.env);
  return processDefault;
}

