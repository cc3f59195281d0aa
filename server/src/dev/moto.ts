// The STS/IAM stand-in of dev mode: moto server from the project's Python venv, set up on first use
// (scripts/ensure-venv.sh), started on loopback, and stopped with dev mode — also when dev mode is
// killed outright: on Linux moto asks the kernel to end it when its parent dies.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { CreateRoleCommand, IAMClient } from '@aws-sdk/client-iam';

export interface DevMoto {
  endpoint: string;
  stop(): Promise<void>;
}

/** Why moto is not available, and what to do about it. */
export class MotoUnavailable extends Error {}

/** Credentials moto accepts; dev mode never sends real ones anywhere. */
// Made per dev-mode run: moto (without authentication) accepts any key, and none sits in the source.
export const DEV_AWS_CREDENTIALS = { accessKeyId: `AKIA${randomBytes(8).toString('hex').toUpperCase()}`, secretAccessKey: randomBytes(30).toString('base64url') } as const;

export function venvDir(root: string): string {
  return process.env.CREDBROKER_VENV ?? path.join(root, '.venv');
}

/** Makes sure moto is in the venv, installing it on first use; throws MotoUnavailable with the fix. */
export function ensureMoto(root: string, say: (line: string) => void): string {
  const venv = venvDir(root);
  const python = path.join(venv, 'bin', 'python');
  if (existsSync(path.join(venv, 'bin', 'moto_server'))) return python;
  const script = path.join(root, 'scripts', 'ensure-venv.sh');
  if (!existsSync(script)) throw new MotoUnavailable(`no moto server in ${venv}; create it with: python3 -m venv ${venv} && ${venv}/bin/pip install 'moto[server]' awscli`);
  if (spawnSync('python3', ['--version'], { stdio: 'ignore' }).status !== 0) {
    throw new MotoUnavailable('python3 is not installed: install Python 3.9+ (with venv), then restart; until then exchanges answer 503');
  }
  say(`installing the STS/IAM stand-in (moto) into ${venv} — first run only, about a minute`);
  const r = spawnSync('bash', [script, path.join(root, 'scripts', 'requirements-dev.txt')], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0 || !existsSync(path.join(venv, 'bin', 'moto_server'))) {
    throw new MotoUnavailable(`installing moto failed (exit ${r.status}); needs PyPI access. Retry: bash ${path.relative(process.cwd(), script)} scripts/requirements-dev.txt`);
  }
  return python;
}

export async function freeLoopbackPort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') return reject(new Error('no port'));
      srv.close(() => resolve(addr.port));
    });
  });
}

// PR_SET_PDEATHSIG (1): the kernel sends SIGTERM to moto when its parent (dev mode) dies.
const LAUNCH = `
import signal, sys
try:
    import ctypes
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)
except Exception:
    pass
from moto.server import main
main(sys.argv[1:])
`;

export async function startDevMoto(python: string, host = '127.0.0.1'): Promise<DevMoto> {
  const port = await freeLoopbackPort(host);
  const child: ChildProcess = spawn(python, ['-c', LAUNCH, '-H', host, '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, MOTO_ALLOW_NONEXISTENT_REGION: 'true' },
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-2000);
  });
  const endpoint = `http://${host}:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new MotoUnavailable(`moto server exited at start: ${stderr.trim().split('\n').at(-1) ?? ''}`);
    try {
      if ((await fetch(`${endpoint}/moto-api/`)).ok) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new MotoUnavailable('moto server did not answer within 60 s');
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    endpoint,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 3000).unref();
      }),
  };
}

/** Creates the demo roles in moto, trusting the dev broker's identity. */
export async function createDevRoles(endpoint: string, roleArns: string[]): Promise<void> {
  const iam = new IAMClient({ region: 'us-east-1', endpoint, credentials: DEV_AWS_CREDENTIALS });
  try {
    for (const arn of roleArns) {
      const [, account, rest] = /^arn:aws:iam::(\d{12}):role\/(.+)$/.exec(arn) ?? [];
      if (!account || !rest) continue;
      const slash = rest.lastIndexOf('/');
      await iam.send(
        new CreateRoleCommand({
          RoleName: rest.slice(slash + 1),
          Path: slash === -1 ? '/' : `/${rest.slice(0, slash + 1)}`,
          AssumeRolePolicyDocument: JSON.stringify({
            Version: '2012-10-17',
            Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${account}:root` }, Action: ['sts:AssumeRole', 'sts:TagSession', 'sts:SetSourceIdentity'] }],
          }),
        }),
      );
    }
  } finally {
    iam.destroy();
  }
}
