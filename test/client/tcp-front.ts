// A TCP front for a server under test: forwards while `up`, refuses connections while `down`,
// accepts and never answers while `hang`; counts connections. Also gives a server a port chosen
// before it starts (a broker whose configured audience is its own URL).
import net from 'node:net';

/** A TCP front for the broker: `up` forwards, `down` refuses connections, `hang` accepts and never answers. */
export interface Front {
  url: string;
  connections: number;
  set(state: 'up' | 'down' | 'hang'): Promise<void>;
  close(): Promise<void>;
}

export async function startFront(target: string, opts: { port?: number } = {}): Promise<Front> {
  const { hostname, port: targetPort } = new URL(target);
  let state: 'up' | 'down' | 'hang' = 'up';
  const sockets = new Set<net.Socket>();
  let server: net.Server | undefined;
  let port = opts.port ?? 0;
  const front: Front = {
    url: '',
    connections: 0,
    set: async (next) => {
      state = next;
      if (next === 'down' && server) {
        for (const s of sockets) s.destroy();
        await new Promise<void>((resolve) => server!.close(() => resolve()));
        server = undefined;
      } else if (next !== 'down' && !server) await listen();
    },
    close: async () => front.set('down'),
  };
  const listen = () =>
    new Promise<void>((resolve) => {
      server = net.createServer((socket) => {
        front.connections += 1;
        sockets.add(socket);
        socket.on('close', () => sockets.delete(socket));
        socket.on('error', () => {});
        if (state === 'hang') return;
        const upstream = net.connect(Number(targetPort), hostname);
        upstream.on('error', () => socket.destroy());
        socket.pipe(upstream).pipe(socket);
      });
      server.listen(port, '127.0.0.1', () => {
        port = (server!.address() as net.AddressInfo).port;
        resolve();
      });
    });
  await listen();
  front.url = `http://127.0.0.1:${port}`;
  return front;
}
