// A real forward proxy on loopback: Debian's tinyproxy (apt-get install tinyproxy; .ci/run installs
// it), started per test file with its own config and log. Tests read the proxy's own log to see
// which requests went through it: "Request (file descriptor N): CONNECT host:port HTTP/1.1" for a
// tunnel, "GET http://host:port/path HTTP/1.1" for a forwarded plain request.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

const TINYPROXY = ['/usr/bin/tinyproxy', '/usr/sbin/tinyproxy'].find((p) => spawnSync(p, ['-v']).status === 0);

/** Why the proxy tests cannot run here, or undefined: they are skipped saying so, never silently. */
export const forwardProxyMissing: string | undefined = TINYPROXY ? undefined : 'tinyproxy is not installed (apt-get install tinyproxy; .ci/run does it)';

export interface ForwardProxy {
  /** http://127.0.0.1:PORT, without credentials. */
  url: string;
  /** The URL with the basic-auth credentials, when the proxy requires them. */
  authUrl: string;
  port: number;
  /** The request lines the proxy logged (method and target), in order. */
  requests(): string[];
  /** Every line of the proxy's own log. */
  log(): string;
  close(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function listening(port: number, child: ChildProcess, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`tinyproxy exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('tinyproxy did not start listening');
}

export async function startForwardProxy(opts: { basicAuth?: { user: string; password: string } } = {}): Promise<ForwardProxy> {
  if (!TINYPROXY) throw new Error(forwardProxyMissing);
  const dir = mkdtempSync(path.join(tmpdir(), 'credbroker-proxy-'));
  const logFile = path.join(dir, 'tinyproxy.log');
  let child: ChildProcess | undefined;
  let port = 0;
  // A port found free may be taken before tinyproxy binds it: try a few.
  for (let attempt = 0; attempt < 5 && !child; attempt++) {
    port = await freePort();
    const conf = [
      `Port ${port}`,
      'Listen 127.0.0.1',
      'Timeout 60',
      `LogFile "${logFile}"`,
      'LogLevel Info',
      'MaxClients 200',
      'Allow 127.0.0.1',
      'DisableViaHeader Yes',
      // No ConnectPort line: CONNECT to any port (the stand-ins listen on random ones).
      ...(opts.basicAuth ? [`BasicAuth ${opts.basicAuth.user} ${opts.basicAuth.password}`] : []),
    ].join('\n');
    writeFileSync(path.join(dir, 'tinyproxy.conf'), `${conf}\n`);
    const c = spawn(TINYPROXY, ['-d', '-c', path.join(dir, 'tinyproxy.conf')], { stdio: 'ignore' });
    try {
      await listening(port, c);
      child = c;
    } catch {
      c.kill('SIGKILL');
    }
  }
  if (!child) throw new Error('tinyproxy could not be started');
  const running = child;
  const read = () => {
    try {
      return readFileSync(logFile, 'utf8');
    } catch {
      return '';
    }
  };
  const url = `http://127.0.0.1:${port}`;
  const auth = opts.basicAuth ? `${encodeURIComponent(opts.basicAuth.user)}:${encodeURIComponent(opts.basicAuth.password)}@` : '';
  return {
    url,
    authUrl: `http://${auth}127.0.0.1:${port}`,
    port,
    log: read,
    requests: () =>
      read()
        .split('\n')
        .map((l) => /Request \(file descriptor \d+\): (\S+ \S+)/.exec(l)?.[1])
        .filter((r): r is string => r !== undefined),
    close: async () => {
      if (running.exitCode === null) {
        const exited = new Promise((r) => running.once('exit', r));
        running.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
        if (running.exitCode === null) running.kill('SIGKILL');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
