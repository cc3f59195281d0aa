// `credbroker serve` as a real child process, the way operators run it: tests give it a config
// file and talk to it over HTTP and signals.
import { spawn, type ChildProcess } from 'node:child_process';

/** Credentials the SDK can sign with; moto and the fake STS do not check them. */
export const TEST_AWS_ENV = { AWS_ACCESS_KEY_ID: 'AKIDBROKERTESTONLY00', AWS_SECRET_ACCESS_KEY: 'broker-test-secret-not-real' };

export interface ServeProcess {
  child: ChildProcess;
  url: string;
  /** The metrics listener's /metrics URL (when metrics.enabled) and the admin listener's URL (when admin.enabled). */
  metricsUrl: string | undefined;
  adminUrl: string | undefined;
  /** Everything the process wrote to stderr so far (its JSON logs). */
  stderr(): string;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Polls until `probe` holds; resolves with the milliseconds it took. */
export async function until(probe: () => boolean | Promise<boolean>, ms = 10_000, context: () => string = () => ''): Promise<number> {
  const started = Date.now();
  while (!(await probe())) {
    if (Date.now() - started > ms) throw new Error(`timed out after ${ms} ms\n${context().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return Date.now() - started;
}

export async function startServe(configFile: string, env: NodeJS.ProcessEnv = {}): Promise<ServeProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'server/src/cli.ts', 'serve', '--config', configFile], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...TEST_AWS_ENV, ...env },
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await until(() => /"url":"https?/.test(stderr) || child.exitCode !== null, 30_000, () => stderr);
  const m = /"url":"(https?:\/\/[^"]+)"/.exec(stderr);
  if (!m) throw new Error(`serve exited before listening:\n${stderr.slice(-2000)}`);
  return {
    child,
    url: m[1]!,
    metricsUrl: /"metrics_url":"(http:\/\/[^"]+)"/.exec(stderr)?.[1],
    adminUrl: /"admin_url":"(http:\/\/[^"]+)"/.exec(stderr)?.[1],
    stderr: () => stderr,
    stop(signal = 'SIGTERM') {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}
