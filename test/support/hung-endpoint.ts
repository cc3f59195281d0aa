// Stand-ins for an AWS endpoint that hangs: the TCP connection is accepted, the request is read,
// and no answer ever comes. `startHungEndpoint` hangs on everything; `startHangingProxy` forwards
// to a real endpoint (moto) except for the requests `hang` picks (e.g. one IAM action).
import http from 'node:http';
import net from 'node:net';

export interface HungEndpoint {
  endpoint: string;
  /** Connections accepted so far. */
  connections: number;
  /** Requests received (and never answered) so far, by the first line of each. */
  requests: string[];
  close(): Promise<void>;
}

export async function startHungEndpoint(): Promise<HungEndpoint> {
  const sockets = new Set<net.Socket>();
  const state: HungEndpoint = {
    endpoint: '',
    connections: 0,
    requests: [],
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server = net.createServer((socket) => {
    state.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.on('data', (d: Buffer) => {
      for (const line of d.toString('latin1').split('\r\n')) if (/^(GET|POST|PUT) \S+ HTTP\/1\.[01]$/.test(line)) state.requests.push(line);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  state.endpoint = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  return state;
}

export interface HangingProxy {
  endpoint: string;
  /** Requests that were held without an answer (their form-encoded bodies). */
  held: string[];
  close(): Promise<void>;
}

/** Forwards every request to `target`, except those whose body `hang` selects: those never get an answer. */
export async function startHangingProxy(target: string, hang: (body: string) => boolean): Promise<HangingProxy> {
  const held: string[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      if (hang(body)) {
        held.push(body);
        return; // never answered
      }
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string' && !['host', 'connection', 'content-length'].includes(k)) headers[k] = v;
      fetch(`${target}${req.url ?? '/'}`, { method: req.method ?? 'GET', headers, ...(req.method === 'GET' ? {} : { body }) }).then(
        async (up) => {
          const text = await up.text();
          res.writeHead(up.status, { 'content-type': up.headers.get('content-type') ?? 'text/xml' });
          res.end(text);
        },
        () => {
          res.writeHead(502);
          res.end();
        },
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    held,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
