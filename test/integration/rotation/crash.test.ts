// Crash injection at every step boundary: a hook aborts the run there (nothing more is written,
// the lease is not released, the in-memory secret is gone), then a new runner starts on the same
// SQLite file. Asserted: the invariant holds at the crash point, the restart converges, and the
// invariant holds at the end — each sink holds a key that exists and is Active, never >2 keys.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runRotation } from '../../../server/src/rotation/run.js';
import type { BoundaryInfo } from '../../../server/src/rotation/rotate-user.js';
import { allSinks, auditGaps, createManagedUser, deps, held, invariantProblems, listKeys, openStore, rotationConfig, startEnv, type Env } from './harness.js';

let e: Env;
beforeAll(async () => {
  e = await startEnv();
  e.clock.now = new Date();
}, 120_000);
afterAll(async () => {
  await e?.close();
});

const GRACE = 3600;
const LEASE = 120;
const SINKS = ['github', 'gitlab', 'circleci', 'travis', 'command'];
const STEPS = ['start', 'create', 'propagate', ...SINKS.map((s) => `push:${s}`), 'verify', 'deactivate', 'delete'];
const IAM_STEPS = ['create', 'deactivate', 'delete'];
const POINTS = ['before', 'applied', 'persisted'] as const;
const BOUNDARIES = STEPS.flatMap((step) => POINTS.map((point) => ({ step, point })));

const label = (b: BoundaryInfo) => (b.step === 'push' ? `push:${b.sinkId!.split(':')[0]}` : b.step);
const config = (user: string) => rotationConfig({ grace_period_seconds: GRACE, lease_seconds: LEASE, users: [{ name: user, sinks: allSinks(e, user) }] });

class Crash extends Error {}

/** Every secret access key any sink ever held in this file, for the final leak scan. */
const issued = new Set<string>();
const collect = (user: string) => {
  for (const h of held(e, user)) if (h.secretAccessKey) issued.add(h.secretAccessKey);
};

/** Runs (forced, as `credbroker rotate --user X` would) until the rotation is complete. */
async function converge(user: string, holder: string, firstHook?: (b: BoundaryInfo) => void) {
  let hook = firstHook;
  for (let run = 0; run < 8; run++) {
    const store = openStore(e);
    try {
      const report = await runRotation(deps(e, config(user), store, { holder: `${holder}-${run}`, hooks: { boundary: (b) => hook?.(b) } }), { users: [user], force: true });
      const r = report.users[0]!;
      if (r.phase === 'idle' && (await listKeys(e, user)).length === 1) return r;
      expect(r.outcome, JSON.stringify(r)).not.toMatch(/failed|error/);
      if (r.outcome === 'waiting' || r.phase === 'grace') e.clock.advance(GRACE + 1);
    } catch (err) {
      if (!(err instanceof Crash) && (err as Error).name !== 'BoundaryAbort') throw err;
      e.clock.advance(LEASE + 1); // the dead runner's lease must expire first
    } finally {
      await store.close();
    }
    hook = undefined;
  }
  throw new Error(`${user} did not converge`);
}

describe('crash injection at every step boundary', () => {
  it('a clean rotation passes exactly these boundaries', async () => {
    await createManagedUser(e, 'probe');
    const seen: string[] = [];
    await converge('probe', 'probe', undefined);
    // Re-run a second user with a recording hook across both runs (rotation, then deletion).
    await createManagedUser(e, 'probe2');
    const store = openStore(e);
    const rec = { boundary: (b: BoundaryInfo) => void seen.push(`${label(b)}/${b.point}`) };
    await runRotation(deps(e, config('probe2'), store, { hooks: rec }), { users: ['probe2'], force: true });
    e.clock.advance(GRACE + 1);
    await runRotation(deps(e, config('probe2'), store, { hooks: rec }), { users: ['probe2'] });
    await store.close();
    expect(seen).toEqual(BOUNDARIES.map((b) => `${b.step}/${b.point}`));
  });

  it.each(BOUNDARIES.map((b, i) => ({ ...b, i })))('crash at $step/$point, then restart: converges with the invariants', async ({ step, point, i }) => {
    const user = `crash-${i}`;
    const original = await createManagedUser(e, user);
    e.keyCounts.length = 0;
    let crashedAt: string | undefined;
    let atCrash: string[] | undefined;
    const crashHook = async (b: BoundaryInfo) => {
      if (crashedAt === undefined && label(b) === step && b.point === point) {
        crashedAt = `${label(b)}/${b.point}`;
        throw new Crash(crashedAt);
      }
    };
    // Drive the first run(s) with the crash hook until it fires (delete happens in a later run).
    for (let run = 0; run < 3 && crashedAt === undefined; run++) {
      const store = openStore(e);
      try {
        const report = await runRotation(deps(e, config(user), store, { holder: `first-${run}`, hooks: { boundary: crashHook } }), { users: [user], force: run === 0 });
        expect(report.users[0]!.outcome).not.toMatch(/failed|error/);
        e.clock.advance(GRACE + 1);
      } catch (err) {
        if ((err as Error).name !== 'BoundaryAbort') throw err;
        atCrash = await invariantProblems(e, user);
        collect(user);
        e.clock.advance(LEASE + 1);
      } finally {
        await store.close();
      }
    }
    expect(crashedAt).toBe(`${step}/${point}`);
    expect(atCrash, 'invariant at the crash point').toEqual([]);

    // Restart: crash once more at the recovery's first side effect, then let it finish.
    await converge(user, 'restart', (b) => {
      if (b.point === 'applied') throw new Crash('second crash');
    });

    const keys = await listKeys(e, user);
    expect(keys).toHaveLength(1);
    expect(keys[0]!.status).toBe('Active');
    expect(keys[0]!.id).not.toBe(original.keyId);
    for (const h of held(e, user)) expect(h.accessKeyId, h.sink).toBe(keys[0]!.id);
    expect(await invariantProblems(e, user)).toEqual([]);
    expect(Math.max(...e.keyCounts), 'never more than 2 keys').toBeLessThanOrEqual(2);
    // Every IAM change is in the audit trail, also the one whose own record died with the process.
    expect(await auditGaps(e, user, [original.keyId])).toEqual([]);
    if (IAM_STEPS.includes(step) && point !== 'persisted') {
      const observed = e.audit.find((r) => r.user === user && r.event === `rotation.${step}` && r.observed === 'after_crash');
      expect(observed, 'the interrupted IAM change is audited as observed after the crash').toMatchObject({ outcome: point === 'applied' ? 'ok' : 'not_applied' });
    }
    collect(user);
  });

  it('no issued secret access key appears in the logs, the audit records or the store file', async () => {
    const { readFileSync, readdirSync } = await import('node:fs');
    const path = await import('node:path');
    expect(issued.size).toBeGreaterThan(BOUNDARIES.length);
    const haystacks = [
      e.logs.join('\n'),
      JSON.stringify(e.audit),
      ...readdirSync(e.dir)
        .filter((f) => f.startsWith('store.sqlite'))
        .map((f) => readFileSync(path.join(e.dir, f)).toString('latin1')),
    ];
    for (const secret of issued) for (const h of haystacks) expect(h.includes(secret), 'a secret access key leaked').toBe(false);
  });
});
