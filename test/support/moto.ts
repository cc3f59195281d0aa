// A real moto server on loopback, one per test file (isolated state, no cross-file reset races).
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { STSClient, GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { venvBin } from './venv.js';

export interface Moto {
  endpoint: string;
  port: number;
  /** Credentials moto accepts for the broker's own identity (moto does not check them). */
  env: Record<string, string>;
  reset(): Promise<void>;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') return reject(new Error('no port'));
      srv.close(() => resolve(addr.port));
    });
  });
}

/**
 * `authAfter`: moto answers that many requests without authentication, then checks every request's
 * SigV4 signature against the IAM keys it holds and evaluates the caller's IAM policies.
 */
export async function startMoto(opts: { authAfter?: number } = {}): Promise<Moto> {
  const port = await freePort();
  const child: ChildProcess = spawn(venvBin('moto_server'), ['-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: {
      ...process.env,
      MOTO_ALLOW_NONEXISTENT_REGION: 'true',
      ...(opts.authAfter !== undefined ? { INITIAL_NO_AUTH_ACTION_COUNT: String(opts.authAfter) } : {}),
    },
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`moto_server exited: ${stderr}`);
    try {
      const res = await fetch(`${endpoint}/moto-api/`);
      if (res.ok) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error(`moto_server did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    endpoint,
    port,
    env: {
      AWS_ACCESS_KEY_ID: 'AKIDBROKERTESTONLY00',
      AWS_SECRET_ACCESS_KEY: 'broker-test-secret-not-real',
      AWS_REGION: 'us-east-1',
    },
    async reset() {
      await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' });
    },
    async stop() {
      if (child.exitCode !== null) return;
      await new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 3000).unref();
      });
    },
  };
}

/** Who moto says these credentials are: proof that issued credentials actually work. */
export async function callerArn(moto: Moto, creds: { AccessKeyId: string; SecretAccessKey: string; SessionToken: string }): Promise<string | undefined> {
  const client = new STSClient({
    region: 'us-east-1',
    endpoint: moto.endpoint,
    credentials: { accessKeyId: creds.AccessKeyId, secretAccessKey: creds.SecretAccessKey, sessionToken: creds.SessionToken },
  });
  try {
    return (await client.send(new GetCallerIdentityCommand({}))).Arn;
  } finally {
    client.destroy();
  }
}
