// A minimal HTTP server for the CI API stand-ins: JSON bodies, a route table, request log, and
// fault injection (answer N write requests with a status, e.g. 500) shared by every stand-in.
import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';

export interface ApiRequest {
  method: string;
  path: string;
  /** Path segments, percent-decoded. */
  segments: string[];
  /** Raw (still encoded) segments, for APIs that put an encoded slug in one segment. */
  rawSegments: string[];
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  body: unknown;
}

export interface ApiResponse {
  status: number;
  body?: unknown;
}

export type Handler = (req: ApiRequest) => ApiResponse | Promise<ApiResponse>;

export interface Faults {
  /** The next `count` write requests (POST/PUT/PATCH) answer `status`. */
  failWrites(count: number, status?: number): void;
  /** Every write answers `status` until cleared. */
  failAllWrites(status?: number): void;
  clear(): void;
}

export interface StandIn extends Faults {
  url: string;
  log: Array<{ method: string; path: string; status: number }>;
  close(): Promise<void>;
}

/** Where a stand-in listens: `tls` serves HTTPS with a certificate from test/support/certs.ts; `host` another loopback address. */
export interface ListenOptions {
  tls?: { cert: string; key: string };
  host?: string;
}

export async function startStandIn(handler: Handler, listen: ListenOptions = {}): Promise<StandIn> {
  let failCount = 0;
  let failAll = false;
  let failStatus = 500;
  const log: StandIn['log'] = [];
  const listener: http.RequestListener = (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const url = new URL(req.url ?? '/', 'http://x');
        const rawSegments = url.pathname.split('/').filter(Boolean);
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown;
        try {
          body = text ? JSON.parse(text) : undefined;
        } catch {
          body = text;
        }
        const method = req.method ?? 'GET';
        let out: ApiResponse;
        const isWrite = method === 'POST' || method === 'PUT' || method === 'PATCH';
        if (isWrite && (failAll || failCount > 0)) {
          if (!failAll) failCount--;
          out = { status: failStatus, body: { message: 'injected failure' } };
        } else {
          try {
            out = await handler({
              method,
              path: url.pathname,
              segments: rawSegments.map(decodeURIComponent),
              rawSegments,
              query: url.searchParams,
              headers: req.headers,
              body,
            });
          } catch (err) {
            out = { status: 500, body: { message: String(err) } };
          }
        }
        log.push({ method, path: url.pathname, status: out.status });
        if (out.body === undefined) {
          res.writeHead(out.status);
          res.end();
        } else {
          res.writeHead(out.status, { 'content-type': 'application/json; charset=utf-8' });
          res.end(JSON.stringify(out.body));
        }
      })();
    });
  };
  const server = listen.tls ? https.createServer({ cert: readFileSync(listen.tls.cert), key: readFileSync(listen.tls.key) }, listener) : http.createServer(listener);
  server.keepAliveTimeout = 500;
  const host = listen.host ?? '127.0.0.1';
  await new Promise<void>((resolve) => server.listen(0, host, () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `${listen.tls ? 'https' : 'http'}://${host}:${port}`,
    log,
    failWrites(count, status = 500) {
      failCount = count;
      failStatus = status;
    },
    failAllWrites(status = 500) {
      failAll = true;
      failStatus = status;
    },
    clear() {
      failAll = false;
      failCount = 0;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export const json = (status: number, body?: unknown): ApiResponse => (body === undefined ? { status } : { status, body });
