// The one-shot commands, in-process through their main(): `credbroker rotate` (--dry-run, --user,
// two Active keys) and `credbroker keys`, with a real config file, moto and the CI stand-ins.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CreateAccessKeyCommand, ListUsersCommand } from '@aws-sdk/client-iam';
import { stringify } from 'yaml';
import { main as rotate } from '../../../server/src/rotation/cli.js';
import { main as keys } from '../../../server/src/rotation/cli-keys.js';
import { allSinks, createManagedUser, held, listKeys, startEnv, type Env } from './harness.js';

let e: Env;
let configFile: string;
const saved = { ...process.env };

beforeAll(async () => {
  e = await startEnv();
  for (const u of ['cli-due', 'cli-two-active']) await createManagedUser(e, u);
  // A second Active key that credbroker did not create: only a human can tell which one is in use.
  await e.iamAdmin.send(new CreateAccessKeyCommand({ UserName: 'cli-two-active' }));
  configFile = path.join(e.dir, 'credbroker.yaml');
  writeFileSync(
    configFile,
    stringify({
      issuers: {},
      roles: {},
      logging: { level: 'warn' },
      store: { driver: 'sqlite', sqlite_path: path.join(e.dir, 'cli.sqlite') },
      audit: { sink: 'file', path: path.join(e.dir, 'audit.jsonl') },
      aws: { region: 'us-east-1', iam_endpoint: e.moto.endpoint, sts_endpoint: e.moto.endpoint },
      rotation: {
        max_key_age_seconds: 3600,
        grace_period_seconds: 3600,
        verify: { successes: 2, initial_backoff_ms: 5, max_backoff_ms: 10, timeout_seconds: 10 },
        users: ['cli-due', 'cli-two-active'].map((name) => ({ name, sinks: allSinks(e, name) })),
      },
    }),
  );
  Object.assign(process.env, e.env);
}, 120_000);

afterAll(async () => {
  process.env = saved;
  await e?.close();
});

async function capture(fn: () => Promise<number>): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
  const r = vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((err += String(s)), true));
  try {
    return { code: await fn(), out, err };
  } finally {
    o.mockRestore();
    r.mockRestore();
  }
}

/** Everything the rotation could change: users, their keys and statuses, and what each sink holds. */
async function snapshot() {
  const users = (await e.iamAdmin.send(new ListUsersCommand({}))).Users!.map((u) => u.UserName!).sort();
  const state: Record<string, unknown> = {};
  for (const u of users) state[u] = { keys: await listKeys(e, u), sinks: held(e, u) };
  return state;
}

describe('credbroker rotate / keys', () => {
  it('--dry-run prints the plan and changes nothing (moto state identical before and after)', async () => {
    const before = await snapshot();
    const res = await capture(() => rotate(['--config', configFile, '--all', '--force', '--dry-run']));
    expect(await snapshot()).toEqual(before);
    expect(existsSync(path.join(e.dir, 'cli.sqlite'))).toBe(false);
    expect(res.out).toContain('cli-due');
    expect(res.out).toContain('create a new access key');
    expect(res.out).toContain('error ERR_ROTATION_TWO_ACTIVE_KEYS');
    expect(res.out).toContain('dry run: nothing was changed');
    expect(res.code).toBe(1); // a user needs a human
  });

  it('two Active keys at start: nothing changes, the error state is reported and audited once', async () => {
    const before = await snapshot();
    const res = await capture(() => rotate(['--config', configFile, '--user', 'cli-two-active']));
    expect(res.code).toBe(1);
    expect(res.out).toMatch(/cli-two-active: error \[error\].*ERR_ROTATION_TWO_ACTIVE_KEYS/);
    expect(await snapshot()).toEqual(before);
    const again = await capture(() => rotate(['--config', configFile, '--user', 'cli-two-active']));
    expect(again.code).toBe(1);
    expect(await snapshot()).toEqual(before);
    const { readFileSync } = await import('node:fs');
    const audit = readFileSync(path.join(e.dir, 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(audit.filter((r) => r.event === 'rotation.error' && r.user === 'cli-two-active')).toHaveLength(1);
    expect(audit[0]).toMatchObject({ code: 'ERR_ROTATION_TWO_ACTIVE_KEYS', decision: 'error' });

    const inv = await capture(() => keys(['--config', configFile, '--json']));
    const user = (JSON.parse(inv.out) as { users: Array<{ userName: string; phase: string; next: string }> }).users.find((u) => u.userName === 'cli-two-active')!;
    expect(user).toMatchObject({ phase: 'error', next: 'needs a human: ERR_ROTATION_TWO_ACTIVE_KEYS' });
  });

  it('--user rotates that user now; keys lists ids, ages and state, never a secret', async () => {
    const before = await listKeys(e, 'cli-due');
    const res = await capture(() => rotate(['--config', configFile, '--user', 'cli-due']));
    expect(res.code, res.err).toBe(0);
    expect(res.out).toMatch(/cli-due: progressed \[grace\] start → create → propagate/);
    const after = await listKeys(e, 'cli-due');
    expect(after.find((k) => k.id === before[0]!.id)!.status).toBe('Inactive');
    const newKey = after.find((k) => k.id !== before[0]!.id)!;

    const inv = await capture(() => keys(['--config', configFile]));
    expect(inv.code).toBe(0);
    expect(inv.out).toContain(newKey.id);
    expect(inv.out).toMatch(/state: grace; next: old key Inactive; deleted after the grace period/);
    const secrets = held(e, 'cli-due').map((h) => h.secretAccessKey!);
    for (const s of secrets) expect(inv.out.includes(s) || res.out.includes(s) || res.err.includes(s)).toBe(false);
  });

  it('rejects a command line without --user or --all', async () => {
    const res = await capture(() => rotate(['--config', configFile]));
    expect(res.code).toBe(2);
    expect(res.err).toContain('give --user NAME');
  });
});
