// `npm start` as a newcomer runs it: dev mode starts the dev issuer, moto and the broker; the
// printed commands, pasted into a shell, give the real AWS CLI an assumed-role identity through the
// real client; stopping npm (SIGTERM, or SIGKILL) leaves no process behind.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../support/moto.js';
import { venvDir } from '../support/venv.js';
import { until } from '../support/serve-process.js';

const root = path.resolve(import.meta.dirname, '../..');
const dirs: string[] = [];
// What `npm ci` does (prepare): dist/ up to date before the first `npm start`, whose own build is
// then a no-op, so a test's time is dev mode's, not the compiler's (builds take turns under a lock).
beforeAll(() => {
  const r = spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: root, encoding: 'utf8', timeout: 300_000 });
  expect(r.status, r.stderr).toBe(0);
}, 300_000);
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface DevRun {
  child: ChildProcess;
  port: number;
  dir: string;
  stdout(): string;
  stderr(): string;
  exited: Promise<number | null>;
}

async function npmStart(env: NodeJS.ProcessEnv = {}): Promise<DevRun> {
  const dir = mkdtempSync(path.join(tmpdir(), 'credbroker-dev-'));
  dirs.push(dir);
  const port = await freePort();
  const child = spawn('npm', ['start', '--', '--port', String(port), '--dir', dir], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, CREDBROKER_VENV: venvDir, ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await until(() => /credbroker listening/.test(stderr) || child.exitCode !== null, 90_000, () => stderr);
  if (child.exitCode !== null) throw new Error(`npm start exited:\n${stderr}`);
  return { child, port, dir, stdout: () => stdout, stderr: () => stderr, exited };
}

/** Processes whose command line mentions `needle` (the dev dir for the broker, the port for moto). */
function processesWith(needle: string): string[] {
  const out = spawnSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' }).stdout;
  return out.split('\n').filter((l) => l.includes(needle) && !l.includes('ps -eo'));
}

const portOpen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });

/** The commands dev mode printed, exactly as a person would paste them. */
const printedCommands = (run: DevRun) => run.stdout().split('\n').filter((l) => l.endsWith('# dev'));

describe('npm start (dev mode)', () => {
  it('prints commands that give the real AWS CLI an assumed-role identity, and says dev on every line', async () => {
    const run = await npmStart();
    try {
      const commands = printedCommands(run);
      expect(commands).toHaveLength(5);
      expect(commands.at(-1)).toMatch(/aws sts get-caller-identity\s+# dev$/);
      // Pasted into a fresh shell in another directory, with nothing else set up.
      const shell = spawnSync('sh', ['-c', commands.join('\n')], {
        cwd: root,
        encoding: 'utf8',
        env: { PATH: process.env.PATH, HOME: run.dir },
        timeout: 60_000,
      });
      expect(shell.status, shell.stderr).toBe(0);
      const identity = JSON.parse(shell.stdout) as { Arn: string; Account: string };
      expect(identity.Arn).toMatch(/^arn:aws:sts::123456789012:assumed-role\/deploy\/gh-100000002-\d+-1$/);
      // The exchange is in the dev audit trail (the keyed chain in the dev store).
      const audit = spawnSync(process.execPath, ['--import', 'tsx', 'server/src/cli.ts', 'audit', '--config', path.join(run.dir, 'credbroker-dev.yaml'), '--decision', 'allow', '--json'], {
        cwd: root,
        encoding: 'utf8',
        timeout: 30_000,
      });
      expect(audit.stdout).toContain('"decision":"allow"');
      // The console is on the admin listener, on loopback, behind the labelled dev login.
      const consoleUrl = /credbroker dev │ console (http:\/\/127\.0\.0\.1:\d+\/console\/) — dev login/.exec(run.stderr())?.[1];
      expect(consoleUrl).toBeDefined();
      const login = await fetch(new URL('/console/login', consoleUrl));
      expect(login.status).toBe(200);
      expect(await login.text()).toMatch(/DEV MODE[\s\S]*Dev login as operator/);
      // Every line of output is marked dev: banner lines, JSON log lines, and the commands.
      const lines = [...run.stderr().split('\n'), ...run.stdout().split('\n')].filter((l) => l.trim() && !l.startsWith('>') && !/^building dist/.test(l));
      const unmarked = lines.filter((l) => !/credbroker dev │|"mode":"dev"|# dev$/.test(l));
      expect(unmarked).toEqual([]);
    } finally {
      run.child.kill('SIGTERM');
      await run.exited;
    }
  });

  it.each(['SIGTERM', 'SIGKILL'] as const)('leaves no process behind when npm gets %s', async (signal) => {
    const run = await npmStart();
    const motoPort = /AWS_ENDPOINT_URL='http:\/\/127\.0\.0\.1:(\d+)'/.exec(run.stdout())?.[1];
    expect(motoPort).toBeDefined();
    expect(processesWith(run.dir).length).toBeGreaterThan(0);
    expect(processesWith(`-p ${motoPort}`).length).toBe(1);
    run.child.kill(signal);
    await run.exited;
    await until(async () => processesWith(run.dir).length === 0 && processesWith(`-p ${motoPort}`).length === 0 && !(await portOpen(run.port)), 15_000, () =>
      [...processesWith(run.dir), ...processesWith(`-p ${motoPort}`)].join('\n'),
    );
  });

  it('starts without moto when Python is missing, says what to do, and answers 503', async () => {
    const fake = mkdtempSync(path.join(tmpdir(), 'credbroker-nopython-'));
    dirs.push(fake);
    mkdirSync(path.join(fake, 'bin'));
    writeFileSync(path.join(fake, 'bin', 'python3'), '#!/bin/sh\nexit 127\n');
    chmodSync(path.join(fake, 'bin', 'python3'), 0o755);
    const run = await npmStart({ PATH: `${path.join(fake, 'bin')}:${process.env.PATH}`, CREDBROKER_VENV: path.join(fake, 'venv') });
    try {
      expect(run.stderr()).toMatch(/credbroker dev │ WARNING: no STS stand-in: python3 is not installed/);
      const commands = printedCommands(run);
      // (eval hides the client's exit code; its one-line error says what happened.)
      const shell = spawnSync('sh', ['-c', commands.slice(0, 4).join('\n')], {
        cwd: root,
        encoding: 'utf8',
        env: { PATH: process.env.PATH, HOME: run.dir, CREDBROKER_RETRIES: '0' },
        timeout: 60_000,
      });
      expect(shell.stderr).toMatch(/code ERR_STS_UNAVAILABLE, request id [0-9a-f-]+, HTTP 503/);
    } finally {
      run.child.kill('SIGTERM');
      await run.exited;
    }
  });

  it('refuses a non-loopback address', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'server/src/cli.ts', 'dev', '--host', '0.0.0.0'], { cwd: root, encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/refusing --host 0\.0\.0\.0: dev mode binds to loopback only/);
  });

  it('says the port is taken and exits, without starting the issuer or moto', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const taken = (blocker.address() as net.AddressInfo).port;
    try {
      const dir = mkdtempSync(path.join(tmpdir(), 'credbroker-dev-'));
      dirs.push(dir);
      const r = spawnSync(process.execPath, ['--import', 'tsx', 'server/src/cli.ts', 'dev', '--port', String(taken), '--dir', dir], {
        cwd: root,
        encoding: 'utf8',
        timeout: 30_000,
        env: { ...process.env, CREDBROKER_VENV: venvDir },
      });
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(`credbroker dev │ port ${taken} on 127.0.0.1 is in use`);
      expect(r.stderr).not.toMatch(/STS\/IAM http/);
    } finally {
      blocker.close();
    }
  });
});
