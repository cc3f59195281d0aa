// `credbroker rotate` as real processes, faulted from outside: a runner frozen (SIGSTOP) in the
// middle of a push while another takes over, and a runner stopped by SIGTERM / SIGINT. What is
// checked is what a consumer would see: the keys in IAM (moto) and what the sink holds — not
// only the store.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { SqliteStore } from '../../../server/src/store/sqlite.js';
import { createManagedUser, listKeys, startEnv, type Env } from './harness.js';

let e: Env;
let script: string;
beforeAll(async () => {
  e = await startEnv();
  // A command sink that logs each delivery it starts and writes, and writes after a delay when the
  // control file says so: a slow consumer (a vault behind a slow network, say).
  script = path.join(e.dir, 'slow-sink.mjs');
  writeFileSync(
    script,
    `import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
const [out, history, slowFlag] = process.argv.slice(2);
let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => (input += d));
process.stdin.on('end', () => {
  const key = JSON.parse(input);
  const log = (event) => appendFileSync(history, JSON.stringify({ event, key: key.access_key_id, pid: process.pid, at: Date.now() }) + '\\n');
  log('start');
  const delay = existsSync(slowFlag) ? Number(readFileSync(slowFlag, 'utf8')) : 0;
  setTimeout(() => { writeFileSync(out, JSON.stringify(key)); log('write'); }, delay);
});
`,
  );
}, 120_000);
afterAll(async () => {
  await e?.close();
});

const LEASE_SECONDS = 10;
const files = (user: string) => ({
  out: path.join(e.dir, `${user}.sink.json`),
  history: path.join(e.dir, `${user}.history.jsonl`),
  slow: path.join(e.dir, `${user}.slow`),
  config: path.join(e.dir, `${user}.yaml`),
  audit: path.join(e.dir, `${user}.audit.jsonl`),
  db: path.join(e.dir, `${user}.sqlite`),
});

/** A config whose one user delivers to the slow command sink only; grace 0 so a run goes all the way. */
function writeConfig(user: string) {
  const f = files(user);
  writeFileSync(
    f.config,
    stringify({
      issuers: {},
      roles: {},
      logging: { level: 'info' },
      store: { driver: 'sqlite', sqlite_path: f.db },
      audit: { sink: 'file', path: f.audit },
      aws: { region: 'us-east-1', iam_endpoint: e.moto.endpoint, sts_endpoint: e.moto.endpoint },
      rotation: {
        lease_seconds: LEASE_SECONDS,
        grace_period_seconds: 0,
        verify: { successes: 2, initial_backoff_ms: 5, max_backoff_ms: 20, timeout_seconds: 10 },
        sink_backoff_ms: 10,
        users: [{ name: user, sinks: [{ type: 'command', name: 'slow', command: [process.execPath, script, f.out, f.history, f.slow] }] }],
      },
    }),
  );
  return f;
}

interface Runner {
  child: ChildProcess;
  /** stdout and stderr together, in order. */
  stderr(): string;
  /** stdout alone: the summary. */
  stdout(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function rotate(user: string): Runner {
  const child = spawn(process.execPath, ['--import', 'tsx', 'server/src/cli.ts', 'rotate', '--config', files(user).config, '--user', user], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...e.env },
  });
  let stderr = '';
  let stdout = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout!.on('data', (d: Buffer) => ((stderr += d.toString()), (stdout += d.toString())));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
  return { child, stderr: () => stderr, stdout: () => stdout, exited };
}

const history = (user: string): Array<{ event: string; key: string; pid: number; at: number }> =>
  existsSync(files(user).history)
    ? readFileSync(files(user).history, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
    : [];
const auditOf = (user: string): Array<Record<string, unknown>> =>
  readFileSync(files(user).audit, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
async function until(probe: () => boolean, ms: number, what: string, context: () => string = () => '') {
  const end = Date.now() + ms;
  while (!probe()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${context().slice(-3000)}`);
    await sleep(25);
  }
}

/** A user with one Active key that the sink already holds, as a human would have set it up. */
async function setUp(user: string) {
  const f = writeConfig(user);
  const original = await createManagedUser(e, user, { deliver: false });
  writeFileSync(f.out, JSON.stringify({ access_key_id: original.keyId }));
  return { f, original };
}

beforeEach(() => {
  e.audit.length = 0;
});

describe('a runner frozen mid-push while another takes over (lease_seconds 10, a sink that takes 16 s)', () => {
  it('cannot overwrite the sink with its discarded key: the sink ends with the one key IAM has, Active', async () => {
    const user = 'frozen-leader';
    const { f, original } = await setUp(user);
    writeFileSync(f.slow, '16000');
    const a = rotate(user);
    let t0 = 0;
    try {
      // A is pushing its new key K1 to the slow sink: freeze it there.
      await until(() => history(user).some((h) => h.event === 'start'), 60_000, 'runner A to start its push', a.stderr);
      a.child.kill('SIGSTOP');
      t0 = Date.now();
      const k1 = history(user)[0]!.key;
      rmSync(f.slow); // B's pushes are quick

      // B takes over once A's lease has expired, and completes the rotation.
      await sleep(t0 + (LEASE_SECONDS + 1) * 1000 - Date.now());
      const b = rotate(user);
      const bDone = await b.exited;
      expect(bDone.code, b.stderr()).toBe(0);
      // A's frozen push would have written K1 at t0 + 16 s: wait past that.
      await sleep(t0 + 17_000 - Date.now());

      const keys = await listKeys(e, user);
      expect(keys).toHaveLength(1);
      expect(keys[0]!.status).toBe('Active');
      const k2 = keys[0]!.id;
      expect([original.keyId, k1]).not.toContain(k2);
      // What the consumer holds is the key that exists.
      expect((JSON.parse(readFileSync(f.out, 'utf8')) as { access_key_id: string }).access_key_id).toBe(k2);
      // A's sink process was killed at A's push deadline (before its lease expired): K1 was never written.
      const h = history(user);
      expect(h.filter((x) => x.event === 'write' && x.key === k1)).toEqual([]);
      // B discarded K1, guarded the sink against a late write of it, and pushed K2 again after that window.
      const audit = auditOf(user);
      const discard = audit.find((r) => r.event === 'rotation.discard' && r.outcome === 'ok' && r.key_id === k1);
      expect(discard).toMatchObject({ late_writes: { sinks: ['command:slow'] } });
      const repush = audit.find((r) => r.event === 'rotation.repush' && r.outcome === 'ok');
      expect(repush).toMatchObject({ sink: 'command:slow', new_key_id: k2 });
      expect(Date.parse(String(repush!.time))).toBeGreaterThanOrEqual(Date.parse((discard!.late_writes as { until: string }).until));
      expect(h.filter((x) => x.event === 'write' && x.key === k2).length).toBe(2);
    } finally {
      a.child.kill('SIGCONT');
    }
    // Resumed, A finds its lease gone: it stops without writing anything and exits non-zero.
    const aDone = await a.exited;
    expect(aDone.code, a.stderr()).not.toBe(0);
    expect(a.stderr()).toContain('rotation lock lost');
    const store = SqliteStore.open(f.db, { readonly: true });
    try {
      expect(await store.getRotationState(user)).toMatchObject({ phase: 'idle', currentKeyId: (await listKeys(e, user))[0]!.id });
    } finally {
      await store.close();
    }
    expect((await listKeys(e, user)).map((k) => k.status)).toEqual(['Active']);
  }, 90_000);
});

describe('credbroker rotate stopped by a signal', () => {
  it.each([
    { signal: 'SIGTERM' as const, code: 143 },
    { signal: 'SIGINT' as const, code: 130 },
  ])('$signal mid-push: the push is stopped, the undelivered key deleted, the lock released, exit $code', async ({ signal, code }) => {
    const user = `stopped-${signal.toLowerCase()}`;
    const { f, original } = await setUp(user);
    writeFileSync(f.slow, '30000');
    const r = rotate(user);
    await until(() => history(user).some((h) => h.event === 'start'), 60_000, 'the push to start', r.stderr);
    const newKey = history(user)[0]!.key;
    const sentAt = Date.now();
    r.child.kill(signal);
    const done = await r.exited;
    expect(done.code, r.stderr()).toBe(code);
    expect(Date.now() - sentAt).toBeLessThan(10_000);
    // What was done before the signal is summarized on stdout, like a finished run's summary.
    expect(r.stdout()).toMatch(new RegExp(`^${user}: \\S+ \\[[a-z-]+\\]`, 'm'));
    // The key no sink received is gone; the original key is untouched and Active, and the sink still holds it.
    expect(await listKeys(e, user)).toEqual([{ id: original.keyId, status: 'Active' }]);
    expect((JSON.parse(readFileSync(f.out, 'utf8')) as { access_key_id: string }).access_key_id).toBe(original.keyId);
    await sleep(500);
    expect(history(user).filter((h) => h.event === 'write')).toEqual([]);
    const audit = auditOf(user);
    expect(audit.find((r) => r.event === 'rotation.push' && r.outcome === 'failed')).toMatchObject({ code: 'ERR_ROTATION_ABORTED' });
    expect(audit.find((r) => r.event === 'rotation.discard' && r.outcome === 'ok')).toMatchObject({ key_id: newKey });
    // The lock was released: the next run need not wait lease_seconds.
    const store = SqliteStore.open(f.db);
    try {
      expect(await store.acquireLease('rotation', 'next-run', 1000)).toBeDefined();
      // No backoff was recorded for a stop: the next run may continue at once.
      expect(await store.getRotationState(user)).toMatchObject({ phase: 'creating', nextAttemptAt: null });
    } finally {
      await store.close();
    }
  }, 60_000);
});
