// `credbroker serve` and its listeners, as operators start it: the public listener keeps only the
// exchange, health and OpenAPI (no /metrics); metrics have a listener of their own, loopback by
// default, that can be disabled; the admin listener refuses a non-loopback address unless the
// operator opts in (and is then warned at every start), and serves config validation of the file
// on disk. The audit chain refuses to start unkeyed, or with a key it cannot read.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startIssuer, type TestIssuer } from '../support/oidc-issuer.js';
import { startServe, TEST_AWS_ENV } from '../support/serve-process.js';
import { hashAdminToken } from '../../server/src/admin/auth.js';
import { assertMatchesAdminOpenApi } from '../support/openapi.js';

let issuer: TestIssuer;
const dir = mkdtempSync(path.join(tmpdir(), 'credbroker-listeners-'));
const adminToken = randomBytes(24).toString('base64url');
const keyFile = path.join(dir, 'audit.key');

beforeAll(async () => {
  issuer = await startIssuer();
  writeFileSync(keyFile, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
});
afterAll(async () => {
  await issuer?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A config file: the given sections over a minimal valid broker on ephemeral ports. */
function config(name: string, sections: string[]): string {
  const file = path.join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    [
      'server: { port: 0 }',
      `store: { driver: sqlite, sqlite_path: ${JSON.stringify(path.join(dir, `${name}.sqlite`))} }`,
      'issuers:',
      `  local: { url: "${issuer.url}", audiences: [https://credbroker.test], allow_insecure_http: true }`,
      'roles:',
      '  deploy:',
      '    arn: arn:aws:iam::123456789012:role/credbroker/deploy',
      '    allow: [{ issuer: local, claims: { repository_id: "1" } }]',
      ...sections,
    ].join('\n'),
  );
  return file;
}

const serveOnce = (file: string) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'server/src/cli.ts', 'serve', '--config', file], { encoding: 'utf8', env: { ...process.env, ...TEST_AWS_ENV }, timeout: 60_000 });

const admin = { tokens: `[{ name: alice, sha256: ${hashAdminToken(adminToken)}, scopes: [read] }]` };

describe('the public listener and the metrics listener', () => {
  it('keeps /metrics off the public listener (404) and serves it on the metrics listener, and only it', async () => {
    const file = config('metrics', [
      'metrics: { port: 0 }',
      `admin: { enabled: true, port: 0, tokens: ${admin.tokens} }`,
      `audit: { sink: store, hmac_key_file: ${JSON.stringify(keyFile)} }`,
    ]);
    const broker = await startServe(file);
    try {
      const pub = await fetch(`${broker.url}/metrics`);
      expect(pub.status).toBe(404);
      expect(((await pub.json()) as { error: { code: string } }).error.code).toBe('ERR_NOT_FOUND');
      expect(broker.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      const metrics = await fetch(broker.metricsUrl!);
      expect(metrics.status).toBe(200);
      expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
      expect(await metrics.text()).toMatch(/^credbroker_issuer_keys_loaded\{issuer="local"\} 1$/m);
      const base = broker.metricsUrl!.replace(/\/metrics$/, '');
      expect((await fetch(`${base}/healthz`)).status).toBe(404);
      expect((await fetch(`${base}/v1/credentials`, { method: 'POST' })).status).toBe(404);
      const post = await fetch(broker.metricsUrl!, { method: 'POST' });
      expect(post.status).toBe(405);
      expect(post.headers.get('allow')).toBe('GET, HEAD');
      // Nor on the admin listener.
      expect((await fetch(`${broker.adminUrl}/metrics`, { headers: { authorization: `Bearer ${adminToken}` } })).status).toBe(404);
      // The exchange, health and OpenAPI stay public.
      expect((await fetch(`${broker.url}/healthz`)).status).toBe(200);
      expect((await fetch(`${broker.url}/openapi.json`)).status).toBe(200);
    } finally {
      expect(await broker.stop()).toBe(0);
    }
  });

  it('starts no metrics listener when metrics are disabled', async () => {
    const broker = await startServe(config('no-metrics', ['metrics: { enabled: false }']));
    try {
      expect(broker.metricsUrl).toBeUndefined();
      expect(broker.stderr()).not.toContain('metrics_url');
      expect((await fetch(`${broker.url}/metrics`)).status).toBe(404);
    } finally {
      await broker.stop();
    }
  });
});

describe('the admin listener', () => {
  it('serves config validation of the file on disk (wired by serve)', async () => {
    const file = config('validate', ['metrics: { enabled: false }', `admin: { enabled: true, port: 0, tokens: ${admin.tokens} }`]);
    const broker = await startServe(file);
    try {
      const res = await fetch(`${broker.adminUrl}/v1/admin/config/validate`, { headers: { authorization: `Bearer ${adminToken}` } });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { ok: boolean; file: string; warnings: string[] };
      expect(body).toMatchObject({ ok: true, file });
      assertMatchesAdminOpenApi('/v1/admin/config/validate', 'get', 200, res.headers.get('content-type')!, body);
    } finally {
      await broker.stop();
    }
  });

  it('refuses to start on a non-loopback address without the opt-in', () => {
    const r = serveOnce(config('public-admin', ['metrics: { enabled: false }', `admin: { enabled: true, host: 0.0.0.0, port: 0, tokens: ${admin.tokens} }`]));
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('admin.host: "0.0.0.0" is not a loopback address, and the admin API has no TLS');
    expect(r.stderr).toContain('admin.allow_insecure_non_loopback: true');
    expect(r.stderr).not.toContain('credbroker listening');
  });

  it('starts on a non-loopback address with the opt-in, and warns loudly', async () => {
    const broker = await startServe(
      config('public-admin-ok', ['metrics: { enabled: false }', `admin: { enabled: true, host: 0.0.0.0, port: 0, allow_insecure_non_loopback: true, tokens: ${admin.tokens} }`]),
    );
    try {
      expect(broker.adminUrl).toMatch(/^http:\/\/0\.0\.0\.0:\d+$/);
      const warning = broker
        .stderr()
        .split('\n')
        .find((l) => l.includes('INSECURE: the admin API listens on a non-loopback address'));
      expect(JSON.parse(warning!)).toMatchObject({ level: 'warn', admin_host: '0.0.0.0' });
    } finally {
      await broker.stop();
    }
  });

  it('warns at start about tokens without scopes: they can only read', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'server/src/cli.ts', 'config', 'validate', '--config', config('scopes', [`admin: { enabled: true, tokens: [{ name: bob, sha256: ${'b'.repeat(64)} }] }`])], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('warning: admin.tokens[0].scopes: not set: "bob" can only read (add scopes: [operate] to revoke and rotate)');
  });
});

describe('the audit chain key', () => {
  it('refuses audit.sink "store" without a key', () => {
    const r = serveOnce(config('unkeyed', ['audit: { sink: store }']));
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('audit.hmac_key_file: audit.sink "store" needs an HMAC key (hmac_key_file or hmac_key_env)');
  });

  it('refuses a key file it cannot read, or a key that is too short, and never prints the key', () => {
    const missing = serveOnce(config('key-missing', [`audit: { sink: store, hmac_key_file: ${JSON.stringify(path.join(dir, 'nope.key'))} }`]));
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/cannot read the audit HMAC key from .*nope\.key: ENOENT/);
    const shortKey = path.join(dir, 'short.key');
    writeFileSync(shortKey, 'tooshort-secret-value');
    const short = serveOnce(config('key-short', [`audit: { sink: store, hmac_key_file: ${JSON.stringify(shortKey)} }`]));
    expect(short.status).toBe(1);
    expect(short.stderr).toContain('is shorter than 32 characters');
    expect(short.stderr).not.toContain('tooshort-secret-value');
  });

  it('starts unkeyed only with allow_unkeyed_chain, and says loudly what that means', async () => {
    const broker = await startServe(config('unkeyed-ok', ['metrics: { enabled: false }', 'audit: { sink: store, allow_unkeyed_chain: true }']));
    try {
      expect(broker.stderr()).toContain('INSECURE: the audit chain is unkeyed: anyone who can write to the database can rewrite the audit trail undetected');
      expect(broker.stderr()).not.toContain('audit_checkpoint'); // nothing to sign checkpoints with
    } finally {
      await broker.stop();
    }
  });

  it('writes a signed checkpoint at start and at shutdown to stderr by default', async () => {
    const broker = await startServe(config('checkpoints', ['metrics: { enabled: false }', `audit: { sink: store, hmac_key_file: ${JSON.stringify(keyFile)} }`]));
    expect(await broker.stop()).toBe(0);
    const lines = broker
      .stderr()
      .split('\n')
      .filter((l) => l.includes('"audit_checkpoint"'))
      .map((l) => JSON.parse(l) as { msg: string; audit_checkpoint: { seq: number; key_id: string; mac: string } });
    expect(lines).toHaveLength(2);
    for (const l of lines) expect(l).toMatchObject({ msg: 'audit checkpoint', audit_checkpoint: { seq: 0, key_id: expect.stringMatching(/^k-[0-9a-f]{16}$/), mac: expect.stringMatching(/^[0-9a-f]{64}$/) } });
  });
});
