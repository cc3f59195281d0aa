// A full rotation against moto (IAM/STS) and the CI API stand-ins driven by the real clients.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sodium from 'libsodium-wrappers';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { STSClient, GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { runRotation } from '../../../server/src/rotation/run.js';
import { allSinks, createManagedUser, deps, held, invariantProblems, listKeys, openStore, rotationConfig, startEnv, type Env } from './harness.js';

let e: Env;
beforeAll(async () => {
  e = await startEnv();
}, 120_000);
afterAll(async () => {
  await e?.close();
});

describe('a full rotation', () => {
  const user = 'ci-travis-deployer';
  let original: { keyId: string; secret: string };
  const issued: string[] = [];

  it('is not due while the key is younger than max_key_age', async () => {
    original = await createManagedUser(e, user);
    issued.push(original.secret);
    e.clock.now = new Date();
    const store = openStore(e);
    const config = rotationConfig({ users: [{ name: user, sinks: allSinks(e, user) }] });
    const report = await runRotation(deps(e, config, store));
    expect(report.users[0]).toMatchObject({ userName: user, outcome: 'idle' });
    expect(await listKeys(e, user)).toEqual([{ id: original.keyId, status: 'Active' }]);
    await store.close();
  });

  it('delivers a new key everywhere, verifies it, and deactivates the old one once the key is due', async () => {
    // moto stamps keys with the real time; the test clock moves 2 h ahead and max age is 1 h.
    e.clock.advance(7200);
    const store = openStore(e);
    const config = rotationConfig({ users: [{ name: user, max_key_age_seconds: 3600, sinks: allSinks(e, user) }] });
    const report = await runRotation(deps(e, config, store));
    expect(report.users[0]).toMatchObject({ outcome: 'progressed', phase: 'grace' });
    expect(report.users[0]!.steps).toEqual([
      'start',
      'create',
      'propagate',
      'push:github:repo:acme/ci-travis-deployer',
      'push:gitlab:acme/ci-travis-deployer:*',
      'push:circleci:gh/acme/ci-travis-deployer',
      'push:travis:acme/ci-travis-deployer',
      'push:command:file',
      'verify',
      'deactivate',
    ]);

    const keys = await listKeys(e, user);
    expect(keys).toHaveLength(2);
    const newKey = keys.find((k) => k.id !== original.keyId)!;
    // moto does not reject an Inactive key when it is used, so "the old key no longer works" is
    // asserted through its status in IAM, not through a failing call.
    expect(keys.find((k) => k.id === original.keyId)!.status).toBe('Inactive');
    expect(newKey.status).toBe('Active');

    // GitHub received sealed boxes; the test opens them with the repository's private key.
    await sodium.ready;
    const scope = e.github.scopes.get(`repo:acme/${user}`)!;
    const open = (name: string) =>
      sodium.to_string(sodium.crypto_box_seal_open(sodium.from_base64(scope.secrets.get(name)!.encrypted_value, sodium.base64_variants.ORIGINAL), scope.publicKey, scope.privateKey));
    expect(open('AWS_ACCESS_KEY_ID')).toBe(newKey.id);
    const secret = open('AWS_SECRET_ACCESS_KEY');
    expect(secret).toMatch(/^[A-Za-z0-9/+]{40}$/);
    expect(secret).not.toBe(original.secret);
    issued.push(secret);

    // The delivered key signs a call that moto attributes to the user.
    const sts = new STSClient({ region: 'us-east-1', endpoint: e.moto.endpoint, credentials: { accessKeyId: open('AWS_ACCESS_KEY_ID'), secretAccessKey: secret } });
    const who = await sts.send(new GetCallerIdentityCommand({}));
    expect(who.Arn).toBe(`arn:aws:iam::123456789012:user/ci/${user}`);

    // Every sink holds the same new pair; GitLab's is masked and protected, Travis's private.
    for (const h of held(e, user)) expect(h).toMatchObject({ accessKeyId: newKey.id, secretAccessKey: secret });
    expect(e.gitlab.variable(`acme/${user}`, 'AWS_SECRET_ACCESS_KEY')).toMatchObject({ masked: true, protected: true });
    expect(e.travis.repos.get(`acme/${user}`)!.every((v) => v.public === false)).toBe(true);
    expect(await invariantProblems(e, user)).toEqual([]);
    expect(Math.max(...e.keyCounts)).toBeLessThanOrEqual(2);
    await store.close();
  });

  it('the command sink got the credentials on stdin only: not in argv, not in its environment', () => {
    const seen = JSON.parse(readFileSync(path.join(e.dir, `${user}.json`), 'utf8')) as { stdin: Record<string, string>; argv: string[]; env: Record<string, string> };
    expect(seen.stdin.access_key_id).toMatch(/^AKIA/);
    const secret = seen.stdin.secret_access_key!;
    expect(JSON.stringify(seen.argv)).not.toContain(secret);
    expect(JSON.stringify(seen.env)).not.toContain(secret);
    expect(JSON.stringify(seen.env)).not.toContain(seen.stdin.access_key_id);
    // Nor the broker's own credentials.
    expect(Object.keys(seen.env)).not.toContain('AWS_SECRET_ACCESS_KEY');
  });

  it('waits out the grace period, then deletes the old key', async () => {
    const store = openStore(e);
    const config = rotationConfig({ users: [{ name: user, sinks: allSinks(e, user) }] });
    e.clock.advance(1800);
    const early = await runRotation(deps(e, config, store));
    expect(early.users[0]).toMatchObject({ outcome: 'waiting', phase: 'grace' });
    expect(await listKeys(e, user)).toHaveLength(2);

    e.clock.advance(1801);
    const late = await runRotation(deps(e, config, store));
    expect(late.users[0]).toMatchObject({ outcome: 'progressed', phase: 'idle', steps: ['delete'] });
    const keys = await listKeys(e, user);
    expect(keys).toHaveLength(1);
    expect(keys[0]!.id).not.toBe(original.keyId);
    expect(keys[0]!.status).toBe('Active');
    expect(await invariantProblems(e, user)).toEqual([]);
    expect(Math.max(...e.keyCounts)).toBeLessThanOrEqual(2);
    await store.close();
  });

  it('audits every step with key ids, and records metrics', async () => {
    const events = e.audit.map((r) => r.event);
    expect(events).toEqual(
      expect.arrayContaining(['rotation.start', 'rotation.create', 'rotation.propagate', 'rotation.push', 'rotation.verify', 'rotation.deactivate', 'rotation.delete']),
    );
    const create = e.audit.find((r) => r.event === 'rotation.create' && r.outcome === 'ok')!;
    expect(create).toMatchObject({ user, old_key_id: original.keyId });
    expect(create.new_key_id).toMatch(/^AKIA/);
    // `start` names the key it replaces.
    expect(e.audit.find((r) => r.event === 'rotation.start')).toMatchObject({ user, outcome: 'ok', old_key_id: original.keyId, new_key_id: null });
    // Every IAM change has its intent written before the call, then its outcome, in that order.
    const iam = e.audit.filter((r) => ['rotation.create', 'rotation.deactivate', 'rotation.delete'].includes(String(r.event)));
    expect(iam.map((r) => `${String(r.event)}:${String(r.outcome)}`)).toEqual([
      'rotation.create:intent',
      'rotation.create:ok',
      'rotation.deactivate:intent',
      'rotation.deactivate:ok',
      'rotation.delete:intent',
      'rotation.delete:ok',
    ]);
    expect(iam.find((r) => r.event === 'rotation.delete' && r.outcome === 'intent')).toMatchObject({ key_id: original.keyId });
    const metrics = await e.registry.getSingleMetricAsString('credbroker_rotation_steps_total');
    expect(metrics).toContain('step="push",outcome="ok"} 5');
  });

  it('never writes an issued secret access key to logs, audit or the store file', () => {
    expect(issued).toHaveLength(2);
    const haystacks = [
      e.logs.join('\n'),
      JSON.stringify(e.audit),
      ...readdirSync(e.dir)
        .filter((f) => f.startsWith('store.sqlite'))
        .map((f) => readFileSync(path.join(e.dir, f)).toString('latin1')),
    ];
    expect(haystacks[0]!.length).toBeGreaterThan(0);
    for (const secret of issued) {
      for (const h of haystacks) expect(h.includes(secret), 'a secret access key leaked').toBe(false);
    }
  });
});
