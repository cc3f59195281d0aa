// The servers the broker's listeners run on, and how they stop. At shutdown a listener drains:
// it stops accepting connections, lets every request in flight finish (an exchange already at
// STS gets its answer, and its audit record is written), answers those requests with
// `Connection: close`, closes idle keep-alive connections at once, and cuts whatever is still
// open at the deadline.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ListenerOptions {
  /** Requests still open this long are cut (exchanges end on their own at server.request_timeout_ms). */
  requestTimeoutMs: number;
}

export interface Listener {
  server: http.Server;
  url: string;
  /** Stop accepting, finish requests in flight, then close; connections left after `deadlineMs` are cut. */
  drain(deadlineMs: number): Promise<void>;
}

export async function startListener(handler: http.RequestListener, port: number, host: string, opts: ListenerOptions): Promise<Listener> {
  const server = http.createServer(handler);
  server.requestTimeout = opts.requestTimeoutMs;
  server.headersTimeout = 10_000;
  server.keepAliveTimeout = 5000;

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
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;

  let drained: Promise<void> | undefined;
  return {
    server,
    url: `http://${shownHost}:${addr.port}`,
    drain(deadlineMs) {
      drained ??= new Promise<void>((resolve) => {
        draining = true;
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
