// Keys credbroker created and could not deliver, and IAM calls that get no answer: a run that ends
// with a key no sink received deletes it; `keys` marks a key that not every sink received; a
// CreateAccessKey that hangs fails the step within aws.http_timeout_ms, and the next run audits
// what IAM shows of it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { createIamKeys } from '../../../server/src/aws/iam.js';
import { startRotationLoop } from '../../../server/src/rotation/loop.js';
import { inventory, runRotation, type RunReport } from '../../../server/src/rotation/run.js';
import type { BoundaryInfo } from '../../../server/src/rotation/rotate-user.js';
import { startHangingProxy } from '../../support/hung-endpoint.js';
import { auditGaps, createManagedUser, deps, listKeys, openStore, rotationConfig, startEnv, type Env } from './harness.js';

let e: Env;
beforeAll(async () => {
  e = await startEnv();
  e.clock.now = new Date();
}, 120_000);
afterAll(async () => {
  await e?.close();
});

const github = (user: string) => ({ type: 'github' as const, token_env: 'GH_TOKEN', base_url: e.github.url, owner: 'acme', repo: user });
const travis = (user: string) => ({ type: 'travis' as const, token_env: 'TRAVIS_TOKEN', base_url: e.travis.url, repo: `acme/${user}` });
const auditOf = (user: string, event: string) => e.audit.filter((r) => r.user === user && r.event === event);

describe('a key that no sink received', () => {
  it('is deleted before a one-shot run ends: the user is left with its one Active key, and the failure is kept', async () => {
    const user = 'undelivered-oneshot';
    const original = await createManagedUser(e, user, { deliver: false });
    e.travis.failAllWrites(500);
    const store = openStore(e);
    try {
      const report = await runRotation(deps(e, rotationConfig({ users: [{ name: user, sinks: [travis(user)] }] }), store), { users: [user], force: true });
      expect(report.users[0]).toMatchObject({ outcome: 'failed', code: 'ERR_SINK_HTTP' });
      expect(report.users[0]!.steps.at(-1)).toBe('discard');
      expect(await listKeys(e, user)).toEqual([{ id: original.keyId, status: 'Active' }]);
      const created = auditOf(user, 'rotation.create').find((r) => r.outcome === 'ok')!.new_key_id;
      expect(auditOf(user, 'rotation.discard').find((r) => r.outcome === 'ok')).toMatchObject({ key_id: created, reason: 'no sink received it, and its secret ends with this process' });
      // The next run still backs off, and knows the rotation is unfinished.
      expect(await store.getRotationState(user)).toMatchObject({ phase: 'creating', newKeyId: null, errorCode: 'ERR_SINK_HTTP', failures: 1 });
      expect(await auditGaps(e, user, [original.keyId])).toEqual([]);
    } finally {
      e.travis.clear();
      await store.close();
    }
  });

  it('after a sink that answered (HTTP 500), the next run needs no late-write guard; after one that never answered, it pushes there again', async () => {
    const answered = 'late-guard-answered';
    const silent = 'late-guard-silent';
    await createManagedUser(e, answered, { deliver: false });
    await createManagedUser(e, silent, { deliver: false });
    // Answers reads (the preflight), never answers writes.
    const hung = await startHangingProxy(e.gitlab.url, (body) => body.length > 0);
    const gitlab = (user: string, baseUrl: string) => ({ type: 'gitlab' as const, token_env: 'GL_TOKEN', base_url: baseUrl, project: `acme/${user}` });
    const store = openStore(e);
    try {
      // First runs fail: one sink answers 500, the other never answers a write (aborted at sink_timeout_ms).
      e.gitlab.failAllWrites(500);
      await runRotation(deps(e, rotationConfig({ sink_attempts: 1, users: [{ name: answered, sinks: [gitlab(answered, e.gitlab.url)] }] }), store), { users: [answered], force: true });
      e.gitlab.clear();
      await runRotation(deps(e, rotationConfig({ sink_attempts: 1, sink_timeout_ms: 500, users: [{ name: silent, sinks: [gitlab(silent, hung.endpoint)] }] }), store), { users: [silent], force: true });
      const discard = (user: string) => auditOf(user, 'rotation.discard').find((r) => r.outcome === 'ok')!;
      expect(discard(answered).late_writes).toBeUndefined();
      expect(discard(silent).late_writes).toMatchObject({ sinks: [`gitlab:acme/${silent}:*`] });

      // Re-run at once (as an operator would after fixing the sink).
      const again = async (user: string) =>
        (await runRotation(deps(e, rotationConfig({ users: [{ name: user, sinks: [gitlab(user, e.gitlab.url)] }] }), store), { users: [user], force: true })).users[0]!;
      expect((await again(answered)).steps).toEqual(['create', 'propagate', `push:gitlab:acme/${answered}:*`, 'verify', 'deactivate']);
      expect((await again(silent)).steps).toEqual(['create', 'propagate', `push:gitlab:acme/${silent}:*`, `repush:gitlab:acme/${silent}:*`, 'verify', 'deactivate']);
      for (const user of [answered, silent]) expect(e.gitlab.variable(`acme/${user}`, 'AWS_ACCESS_KEY_ID')?.value).toBe((await listKeys(e, user)).find((k) => k.status === 'Active')!.id);
    } finally {
      e.gitlab.clear();
      await hung.close();
      await store.close();
    }
  });

  it('is kept while the loop runs (the next run resumes with it), and deleted when the loop stops', async () => {
    const user = 'undelivered-loop';
    const original = await createManagedUser(e, user, { deliver: false });
    e.travis.failAllWrites(503);
    const store = openStore(e);
    const reports: RunReport[] = [];
    const d = deps(e, rotationConfig({ max_key_age_seconds: 3600, users: [{ name: user, sinks: [travis(user)] }] }), store, { holder: 'loop-undelivered' });
    e.clock.advance(7200);
    const loop = startRotationLoop({
      config: d.config,
      aws: { region: 'us-east-1', max_attempts: 1, http_timeout_ms: 5000 },
      store,
      iam: e.iam,
      audit: d.audit,
      logger: d.logger,
      registry: new Registry(),
      env: d.env!,
      now: d.now!,
      holder: 'loop-undelivered',
      random: () => 0,
      onRun: (r) => reports.push(r),
    });
    try {
      const end = Date.now() + 20_000;
      while (reports.length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      expect(reports[0]?.users[0]).toMatchObject({ outcome: 'failed', phase: 'pushing' });
      expect(await listKeys(e, user)).toHaveLength(2);
    } finally {
      await loop.stop();
      e.travis.clear();
    }
    expect(await listKeys(e, user)).toEqual([{ id: original.keyId, status: 'Active' }]);
    expect(auditOf(user, 'rotation.discard').find((r) => r.outcome === 'ok')).toBeDefined();
    // The lock is free again.
    const lease = await store.acquireLease('rotation', 'someone-else', 1000);
    expect(lease).toBeDefined();
    await store.releaseLease(lease!);
    await store.close();
  });

  it('that some sinks received stays (they work with it); `keys` marks it with the sinks that have it', async () => {
    const user = 'half-delivered';
    await createManagedUser(e, user, { deliver: false });
    e.travis.failAllWrites(500);
    const store = openStore(e);
    try {
      const config = rotationConfig({ users: [{ name: user, sinks: [github(user), travis(user)] }] });
      const report = await runRotation(deps(e, config, store), { users: [user], force: true });
      expect(report.users[0]).toMatchObject({ outcome: 'failed', phase: 'pushing' });
      expect(await listKeys(e, user)).toHaveLength(2);
      const inv = await inventory({ config, store, iam: e.iam, logger: deps(e, config, store).logger });
      const keys = inv.users.find((u) => u.userName === user)!.keys;
      const fresh = keys.find((k) => k.undelivered !== undefined)!;
      expect(fresh.undelivered).toBe(`created by credbroker, delivered to 1 of 2 sinks (github:repo:acme/${user})`);
      expect(keys.filter((k) => k.undelivered !== undefined)).toHaveLength(1);
    } finally {
      e.travis.clear();
      await store.close();
    }
  });

  it.each([
    { crashAt: 'push/before', note: 'created by credbroker, delivered to no sink yet' },
    { crashAt: 'create/applied', note: 'created by credbroker in a run that was interrupted, delivered to no sink (the next run deletes it)' },
  ])('left by a process that died ($crashAt) is marked by `keys`', async ({ crashAt }) => {
    const user = `died-${crashAt.replace('/', '-')}`;
    await createManagedUser(e, user, { deliver: false });
    const config = rotationConfig({ users: [{ name: user, sinks: [github(user)] }] });
    const store = openStore(e);
    try {
      const crash = (b: BoundaryInfo) => {
        if (`${b.step}/${b.point}` === crashAt) throw new Error('process dies here');
      };
      await expect(runRotation(deps(e, config, store, { holder: `dies-${crashAt}`, hooks: { boundary: crash } }), { users: [user], force: true })).rejects.toThrow();
      e.clock.advance(config.lease_seconds + 1); // the dead process's lease expires
      const inv = await inventory({ config, store, iam: e.iam, logger: deps(e, config, store).logger });
      const marked = inv.users.find((u) => u.userName === user)!.keys.filter((k) => k.undelivered !== undefined);
      expect(marked.map((k) => k.undelivered)).toEqual([expect.any(String)]);
      expect(marked[0]!.undelivered).toBe(crashAt === 'push/before' ? 'created by credbroker, delivered to no sink yet' : 'created by credbroker in a run that was interrupted, delivered to no sink (the next run deletes it)');
    } finally {
      await store.close();
    }
  });
});

describe('an IAM CreateAccessKey that never answers', () => {
  it('fails the step with ERR_IAM_UNAVAILABLE within aws.http_timeout_ms and releases the lock; the next run audits what IAM shows', async () => {
    const user = 'create-hangs';
    const original = await createManagedUser(e, user, { deliver: false });
    const proxy = await startHangingProxy(e.moto.endpoint, (body) => body.includes('Action=CreateAccessKey'));
    const creds = { accessKeyId: e.env.AWS_ACCESS_KEY_ID!, secretAccessKey: e.env.AWS_SECRET_ACCESS_KEY! };
    const hanging = createIamKeys({ region: 'us-east-1', iamEndpoint: proxy.endpoint, stsEndpoint: e.moto.endpoint, credentials: creds, httpTimeoutMs: 500, maxAttempts: 3, throttleBaseMs: 1 });
    const config = rotationConfig({ users: [{ name: user, sinks: [github(user)] }] });
    const store = openStore(e);
    try {
      const started = performance.now();
      const report = await runRotation({ ...deps(e, config, store, { holder: 'hangs' }), iam: hanging }, { users: [user], force: true });
      expect(performance.now() - started).toBeLessThan(5000);
      expect(report.users[0]).toMatchObject({ outcome: 'failed', phase: 'creating', code: 'ERR_IAM_UNAVAILABLE', message: 'IAM CreateAccessKey: no answer within 500 ms' });
      expect(proxy.held).toHaveLength(1); // not retried: it could have created a key
      const probe = await store.acquireLease('rotation', 'probe', 1000); // released
      expect(probe).toBeDefined();
      await store.releaseLease(probe!);
      expect(await store.getRotationState(user)).toMatchObject({ pendingIam: { step: 'create', unanswered: true } });
      expect(auditOf(user, 'rotation.create').map((r) => r.outcome)).toEqual(['intent', 'failed']);

      // Next run, IAM answering again: the pending create is audited as observed, then the rotation goes on.
      e.clock.advance(3600);
      const next = await runRotation(deps(e, config, store, { holder: 'next' }), { users: [user] });
      expect(next.users[0]).toMatchObject({ outcome: 'progressed' });
      const observed = auditOf(user, 'rotation.create').find((r) => r.observed === 'after_no_answer');
      expect(observed).toMatchObject({ outcome: 'not_applied', key_id: null });
      expect((await listKeys(e, user)).find((k) => k.id === original.keyId)!.status).toBe('Inactive');
      expect(await auditGaps(e, user, [original.keyId])).toEqual([]);
    } finally {
      await proxy.close();
      await store.close();
    }
  });
});
