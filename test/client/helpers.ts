// Shared helpers for the client tests: run the real client as a child process with a clean
// environment, and a local HTTP stand-in for the broker's API contract (for paths the real broker
// cannot be made to take on demand: 503 then success, hanging, redirects, echoing a token…).
import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { randomBytes, randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

export const NODE_CLIENT = fileURLToPath(new URL('../../client/credbroker-client.mjs', import.meta.url));
export const SH_CLIENT = fileURLToPath(new URL('../../client/credbroker-client.sh', import.meta.url));
/** POSIX sh to run the sh variant with: dash when installed (strictest common sh), else sh. */
export const POSIX_SH = ['/usr/bin/dash', '/bin/dash'].find((p) => {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}) ?? '/bin/sh';

export const EXIT = { OK: 0, INTERNAL: 1, USAGE: 2, TOKEN: 3, TOKEN_REJECTED: 4, DENIED: 5, UNAVAILABLE: 6, REJECTED: 7, OUTPUT: 8 } as const;

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/**
 * Runs a command with exactly `env` (plus PATH), never the test runner's environment: a CI
 * variable of the machine running the tests must not steer provider detection.
 */
export function run(cmd: string, args: string[], env: Record<string, string | undefined>, opts: { timeoutMs?: number; cwd?: string } = {}): Promise<RunResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const cleanEnv: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
    for (const [k, v] of Object.entries(env)) if (v !== undefined) cleanEnv[k] = v;
    const child = spawn(cmd, args, { env: cleanEnv, stdio: ['ignore', 'pipe', 'pipe'], cwd: opts.cwd });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 25_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

export const runClient = (args: string[], env: Record<string, string | undefined>, opts?: { timeoutMs?: number; cwd?: string }) =>
  run(process.execPath, [NODE_CLIENT, ...args], env, opts);

export const runShClient = (args: string[], env: Record<string, string | undefined>, opts?: { timeoutMs?: number; cwd?: string }) =>
  run(POSIX_SH, [SH_CLIENT, ...args], env, opts);

/** A private temporary HOME for one test; removed by the returned cleanup. */
export function tempDir(prefix = 'credbroker-client-'): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export const fileMode = (file: string): number => statSync(file).mode & 0o777;

/**
 * Asserts none of the secrets occurs in `text`, without ever printing a secret in a failure
 * message (the assertion compares booleans, labelled by the secret's name).
 */
export function expectNoSecrets(where: string, text: string, secrets: Record<string, string>): void {
  for (const [name, value] of Object.entries(secrets)) {
    expect(text.includes(value), `${name} leaked into ${where}`).toBe(false);
  }
}

export interface IssuedCredentials {
  AccessKeyId: string;
  SecretAccessKey: string;
  SessionToken: string;
  Expiration: string;
}

export interface ScriptedReply {
  status: number;
  code?: string;
  message?: string;
  retryAfter?: string;
  /** Raw body instead of the error envelope. */
  body?: string;
  headers?: Record<string, string>;
}

export interface BrokerRequest {
  token: string | undefined;
  body: unknown;
  format: string | null;
  requestId: string;
  at: number;
  status: number;
}

export interface FakeBroker {
  url: string;
  requests: BrokerRequest[];
  issued: IssuedCredentials[];
  /** Lifetime of issued credentials. */
  expiresInSeconds: number;
  /** Don't answer at all (timeouts). */
  hang: boolean;
  script(...replies: ScriptedReply[]): void;
  close(): Promise<void>;
}

/** Credentials made up at run time, obviously fake (nothing key-shaped is committed). */
export function makeFakeCredentials(expiresInSeconds: number): IssuedCredentials {
  return {
    AccessKeyId: `FAKEKEYID${randomBytes(6).toString('hex').toUpperCase()}`,
    SecretAccessKey: `fake/secret+${randomBytes(24).toString('base64')}`,
    SessionToken: `FakeSessionToken/${randomBytes(90).toString('base64')}`,
    Expiration: new Date(Date.now() + expiresInSeconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
  };
}

const shq = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;

/**
 * A stand-in speaking the broker's HTTP contract: POST /v1/credentials?format=json|credential-process|env,
 * one-time tokens (a second use is ERR_TOKEN_REPLAYED, except after a 503, which releases the token),
 * error envelope with code and request id, Retry-After on scripted 429/503.
 */
export async function startFakeBroker(): Promise<FakeBroker> {
  const used = new Set<string>();
  const queue: ScriptedReply[] = [];
  const fb: FakeBroker = {
    url: '',
    requests: [],
    issued: [],
    expiresInSeconds: 3600,
    hang: false,
    script: (...r) => queue.push(...r),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (fb.hang) return; // never answer
      const url = new URL(req.url ?? '/', 'http://x');
      const requestId = randomUUID();
      const auth = req.headers.authorization ?? '';
      const token = /^Bearer (.+)$/.exec(auth)?.[1];
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        body = undefined;
      }
      const rec: BrokerRequest = { token, body, format: url.searchParams.get('format'), requestId, at: Date.now(), status: 0 };
      fb.requests.push(rec);
      const fail = (r: ScriptedReply) => {
        rec.status = r.status;
        const headers: Record<string, string> = { 'content-type': 'application/json', 'x-request-id': requestId, ...r.headers };
        if (r.retryAfter !== undefined) headers['retry-after'] = r.retryAfter;
        res.writeHead(r.status, headers);
        res.end(r.body ?? JSON.stringify({ error: { code: r.code ?? 'ERR_X', message: r.message ?? 'scripted failure', request_id: requestId } }));
      };
      if (req.method !== 'POST' || url.pathname !== '/v1/credentials') return fail({ status: 404, code: 'ERR_NOT_FOUND' });
      if (!token) return fail({ status: 401, code: 'ERR_TOKEN_MISSING', message: 'missing bearer token' });
      if (used.has(token)) return fail({ status: 401, code: 'ERR_TOKEN_REPLAYED', message: 'token already used' });
      const scripted = queue.shift();
      if (scripted) {
        if (scripted.status !== 503) used.add(token);
        return fail(scripted);
      }
      const role = (body as { role?: unknown } | undefined)?.role;
      if (typeof role !== 'string') return fail({ status: 400, code: 'ERR_BAD_REQUEST', message: 'role is required' });
      used.add(token);
      const c = makeFakeCredentials(fb.expiresInSeconds);
      fb.issued.push(c);
      rec.status = 200;
      const format = url.searchParams.get('format') ?? 'json';
      const common = { 'x-request-id': requestId, 'cache-control': 'no-store' };
      if (format === 'env') {
        res.writeHead(200, { ...common, 'content-type': 'text/plain; charset=utf-8' });
        res.end(
          [
            ['AWS_ACCESS_KEY_ID', c.AccessKeyId],
            ['AWS_SECRET_ACCESS_KEY', c.SecretAccessKey],
            ['AWS_SESSION_TOKEN', c.SessionToken],
            ['AWS_CREDENTIAL_EXPIRATION', c.Expiration],
          ]
            .map(([k, v]) => `export ${k}=${shq(v!)}`)
            .join('\n') + '\n',
        );
        return;
      }
      res.writeHead(200, { ...common, 'content-type': 'application/json' });
      if (format === 'credential-process') {
        res.end(JSON.stringify({ Version: 1, ...c }));
        return;
      }
      res.end(
        JSON.stringify({
          ...c,
          RoleArn: `arn:aws:iam::123456789012:role/${role}`,
          AssumedRoleArn: `arn:aws:sts::123456789012:assumed-role/${role}/fake-session`,
          RoleSessionName: 'fake-session',
          SourceIdentity: 'fake-source',
          RequestId: requestId,
        }),
      );
    });
  });
  server.keepAliveTimeout = 500;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  fb.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return fb;
}

/** The secrets of issued credentials, labelled, for expectNoSecrets. */
export const secretsOf = (c: IssuedCredentials): Record<string, string> => ({
  AccessKeyId: c.AccessKeyId,
  SecretAccessKey: c.SecretAccessKey,
  SessionToken: c.SessionToken,
});
