// Users selected by IAM tag under a path, with sinks templated per user; GitHub environment and
// organization secrets.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runRotation } from '../../../server/src/rotation/run.js';
import { createManagedUser, deps, listKeys, openStore, rotationConfig, startEnv, type Env } from './harness.js';

let e: Env;
beforeAll(async () => {
  e = await startEnv();
  e.clock.now = new Date();
}, 120_000);
afterAll(async () => {
  await e?.close();
});

describe('users by tag, sinks by template', () => {
  it('rotates every tagged user under the path into its own repository, and reports one whose tag is missing', async () => {
    await createManagedUser(e, 'tagged_a', { tags: { 'credbroker:rotate': 'true', 'credbroker:repo': 'app-a' }, deliver: false });
    await createManagedUser(e, 'tagged_b', { tags: { 'credbroker:rotate': 'true', 'credbroker:repo': 'app-b' }, deliver: false });
    await createManagedUser(e, 'tagged-no-repo', { tags: { 'credbroker:rotate': 'true' }, deliver: false });
    await createManagedUser(e, 'untagged', { deliver: false });
    await createManagedUser(e, 'tagged-elsewhere', { tags: { 'credbroker:rotate': 'true', 'credbroker:repo': 'x' }, path: '/humans/', deliver: false });

    const config = rotationConfig({
      users: [
        {
          tag: { key: 'credbroker:rotate', value: 'true' },
          path_prefix: '/ci/',
          sinks: [
            { type: 'github', token_env: 'GH_TOKEN', base_url: e.github.url, owner: 'acme', repo: '{tag:credbroker:repo}', environment: 'production', allowed_targets: ['github:env:acme/app-*/production'] },
            { type: 'github', token_env: 'GH_TOKEN', base_url: e.github.url, org: 'acme', visibility: 'selected', selected_repository_ids: [1], access_key_id_name: 'AWS_ACCESS_KEY_ID_{user}', secret_access_key_name: 'AWS_SECRET_ACCESS_KEY_{user}' },
          ],
        },
      ],
    });
    const store = openStore(e);
    const report = await runRotation(deps(e, config, store), { force: true });
    await store.close();

    expect(report.users.map((u) => [u.userName, u.outcome, u.phase])).toEqual([
      ['tagged_a', 'progressed', 'grace'],
      ['tagged_b', 'progressed', 'grace'],
    ]);
    expect(report.problems).toEqual([expect.objectContaining({ userName: 'tagged-no-repo', code: 'ERR_SINK_TEMPLATE' })]);
    for (const [user, repo] of [['tagged_a', 'app-a'], ['tagged_b', 'app-b']] as const) {
      const active = (await listKeys(e, user)).find((k) => k.status === 'Active')!;
      expect(e.github.decrypt(`env:acme/${repo}/production`, 'AWS_ACCESS_KEY_ID')).toBe(active.id);
      expect(e.github.decrypt('org:acme', `AWS_ACCESS_KEY_ID_${user}`)).toBe(active.id);
    }
    expect(await listKeys(e, 'untagged')).toHaveLength(1);
    expect(await listKeys(e, 'tagged-elsewhere')).toHaveLength(1);
  });

  it('a user whose tag points outside allowed_targets is reported and not rotated: its next key goes nowhere', async () => {
    // Someone with iam:TagUser on a managed user tries to send its next key to a repository of theirs.
    const victim = await createManagedUser(e, 'retagged', { tags: { 'credbroker:rotate': 'true', 'credbroker:repo': 'evil' }, deliver: false });
    const traversal = await createManagedUser(e, 'dotdot', { tags: { 'credbroker:rotate': 'true', 'credbroker:repo': 'app-x/../../evil' }, deliver: false });
    const config = rotationConfig({
      users: [
        {
          tag: { key: 'credbroker:rotate', value: 'true' },
          path_prefix: '/ci/',
          sinks: [{ type: 'github', token_env: 'GH_TOKEN', base_url: e.github.url, owner: 'acme', repo: '{tag:credbroker:repo}', allowed_targets: ['github:repo:acme/app-*'] }],
        },
      ],
    });
    const store = openStore(e);
    const report = await runRotation(deps(e, config, store), { users: ['retagged', 'dotdot'], force: true });
    await store.close();
    expect(report.users).toEqual([]);
    expect(report.problems).toEqual([
      expect.objectContaining({ userName: 'dotdot', code: 'ERR_SINK_TARGET_NOT_ALLOWED' }),
      expect.objectContaining({ userName: 'retagged', code: 'ERR_SINK_TARGET_NOT_ALLOWED', message: expect.stringContaining('target github:repo:acme/evil of user retagged is not in allowed_targets') }),
    ]);
    // No key was created, and nothing was written anywhere.
    expect(await listKeys(e, 'retagged')).toEqual([{ id: victim.keyId, status: 'Active' }]);
    expect(await listKeys(e, 'dotdot')).toEqual([{ id: traversal.keyId, status: 'Active' }]);
    expect(e.github.scopes.has('repo:acme/evil')).toBe(false);
    expect([...e.github.scopes.keys()].filter((k) => k.includes('evil'))).toEqual([]);
  });
});

describe('two Active keys at start', () => {
  it('changes nothing, enters the error state once, and raises the error metric', async () => {
    const user = 'two_active';
    const first = await createManagedUser(e, user, { deliver: false });
    const { CreateAccessKeyCommand } = await import('@aws-sdk/client-iam');
    await e.iamAdmin.send(new CreateAccessKeyCommand({ UserName: user }));
    const before = await listKeys(e, user);
    const config = rotationConfig({ users: [{ name: user, sinks: [{ type: 'travis', token_env: 'TRAVIS_TOKEN', base_url: e.travis.url, repo: `acme/${user}` }] }] });
    const store = openStore(e);
    for (let i = 0; i < 2; i++) {
      const report = await runRotation(deps(e, config, store), { users: [user], force: true });
      expect(report.users[0]).toMatchObject({ outcome: 'error', phase: 'error', code: 'ERR_ROTATION_TWO_ACTIVE_KEYS' });
    }
    expect((await store.getRotationState(user))!.phase).toBe('error');
    await store.close();
    expect(await listKeys(e, user)).toEqual(before);
    expect(before.map((k) => k.id)).toContain(first.keyId);
    expect(e.travis.log.filter((l) => l.path.includes(user))).toEqual([]);
    expect(e.audit.filter((r) => r.user === user).map((r) => r.event)).toEqual(['rotation.error']);
    expect(await e.registry.getSingleMetricAsString('credbroker_rotation_user_error')).toContain(`credbroker_rotation_user_error{user="${user}"} 1`);
  });
});
