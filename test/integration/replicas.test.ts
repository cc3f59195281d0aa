// Several replicas for real: two `credbroker serve` processes sharing one PostgreSQL schema, moto as
// STS and IAM. A token is used once across both; a revocation made through A is enforced by B
// within 1 s (measured); rate-limit counters are shared; both write one audit chain that verifies
// and a row changed with SQL is caught; only one replica rotates, and SIGKILL hands rotation over.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { IAMClient, CreateUserCommand, ListAccessKeysCommand } from '@aws-sdk/client-iam';
import { startMoto, type Moto } from '../support/moto.js';
import { startIssuer, type TestIssuer } from '../support/oidc-issuer.js';
import { requestCredentials, TEST_AUDIENCE } from '../support/broker.js';
import { providerClaims } from '../support/fixtures.js';
import { hashAdminToken } from '../../server/src/admin/auth.js';
import { createTestSchema, type TestSchema } from './store/pg.js';

interface Replica {
  name: string;
  child: ChildProcess;
  url: string;
  adminUrl: string;
  metricsUrl: string;
  stderr: string;
  exited: Promise<void>;
}

const ROTATED_USER = 'replica-rotated';
const IDENTITY_LIMIT = 30;
const adminToken = randomBytes(24).toString('base64url');
const auditKey = randomBytes(32).toString('base64');
const dir = mkdtempSync(path.join(tmpdir(), 'credbroker-replicas-'));
const configFile = path.join(dir, 'credbroker.yaml');
const sinkScript = path.join(dir, 'sink.mjs');
const sinkOut = path.join(dir, 'sink-out.json');
const slowMarker = path.join(dir, 'slow'); // while present, the sink hangs (a push in flight)
const startedMarker = path.join(dir, 'push-started'); // holds the pid of the replica pushing

let moto: Moto;
let issuer: TestIssuer;
let db: TestSchema;
let iam: IAMClient;
const replicas: Replica[] = [];

// The command sink: hangs while the slow marker exists (recording which replica called it),
// otherwise stores what it was given, as a real secret store would. It runs under the broker's
// sink watchdog, so the replica is its grandparent (Linux: read from /proc).
const SINK = `import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
const [out, slow, started] = process.argv.slice(2);
const replica = Number(readFileSync('/proc/' + process.ppid + '/stat', 'utf8').split(') ')[1].split(' ')[1]);
let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => (input += d));
process.stdin.on('end', () => {
  if (existsSync(slow)) {
    writeFileSync(started, String(replica));
    setTimeout(() => process.exit(1), 300000);
    return;
  }
  // Atomically, as a store would: the test reads the file while a delivery may be writing it.
  writeFileSync(out + '.tmp', JSON.stringify({ ...JSON.parse(input), writer: replica }));
  renameSync(out + '.tmp', out);
});
`;

function configText(): string {
  const config = {
    server: { port: 0, rate_limit: { per_ip: { limit: 1_000_000, window_seconds: 60 }, per_identity: { limit: IDENTITY_LIMIT, window_seconds: 60 } } },
    aws: { region: 'us-east-1', role_chaining: 'never', sts_endpoint: moto.endpoint, iam_endpoint: moto.endpoint, max_attempts: 2 },
    logging: { level: 'info' },
    audit: { sink: 'store', hmac_key_env: 'CREDBROKER_REPLICAS_AUDIT_KEY' },
    store: { driver: 'postgres', postgres_url: db.url },
    metrics: { port: 0 },
    admin: { enabled: true, port: 0, tokens: [{ name: 'alice', sha256: hashAdminToken(adminToken), scopes: ['operate'] }] },
    issuers: { local: { url: issuer.url, audiences: [TEST_AUDIENCE], allow_insecure_http: true, preset: 'github-actions' } },
    roles: { deploy: { arn: 'arn:aws:iam::123456789012:role/credbroker/deploy', allow: [{ issuer: 'local', claims: { repository_id: '487920697' } }] } },
    rotation: {
      interval_seconds: 60,
      jitter_seconds: 0, // first run at start, then every 60 s
      lease_seconds: 20, // a push is fenced by the lease: the hanging one is stopped 18 s after it started
      concurrency: 1,
      max_key_age_seconds: 3600,
      grace_period_seconds: 0,
      verify: { successes: 1, initial_backoff_ms: 10, max_backoff_ms: 50, timeout_seconds: 20 },
      sink_attempts: 1,
      sink_backoff_ms: 0,
      retry_backoff_seconds: 1,
      users: [{ name: ROTATED_USER, sinks: [{ type: 'command', name: 'file', command: [process.execPath, sinkScript, sinkOut, slowMarker, startedMarker], timeout_seconds: 600 }] }],
    },
  };
  return JSON.stringify(config, null, 2); // JSON is YAML
}

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; logs:\n${replicas.map((r) => `${r.name}: ${r.stderr.slice(-3000)}`).join('\n')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function startReplica(name: string): Promise<Replica> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'server/src/cli.ts', 'serve', '--config', configFile], {
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true, // its own process group: SIGKILL takes its sink child with it
    env: { ...process.env, ...moto.env, CREDBROKER_REPLICAS_AUDIT_KEY: auditKey },
  });
  const r: Replica = { name, child, url: '', adminUrl: '', metricsUrl: '', stderr: '', exited: new Promise((res) => child.once('exit', () => res())) };
  child.stderr!.on('data', (d: Buffer) => (r.stderr += d.toString()));
  replicas.push(r);
  return r;
}

async function ready(r: Replica): Promise<Replica> {
  r.url = await until(`${r.name} to listen`, () => /"url":"(http:\/\/[^"]+)"/.exec(r.stderr)?.[1], 60_000);
  r.adminUrl = await until(`${r.name} admin API`, () => /"admin_url":"(http:\/\/[^"]+)"/.exec(r.stderr)?.[1], 10_000);
  r.metricsUrl = await until(`${r.name} metrics`, () => /"metrics_url":"(http:\/\/[^"]+)"/.exec(r.stderr)?.[1], 10_000);
  return r;
}

async function stopReplica(r: Replica, signal: NodeJS.Signals): Promise<void> {
  if (r.child.exitCode !== null || r.child.signalCode !== null) return;
  try {
    process.kill(-r.child.pid!, signal);
  } catch {
    /* already gone */
  }
  const timer = setTimeout(() => {
    try {
      process.kill(-r.child.pid!, 'SIGKILL');
    } catch {
      /* gone */
    }
  }, 10_000);
  await r.exited;
  clearTimeout(timer);
}

const admin = async (r: Replica, method: string, p: string, body?: unknown) => {
  const res = await fetch(`${r.adminUrl}${p}`, {
    method,
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as any) : undefined };
};

const token = (sub: string) => issuer.sign({ ...providerClaims('github-actions'), aud: TEST_AUDIENCE, sub });
const metric = async (r: Replica, line: RegExp) => Number(line.exec(await (await fetch(r.metricsUrl)).text())?.[1] ?? 0);

let a: Replica;
let b: Replica;

beforeAll(async () => {
  [moto, issuer, db] = await Promise.all([startMoto(), startIssuer(), createTestSchema('replicas')]);
  iam = new IAMClient({ region: 'us-east-1', endpoint: moto.endpoint, credentials: { accessKeyId: moto.env.AWS_ACCESS_KEY_ID!, secretAccessKey: moto.env.AWS_SECRET_ACCESS_KEY! } });
  // A managed user with no key yet: due at once, so the first run on either replica rotates it.
  await iam.send(new CreateUserCommand({ UserName: ROTATED_USER, Path: '/ci/' }));
  writeFileSync(sinkScript, SINK);
  writeFileSync(slowMarker, '');
  writeFileSync(configFile, configText());
  // Started together: both run migrations and their first rotation run at the same moment.
  const [ra, rb] = await Promise.all([startReplica('A'), startReplica('B')]);
  [a, b] = await Promise.all([ready(ra), ready(rb)]);
}, 120_000);

afterAll(async () => {
  await Promise.all(replicas.map((r) => stopReplica(r, 'SIGTERM')));
  iam?.destroy();
  await Promise.all([issuer?.close(), moto?.stop()]);
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

describe('two replicas on one PostgreSQL', () => {
  it('a token accepted by replica A is a replay at replica B', async () => {
    const t = await token('repo:acme/app:ref:refs/heads/replay');
    expect((await requestCredentials(a.url, t)).status).toBe(200);
    const again = await requestCredentials(b.url, t);
    expect(again.status).toBe(401);
    expect(again.body.error.code).toBe('ERR_TOKEN_REPLAYED');
  });

  it('a token sent to both replicas at the same moment is honoured once', async () => {
    for (let i = 0; i < 5; i++) {
      const t = await token(`repo:acme/app:ref:refs/heads/race-${i}`);
      const statuses = (await Promise.all([requestCredentials(a.url, t), requestCredentials(b.url, t)])).map((r) => r.status).sort();
      expect(statuses).toEqual([200, 401]);
    }
  });

  it('a revocation made through A is enforced by B within 1 s, and lifted the same way', async () => {
    const sub = 'repo:acme/app:ref:refs/heads/revoked';
    expect((await requestCredentials(b.url, await token(sub))).status).toBe(200);
    const created = await admin(a, 'POST', '/v1/admin/revocations', { issuer: 'local', claims: { sub }, reason: 'compromised branch', expires_in_seconds: 3600 });
    expect(created.status).toBe(201);
    const revokedAt = performance.now();
    const tokens = await Promise.all(Array.from({ length: 24 }, () => token(sub))); // signed beforehand: only the broker is timed
    let elapsed = -1;
    for (const t of tokens) {
      const r = await requestCredentials(b.url, t);
      if (r.status === 403 && r.body.error.code === 'ERR_REVOKED') {
        elapsed = performance.now() - revokedAt;
        break;
      }
      expect(r.status).toBe(200);
      await new Promise((res) => setTimeout(res, 25));
    }
    console.log(`revocation made at A enforced by B after ${elapsed.toFixed(0)} ms (revocation.poll_ms 500)`);
    expect(elapsed).toBeGreaterThan(0);
    expect(elapsed).toBeLessThan(1000);
    // Another identity is unaffected.
    expect((await requestCredentials(b.url, await token('repo:acme/app:ref:refs/heads/other'))).status).toBe(200);
    expect((await admin(b, 'DELETE', `/v1/admin/revocations/${created.body.revocation.id}`)).status).toBe(204);
    await new Promise((res) => setTimeout(res, 700)); // one poll (500 ms) and some slack
    expect((await requestCredentials(a.url, await token(sub))).status).toBe(200);
  });

  it('shares rate-limit counters: a per-identity limit is reached across both replicas', async () => {
    const sub = 'repo:acme/app:ref:refs/heads/noisy';
    const statuses: number[] = [];
    for (let i = 0; i < IDENTITY_LIMIT; i++) statuses.push((await requestCredentials(i % 2 ? a.url : b.url, await token(sub))).status);
    expect(statuses.every((s) => s === 200)).toBe(true); // 15 at each: neither alone reaches the limit
    for (const r of [a, b]) {
      const refused = await requestCredentials(r.url, await token(sub));
      expect(refused.status).toBe(429);
      expect(refused.body.error.code).toBe('ERR_RATE_LIMITED');
    }
    expect((await requestCredentials(a.url, await token('repo:acme/app:ref:refs/heads/quiet'))).status).toBe(200);
  });

  it('both replicas write one keyed audit chain that verifies (with each replica\'s own checkpoints); a row changed with SQL is caught', async () => {
    const fromA = await requestCredentials(a.url, await token('repo:acme/app:ref:refs/heads/audit-a'));
    const fromB = await requestCredentials(b.url, await token('repo:acme/app:ref:refs/heads/audit-b'));
    const ids = [fromA.headers.get('x-request-id'), fromB.headers.get('x-request-id')];
    const records = (await admin(a, 'GET', '/v1/admin/audit?event=exchange&limit=10000')).body.records as Array<{ request_id: string; seq: number }>;
    for (const id of ids) expect(records.map((r) => r.request_id)).toContain(id);
    for (const r of [a, b]) {
      const verified = (await admin(r, 'GET', '/v1/admin/audit/verify')).body;
      expect(verified).toMatchObject({ ok: true, problems: [], legacy: null, keyed: { from: 1 } });
      expect(verified.keyed.keyIds).toHaveLength(1);
      expect(verified.checkpoints.valid).toBeGreaterThanOrEqual(1);
    }

    const seq = records.find((r) => r.request_id === ids[0])!.seq;
    const original = (await db.query<{ record: string }>('SELECT record::text AS record FROM audit_chain WHERE seq = $1', [seq])).rows[0]!.record;
    await db.query(`UPDATE audit_chain SET record = replace(record::text, '"decision":"allow"', '"decision":"deny"')::json WHERE seq = $1`, [seq]);
    const tampered = await admin(b, 'GET', '/v1/admin/audit/verify');
    expect(tampered.status).toBe(409);
    expect(tampered.body.problems).toContainEqual(expect.objectContaining({ kind: 'modified', seq }));
    await db.query('UPDATE audit_chain SET record = $2::json WHERE seq = $1', [seq, original]);
    expect((await admin(a, 'GET', '/v1/admin/audit/verify')).body.ok).toBe(true);
  });

  it('only one replica rotates; SIGKILL of it hands rotation to the other', async () => {
    // The leader's push hangs in the sink (until its deadline, 18 s in): it holds the lease, renewing it, mid-rotation.
    const leaderPid = Number(await until('a push in flight', () => (existsSync(startedMarker) ? readFileSync(startedMarker, 'utf8') || undefined : undefined), 30_000));
    const leader = replicas.find((r) => r.child.pid === leaderPid)!;
    const follower = leader === a ? b : a;
    expect(leader).toBeDefined();
    const lease = (await db.query<{ holder: string; token: string }>(`SELECT holder, token FROM leases WHERE name = 'rotation'`)).rows[0]!;
    expect(lease.holder).toContain(`:${leaderPid}:`);
    expect(lease.token).toBe('1');
    expect(await metric(leader, /^credbroker_rotation_leader (\d+)/m)).toBe(1);
    expect(await metric(follower, /^credbroker_rotation_leader (\d+)/m)).toBe(0);
    expect(await metric(follower, /^credbroker_rotation_runs_total\{result="not_leader"\} (\d+)/m)).toBeGreaterThanOrEqual(1);
    const created = ((await admin(follower, 'GET', '/v1/admin/audit?event=rotation.create')).body.records as Array<{ fence: number; outcome: string; new_key_id?: string; key_id?: string }>).filter(
      (r) => r.outcome === 'ok',
    );
    expect(created.map((r) => r.fence)).toEqual([1]);
    // While the lease is held, an on-demand run through the other replica is refused.
    expect((await admin(follower, 'POST', '/v1/admin/rotate', { users: [ROTATED_USER] })).status).toBe(409);

    unlinkSync(slowMarker);
    await stopReplica(leader, 'SIGKILL');
    const killedAt = Date.now();

    // The lease expires (20 s) and the follower's next run (every 60 s) takes over with token 2,
    // discards the key whose secret died with the leader, and completes a rotation of its own.
    const delivered = await until(
      'the follower to deliver a key',
      () => (existsSync(sinkOut) ? (JSON.parse(readFileSync(sinkOut, 'utf8')) as { access_key_id: string; secret_access_key: string; writer: number }) : undefined),
      90_000,
    );
    console.log(`rotation handed over ${((Date.now() - killedAt) / 1000).toFixed(1)} s after SIGKILL of the leader`);
    expect(delivered.writer).toBe(follower.child.pid);
    const after = (await db.query<{ holder: string; token: string }>(`SELECT holder, token FROM leases WHERE name = 'rotation'`)).rows[0]!;
    expect(after.holder).toContain(`:${follower.child.pid}:`);
    expect(Number(after.token)).toBe(2);
    await until('the rotation to finish', async () => {
      const st = (await db.query<{ phase: string }>('SELECT phase FROM rotation_state WHERE user_name = $1', [ROTATED_USER])).rows[0];
      return st && (st.phase === 'idle' || st.phase === 'grace') ? true : undefined;
    }, 30_000);
    const keys = (await iam.send(new ListAccessKeysCommand({ UserName: ROTATED_USER }))).AccessKeyMetadata ?? [];
    expect(keys.map((k) => ({ id: k.AccessKeyId, status: k.Status }))).toEqual([{ id: delivered.access_key_id, status: 'Active' }]);
    const steps = (await admin(follower, 'GET', '/v1/admin/audit?limit=10000')).body.records.filter((r: { event: string }) => r.event.startsWith('rotation.'));
    const leaderKey = created[0]!.new_key_id ?? created[0]!.key_id;
    expect(leaderKey).not.toBe(delivered.access_key_id);
    for (const s of steps.filter((x: { fence: number }) => x.fence !== 1)) expect(s.fence).toBe(2); // nothing written under a stale fence

    // The admin API's rotation routes, on the survivor: inventory, then an on-demand rotation.
    const inv = await admin(follower, 'GET', '/v1/admin/keys');
    expect(inv.status).toBe(200);
    expect(inv.body.users[0]).toMatchObject({ userName: ROTATED_USER, keys: [{ accessKeyId: delivered.access_key_id, status: 'Active' }] });
    const forced = await admin(follower, 'POST', '/v1/admin/rotate', { users: [ROTATED_USER] });
    expect(forced.status).toBe(200);
    expect(forced.body.leader).toBe(true);
    const now = JSON.parse(readFileSync(sinkOut, 'utf8')) as { access_key_id: string };
    expect(now.access_key_id).not.toBe(delivered.access_key_id);
    expect((await admin(follower, 'POST', '/v1/admin/rotate', {})).status).toBe(400);

    // Nothing secret in the shared store or in either replica's logs.
    const dump = (
      await db.query<{ t: string }>(
        `SELECT string_agg(t, E'\\n') AS t FROM (
           SELECT state AS t FROM rotation_state UNION ALL SELECT record::text FROM audit_chain
           UNION ALL SELECT holder FROM leases UNION ALL SELECT key FROM token_ledger UNION ALL SELECT key FROM rate_counters) x`,
      )
    ).rows[0]!.t;
    for (const secret of [delivered.secret_access_key, JSON.parse(readFileSync(sinkOut, 'utf8')).secret_access_key as string]) {
      expect(secret).toMatch(/\S{20,}/);
      expect(dump.includes(secret)).toBe(false);
      for (const r of replicas) expect(r.stderr.includes(secret)).toBe(false);
    }
  }, 180_000);

  it('the surviving replica stops cleanly on SIGTERM (exit code 0)', async () => {
    const survivor = replicas.find((r) => r.child.exitCode === null && r.child.signalCode === null)!;
    process.kill(-survivor.child.pid!, 'SIGTERM');
    await Promise.race([survivor.exited, new Promise((res) => setTimeout(res, 15_000))]);
    expect(survivor.child.exitCode).toBe(0);
    expect(survivor.stderr).toContain('rotation loop stopped');
  }, 20_000);
});
