// @ts-check
// HTTP over node:http / node:https: a timeout per request, no redirects followed, bodies capped,
// failures classified (never sent, so the token was not used / maybe delivered).
//
// Not fetch(): Node 20 loads undici on the first fetch(), about 100 ms of a start-up whose whole
// purpose is to be quick; node:https is loaded only when a URL needs it.
//
// How a request reaches its origin is one function, `connectOptions`: today it connects directly.
// A proxy (HTTPS_PROXY/NO_PROXY: CONNECT over node:http, then node:tls over that socket) and a
// private CA (--ca-file) slot in there, without touching the callers.
import http from 'node:http';
import { PROG, VERSION } from './errors.mjs';

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

/**
 * Request options that decide how to reach `_url`'s origin: the seam for a proxy or a CA bundle.
 * One connection per request, none kept alive: the client makes a request or two and exits.
 * @param {URL} _url
 */
function connectOptions(_url) {
  return { agent: false, ...(brokerCa && _url.origin === brokerCa.origin ? { ca: brokerCa.ca } : {}) };
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
  const code = e && typeof e.code === 'string' ? e.code : undefined;
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
  const mod = u.protocol === 'https:' ? await import('node:https') : http;
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
