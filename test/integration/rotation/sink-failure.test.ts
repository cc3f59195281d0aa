// Sinks that fail: the old key stays Active until every sink has the new one; failures are
// retried (within the run for 5xx, across runs with backoff) and end in a clean state.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runRotation } from '../../../server/src/rotation/run.js';
import type { SecretCache } from '../../../server/src/rotation/rotate-user.js';
import { allSinks, createManagedUser, deps, held, invariantProblems, listKeys, openStore, rotationConfig, startEnv, type Env } from './harness.js';

let e: Env;
beforeAll(async () => {
  e = await startEnv();
  e.clock.now = new Date();
}, 120_000);
afterAll(async () => {
  await e?.close();
});

const config = (user: string) => rotationConfig({ grace_period_seconds: 3600, retry_backoff_seconds: 60, users: [{ name: user, sinks: allSinks(e, user) }] });
const auditOf = (user: string, event: string) => e.audit.filter((r) => r.user === user && r.event === event && r.outcome !== 'intent');

describe('a sink answering 500', () => {
  it('is retried within the run when the failure is brief; the rotation completes cleanly', async () => {
    const user = 'brief-500';
    const original = await createManagedUser(e, user);
    e.circleci.failWrites(2, 500);
    const store = openStore(e);
    const report = await runRotation(deps(e, config(user), store), { users: [user], force: true });
    await store.close();
    expect(report.users[0]).toMatchObject({ outcome: 'progressed', phase: 'grace' });
    expect(e.circleci.log.filter((l) => l.status === 500)).toHaveLength(2);
    const keys = await listKeys(e, user);
    expect(keys.find((k) => k.id === original.keyId)!.status).toBe('Inactive');
    expect(await invariantProblems(e, user)).toEqual([]);
  });

  it('keeps the old key Active while a sink keeps failing, then resumes the same key once it recovers', async () => {
    const user = 'long-500';
    const original = await createManagedUser(e, user);
    e.travis.failAllWrites(500);
    const secrets: SecretCache = new Map(); // the broker process lives on (loop mode)
    const store = openStore(e);
    const first = await runRotation(deps(e, config(user), store, { secrets }), { users: [user], force: true });
    expect(first.users[0]).toMatchObject({ outcome: 'failed', phase: 'pushing', code: 'ERR_SINK_HTTP' });
    expect(first.users[0]!.message).toContain('HTTP 500');

    // Old key untouched and Active; sinks before Travis have the new key, Travis and later the old.
    let keys = await listKeys(e, user);
    expect(keys).toHaveLength(2);
    expect(keys.find((k) => k.id === original.keyId)!.status).toBe('Active');
    const newKeyId = keys.find((k) => k.id !== original.keyId)!.id;
    expect(held(e, user).map((h) => h.accessKeyId)).toEqual([newKeyId, newKeyId, newKeyId, original.keyId, original.keyId]);
    expect(await invariantProblems(e, user)).toEqual([]);
    const failed = auditOf(user, 'rotation.push').find((r) => r.outcome === 'failed')!;
    expect(failed).toMatchObject({ code: 'ERR_SINK_HTTP', sink: 'travis:acme/long-500', new_key_id: newKeyId });

    // Backoff: the next loop tick before retry_backoff_seconds does nothing.
    e.travis.clear();
    const early = await runRotation(deps(e, config(user), store, { secrets }), { users: [user] });
    expect(early.users[0]).toMatchObject({ outcome: 'waiting', phase: 'pushing' });

    e.clock.advance(61);
    const second = await runRotation(deps(e, config(user), store, { secrets }), { users: [user] });
    await store.close();
    expect(second.users[0]).toMatchObject({ outcome: 'progressed', phase: 'grace' });
    expect(second.users[0]!.steps).toEqual(['push:travis:acme/long-500', 'push:command:file', 'verify', 'deactivate']);
    keys = await listKeys(e, user);
    expect(keys.find((k) => k.id === newKeyId)!.status).toBe('Active');
    expect(keys.find((k) => k.id === original.keyId)!.status).toBe('Inactive');
    expect(auditOf(user, 'rotation.discard')).toHaveLength(0);
    for (const h of held(e, user)) expect(h.accessKeyId).toBe(newKeyId);
    expect(await invariantProblems(e, user)).toEqual([]);
  });

  it('after a restart (secret gone) discards the half-delivered key and rotates afresh, sinks that had it first', async () => {
    const user = 'restart-500';
    const original = await createManagedUser(e, user);
    e.gitlab.failAllWrites(503);
    const store = openStore(e);
    const first = await runRotation(deps(e, config(user), store), { users: [user], force: true });
    expect(first.users[0]).toMatchObject({ outcome: 'failed', phase: 'pushing' });
    const orphan = (await listKeys(e, user)).find((k) => k.id !== original.keyId)!.id;
    e.gitlab.clear();
    e.clock.advance(61);
    const second = await runRotation(deps(e, config(user), store), { users: [user] }); // fresh process: no secret
    await store.close();
    expect(second.users[0]).toMatchObject({ outcome: 'progressed', phase: 'grace' });
    expect(second.users[0]!.steps.slice(0, 5)).toEqual(['discard', 'create', 'propagate', 'push:github:repo:acme/restart-500', 'push:gitlab:acme/restart-500:*']);
    expect(auditOf(user, 'rotation.discard')[0]).toMatchObject({ key_id: orphan, outcome: 'ok' });
    const keys = await listKeys(e, user);
    expect(keys.map((k) => k.id)).not.toContain(orphan);
    expect(keys.find((k) => k.id === original.keyId)!.status).toBe('Inactive');
    expect(await invariantProblems(e, user)).toEqual([]);
  });

  it('a sink that rejects the token (401) is not retried, and no key is created when preflight fails', async () => {
    const user = 'bad-token';
    const original = await createManagedUser(e, user);
    const before = e.gitlab.log.length;
    const store = openStore(e);
    const d = deps(e, config(user), store);
    d.env = { ...d.env, GL_TOKEN: 'wrong' };
    const report = await runRotation(d, { users: [user], force: true });
    await store.close();
    expect(report.users[0]).toMatchObject({ outcome: 'failed', phase: 'idle', code: 'ERR_SINK_HTTP' });
    expect(e.gitlab.log.slice(before).map((l) => l.status)).toEqual([401]);
    expect(await listKeys(e, user)).toEqual([{ id: original.keyId, status: 'Active' }]);
  });

  it('a missing token variable fails before any key exists', async () => {
    const user = 'no-token';
    const original = await createManagedUser(e, user);
    const store = openStore(e);
    const d = deps(e, config(user), store);
    d.env = { ...d.env, CIRCLE_TOKEN: undefined };
    const report = await runRotation(d, { users: [user], force: true });
    await store.close();
    expect(report.users[0]).toMatchObject({ outcome: 'failed', code: 'ERR_SINK_TOKEN_MISSING' });
    expect(report.users[0]!.message).toContain('CIRCLE_TOKEN');
    expect(await listKeys(e, user)).toEqual([{ id: original.keyId, status: 'Active' }]);
  });
});
