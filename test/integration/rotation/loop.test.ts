// The loop inside the broker: two replicas on one store, only the lock holder rotates; stop()
// waits for the step in flight and leaves a consistent state.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { startRotationLoop } from '../../../server/src/rotation/loop.js';
import type { RunReport } from '../../../server/src/rotation/run.js';
import { MemoryStore } from '../../../server/src/store/memory.js';
import { allSinks, createManagedUser, deps, invariantProblems, listKeys, openStore, rotationConfig, startEnv, type Env } from './harness.js';

let e: Env;
beforeAll(async () => {
  e = await startEnv();
  e.clock.now = new Date(Date.now() + 7200_000); // keys are 2 h old for the loop; max age 1 h
}, 120_000);
afterAll(async () => {
  await e?.close();
});

const config = (users: string[]) =>
  rotationConfig({ max_key_age_seconds: 3600, grace_period_seconds: 3600, users: users.map((name) => ({ name, sinks: allSinks(e, name) })) });

function loopDeps(holder: string, users: string[], onRun?: (r: RunReport) => void) {
  const store = openStore(e);
  const d = deps(e, config(users), store, { holder });
  return {
    store,
    loopDeps: {
      config: d.config,
      aws: { region: 'us-east-1', max_attempts: 2, http_timeout_ms: 5000 },
      store,
      iam: e.iam,
      audit: d.audit,
      logger: d.logger,
      registry: new Registry(),
      env: d.env!,
      now: d.now!,
      holder,
      random: () => 0, // first run right away
      ...(onRun ? { onRun } : {}),
    },
  };
}

const waitFor = async (cond: () => boolean, ms = 20_000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('rotation loop', () => {
  it('two replicas on one store: exactly one rotates the user', async () => {
    const user = 'loop-shared';
    const original = await createManagedUser(e, user);
    const reports: Array<{ holder: string; report: RunReport }> = [];
    const a = loopDeps('replica-a', [user], (report) => reports.push({ holder: 'a', report }));
    const b = loopDeps('replica-b', [user], (report) => reports.push({ holder: 'b', report }));
    const la = startRotationLoop(a.loopDeps);
    const lb = startRotationLoop(b.loopDeps);
    await waitFor(() => reports.length === 2);
    await Promise.all([la.stop(), lb.stop()]);
    await a.store.close();
    await b.store.close();
    const rotated = reports.filter((r) => r.report.users.some((u) => u.steps.includes('create')));
    expect(rotated).toHaveLength(1);
    expect(e.audit.filter((r) => r.user === user && r.event === 'rotation.create' && r.outcome === 'ok')).toHaveLength(1);
    const keys = await listKeys(e, user);
    expect(keys.find((k) => k.id === original.keyId)!.status).toBe('Inactive');
    expect(await invariantProblems(e, user)).toEqual([]);
  });

  it('stop() waits for the step in flight, then nothing more happens; the state stays consistent', async () => {
    const users = ['loop-stop-1', 'loop-stop-2', 'loop-stop-3'];
    for (const u of users) await createManagedUser(e, u);
    const l = loopDeps('replica-c', users);
    const loop = startRotationLoop({ ...l.loopDeps, config: { ...l.loopDeps.config, concurrency: 1 } });
    await waitFor(() => e.audit.some((r) => r.user === 'loop-stop-1' && r.event === 'rotation.push'));
    await loop.stop();
    const count = e.audit.length;
    await new Promise((r) => setTimeout(r, 300));
    expect(e.audit.length).toBe(count);
    for (const u of users) expect(await invariantProblems(e, u)).toEqual([]);
    // The lock was released: another replica can take over at once.
    expect(await l.store.acquireLease('rotation', 'replica-d', 1000)).toBeDefined();
    await l.store.close();
  });

  it('does nothing when rotation is disabled, and refuses an in-memory store', async () => {
    const l = loopDeps('replica-e', ['nobody']);
    const off = startRotationLoop({ ...l.loopDeps, config: { ...l.loopDeps.config, enabled: false } });
    await off.stop();
    expect(() => startRotationLoop({ ...l.loopDeps, store: new MemoryStore() })).toThrow(expect.objectContaining({ code: 'ERR_STORE_NOT_PERSISTENT' }));
    await l.store.close();
  });
});
