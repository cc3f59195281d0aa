// A tiny loopback HTTP server for CI-provider token endpoints: records every request and can be
// told to fail the next N requests (to exercise the client's retries and failure paths).
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  /** The raw query string, exactly as sent (checks that an existing query was kept intact). */
  rawQuery: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface ProviderServer {
  origin: string;
  requests: RecordedRequest[];
  /** Answer the next requests with these replies (in order) before behaving normally again. */
  failNext(...replies: Reply[]): void;
  /** Answer every request with this reply until cleared (undefined). */
  failAlways(reply: Reply | undefined): void;
  close(): Promise<void>;
}

export async function startProviderServer(handle: (req: RecordedRequest) => Promise<Reply> | Reply): Promise<ProviderServer> {
  const queued: Reply[] = [];
  let always: Reply | undefined;
  const requests: RecordedRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const rec: RecordedRequest = {
        method: req.method ?? 'GET',
        path: url.pathname,
        query: url.searchParams,
        rawQuery: url.search.slice(1),
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(rec);
      const send = (r: Reply) => {
        res.writeHead(r.status, { 'content-type': 'application/json', ...r.headers });
        res.end(r.body === undefined ? '' : typeof r.body === 'string' ? r.body : JSON.stringify(r.body));
      };
      const scripted = always ?? queued.shift();
      if (scripted) return send(scripted);
      Promise.resolve(handle(rec)).then(send, () => send({ status: 500, body: { message: 'handler failed' } }));
    });
  });
  server.keepAliveTimeout = 500;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    requests,
    failNext: (...replies) => queued.push(...replies),
    failAlways: (reply) => {
      always = reply;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Mints a token for an audience: a real signed JWT in end-to-end tests, a JWT-shaped fake elsewhere. */
export type Mint = (audience: string | undefined) => Promise<string>;

/** A JWT-shaped, unsigned token whose payload says who minted it and for which audience. */
export function fakeJwt(claims: Record<string, unknown>): string {
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const sig = Buffer.from(`${Math.random()}-${Date.now()}`).toString('base64url');
  return `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64({ jti: `${Date.now()}-${Math.random()}`, ...claims })}.${sig}`;
}

/** The payload of a JWT (no verification: for asserting what a client sent). */
export function jwtPayload(token: string): Record<string, unknown> {
  const part = token.split('.')[1] ?? '';
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>;
}

export const fakeMint =
  (provider: string): Mint =>
  async (audience) =>
    fakeJwt({ provider, aud: audience ?? `default-audience-of-${provider}` });
