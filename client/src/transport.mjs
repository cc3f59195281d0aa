// @ts-check
// HTTP over node:http / node:https: a timeout per request, no redirects followed, bodies capped,
// failures classified (never sent, so the token was not used / maybe delivered).
//
// Not fetch(): Node 20 loads undici on the first fetch(), about 100 ms of a start-up whose whole
// purpose is to be quick; node:https is loaded only when a URL needs it. Nor `import http from
// 'node:http'`: on Node 22 and later, the ESM facade of node:http reads every export, and one of them
// (http.WebSocket) loads undici too — about 40 ms more. process.getBuiltinModule gives the module
// itself (Node >= 20.16 and 22.3, within `engines`).
//
// How a request reaches its origin is one function, `connectOptions`: directly, or through the
// egress proxy that HTTPS_PROXY / HTTP_PROXY name and NO_PROXY does not exclude (a CONNECT tunnel,
// proxy.mjs), with the broker's CA bundle (--ca-file) for the broker's origin.
import net from 'node:net';
import { PROG, VERSION } from './errors.mjs';
import { debug } from './log.mjs';
import { TunnelError, openTunnel, proxyFor } from './proxy.mjs';

const http = /** @type {typeof import('node:http')} */ (process.getBuiltinModule('node:http'));

export const MAX_BODY = 256 * 1024;

export class NetworkError extends Error {
  /**
   * @param {string} message words the sh client uses too ("cannot connect", "timed out after 5s")
   * @param {boolean} maybeDelivered whether the server may have seen the request
   * @param {string} [detail] the low-level cause (ECONNREFUSED, …), for -v
   */
  constructor(message, maybeDelivered, detail) {
    super(message);
    this.maybeDelivered = maybeDelivered;
    this.detail = detail;
  }
}

/** @typedef {{ status: number, headers: { get(name: string): string | undefined }, text: string }} HttpResponse */

/** Where proxy variables are read: main() hands in its environment. */
let proxyEnv = process.env;
/** @param {NodeJS.ProcessEnv} env */
export function useProxyEnvironment(env) {
  proxyEnv = env;
}

const announced = new Set();
/** -v says once per origin how it is reached: through which proxy (never its credentials), or directly despite one. */
function announce(/** @type {URL} */ url, /** @type {import('./proxy.mjs').Proxy | undefined} */ proxy) {
  if (announced.has(url.origin)) return;
  announced.add(url.origin);
  if (proxy) debug(`${url.origin}: through the proxy ${proxy.display} (${proxy.source})`);
  else if (proxyFor(url, { ...proxyEnv, no_proxy: '', NO_PROXY: '' })) debug(`${url.origin}: direct (NO_PROXY)`);
}

/**
 * The TLS (or plain) connection to `url`'s origin through a CONNECT tunnel. Errors of the proxy
 * connection itself are marked, so they read "cannot connect to the proxy", not to the broker.
 * @param {URL} url
 * @param {import('./proxy.mjs').Proxy} proxy
 * @param {Buffer | undefined} ca
 */
async function tunnelTo(url, proxy, ca) {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  let socket;
  try {
    socket = await openTunnel(proxy, host, port);
  } catch (e) {
    if (e && typeof e === 'object' && !(e instanceof TunnelError)) Object.assign(e, { viaProxy: true });
    throw e;
  }
  if (url.protocol !== 'https:') return socket;
  const tls = process.getBuiltinModule('node:tls');
  return tls.connect({ socket, ...(net.isIP(host) ? {} : { servername: host }), ...(ca ? { ca } : {}), ALPNProtocols: ['http/1.1'] });
}

/**
 * Request options that decide how to reach `url`'s origin: directly, or through the proxy; with
 * the broker's CA bundle for the broker's origin. One connection per request, none kept alive:
 * the client makes a request or two and exits.
 * @param {URL} url
 */
function connectOptions(url) {
  const ca = brokerCa && url.origin === brokerCa.origin ? brokerCa.ca : undefined;
  const proxy = proxyFor(url, proxyEnv);
  announce(url, proxy);
  if (!proxy) return { agent: false, ...(ca ? { ca } : {}) };
  return {
    agent: undefined,
    /** @type {(opts: object, cb: (err: Error | null, socket?: import('node:net').Socket) => void) => undefined} */
    createConnection: (_opts, cb) => {
      tunnelTo(url, proxy, ca).then(
        (socket) => cb(null, socket),
        (e) => cb(e),
      );
      return undefined;
    },
  };
}

/** @type {{ origin: string, ca: Buffer } | undefined} */
let brokerCa;
/**
 * --ca-file: trust these CA certificates, and only them, for requests to the broker's origin. The
 * CI provider's token endpoints keep the system's trust store.
 * @param {string} origin
 * @param {Buffer} ca
 */
export function trustCaFor(origin, ca) {
  brokerCa = { origin, ca };
}

/** Where a request went, for messages: origin and path, no query (it may carry ids), no trailing '/'. */
export function where(url) {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
  } catch {
    return 'the endpoint';
  }
}

const NEVER_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);
const RESOLVE = new Set(['ENOTFOUND', 'EAI_AGAIN']);

/** The same words as the sh client's, whatever the library says underneath. */
function classify(e) {
  if (e instanceof TunnelError) return new NetworkError(e.message, false, e.detail);
  const code = e && typeof e.code === 'string' ? e.code : undefined;
  if (e && e.viaProxy) {
    // The proxy was never reached (or dropped us before the tunnel was up): the broker saw nothing.
    if (code && RESOLVE.has(code)) return new NetworkError('cannot resolve the proxy host', false, code);
    if (code && NEVER_SENT.has(code)) return new NetworkError('cannot connect to the proxy', false, code);
    return new NetworkError('connection to the proxy lost', false, code ?? (e instanceof Error ? e.message : undefined));
  }
  if (code && RESOLVE.has(code)) return new NetworkError('cannot resolve the host', false, code);
  if (code && NEVER_SENT.has(code)) return new NetworkError('cannot connect', false, code);
  if (code && (/^ERR_TLS|^ERR_SSL|CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code) || code === 'EPROTO')) return new NetworkError('TLS error', true, code);
  return new NetworkError('connection lost', true, code ?? (e instanceof Error ? e.message : undefined));
}

/**
 * One HTTP request. Resolves with any status (3xx included: redirects are never followed, a
 * token would go with them); rejects with a NetworkError.
 * @param {string} url
 * @param {{ method?: string, headers?: Record<string, string>, body?: string, timeoutMs: number }} init
 * @returns {Promise<HttpResponse>}
 */
export async function httpRequest(url, { method = 'GET', headers = {}, body, timeoutMs }) {
  const u = new URL(url);
  const mod = u.protocol === 'https:' ? process.getBuiltinModule('node:https') : http;
  const allHeaders = { 'user-agent': `${PROG}/${VERSION} node/${process.versions.node}`, ...headers };
  if (body !== undefined) allHeaders['content-length'] = String(Buffer.byteLength(body));
  return new Promise((resolve, reject) => {
    let settled = false;
    let responding = false;
    /** @type {import('node:http').ClientRequest} */
    let req;
    const finish = (/** @type {any} */ err, /** @type {any} */ value) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) {
        req.destroy();
        reject(err);
      } else resolve(value);
    };
    const timer = setTimeout(() => {
      const secs = `${timeoutMs / 1000}s`;
      finish(new NetworkError(responding ? `timed out after ${secs} reading the response` : `timed out after ${secs}`, true, 'timeout'));
    }, timeoutMs);
    req = mod.request(u, { method, headers: allHeaders, ...connectOptions(u) }, (res) => {
      responding = true;
      const chunks = [];
      let size = 0;
      res.on('data', (/** @type {Buffer} */ chunk) => {
        size += chunk.length;
        if (size > MAX_BODY) finish(new NetworkError('response too large', true));
        else chunks.push(chunk);
      });
      res.on('end', () => {
        const h = res.headers;
        finish(undefined, {
          status: res.statusCode ?? 0,
          headers: { get: (name) => { const v = h[name.toLowerCase()]; return Array.isArray(v) ? v.join(', ') : v; } },
          text: Buffer.concat(chunks).toString('utf8'),
        });
      });
      res.on('error', () => finish(new NetworkError('connection lost while reading the response', true)));
      res.on('aborted', () => finish(new NetworkError('connection lost while reading the response', true)));
    });
    req.on('error', (e) => finish(responding ? new NetworkError('connection lost while reading the response', true) : classify(e)));
    req.end(body);
  });
}
