// The servers the broker's listeners run on, and how they stop. At shutdown a listener drains:
// it stops accepting connections, lets every request in flight finish (an exchange already at
// STS gets its answer, and its audit record is written), answers those requests with
// `Connection: close`, closes idle keep-alive connections at once, and cuts whatever is still
// open at the deadline. With server.tls the listener is HTTPS, its certificate reloadable (tls.ts).
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { loadTls, watchFiles, type TlsSettings } from './tls.js';

export interface ListenerOptions {
  /** Requests still open this long are cut (exchanges end on their own at server.request_timeout_ms). */
  requestTimeoutMs: number;
  /**
   * Longer than the idle timeout of whatever keeps connections to us open (an ALB: 60 s): the side
   * that closes an idle connection must be the client's, or it can send a request on a socket we
   * are closing at that moment and see ECONNRESET (seen under load at 5 s).
   */
  keepAliveTimeoutMs: number;
  /** Serve HTTPS with these files (and require client certificates when client_ca_file is set). */
  tls?: TlsSettings | undefined;
  /** Told about every certificate (re)load, to log it. */
  onTlsLoad?: (event: TlsLoadEvent) => void;
}

export type TlsLoadEvent =
  | { trigger: string; ok: true; fingerprint256: string; subject: string; validTo: string }
  | { trigger: string; ok: false; error: string };

export interface Listener {
  server: http.Server;
  url: string;
  /** Re-reads the certificate and key; new connections use them, open ones are left alone. */
  reloadTls(trigger: string): TlsLoadEvent | undefined;
  /** Stop accepting, finish requests in flight, then close; connections left after `deadlineMs` are cut. */
  drain(deadlineMs: number): Promise<void>;
}

export async function startListener(handler: http.RequestListener, port: number, host: string, opts: ListenerOptions): Promise<Listener> {
  const tls = opts.tls;
  // A certificate that does not load stops the start (TlsConfigError names the file).
  const initial = tls ? loadTls(tls) : undefined;
  const server: http.Server = initial
    ? https.createServer({ ...initial.options, ...(tls?.client_ca_file ? { requestCert: true, rejectUnauthorized: true } : {}) }, handler)
    : http.createServer(handler);
  if (initial) opts.onTlsLoad?.({ trigger: 'start', ok: true, fingerprint256: initial.fingerprint256, subject: initial.subject, validTo: initial.validTo });
  const reloadTls = (trigger: string): TlsLoadEvent | undefined => {
    if (!tls) return undefined;
    let event: TlsLoadEvent;
    try {
      const next = loadTls(tls);
      (server as https.Server).setSecureContext(next.options);
      event = { trigger, ok: true, fingerprint256: next.fingerprint256, subject: next.subject, validTo: next.validTo };
    } catch (err) {
      event = { trigger, ok: false, error: (err as Error).message };
    }
    opts.onTlsLoad?.(event);
    return event;
  };
  const watcher = tls ? watchFiles([tls.cert_file, tls.key_file, ...(tls.client_ca_file ? [tls.client_ca_file] : [])], () => reloadTls('file-change')) : undefined;
  server.requestTimeout = opts.requestTimeoutMs;
  server.headersTimeout = 10_000;
  server.keepAliveTimeout = opts.keepAliveTimeoutMs;

  const inFlight = new Set<http.ServerResponse>();
  let draining = false;
  const closeIdleSoon = () => setImmediate(() => server.closeIdleConnections());
  server.on('request', (_req: http.IncomingMessage, res: http.ServerResponse) => {
    if (draining) {
      // Arrived on a kept-alive connection as the drain began: answer it, then close.
      res.setHeader('Connection', 'close');
      return;
    }
    inFlight.add(res);
    res.once('close', () => inFlight.delete(res));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => {
      watcher?.stop();
      reject(err);
    });
    server.listen(port, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;

  let drained: Promise<void> | undefined;
  return {
    server,
    url: `${tls ? 'https' : 'http'}://${shownHost}:${addr.port}`,
    reloadTls,
    drain(deadlineMs) {
      drained ??= new Promise<void>((resolve) => {
        draining = true;
        watcher?.stop();
        const cut = setTimeout(() => server.closeAllConnections(), deadlineMs);
        cut.unref();
        server.close(() => {
          clearTimeout(cut);
          resolve();
        });
        for (const res of inFlight) {
          // Not yet answered: the answer says Connection: close and Node ends the socket after it.
          if (!res.headersSent) res.setHeader('Connection', 'close');
          else res.once('finish', closeIdleSoon);
        }
        server.closeIdleConnections();
      });
      return drained;
    },
  };
}
