// The target role trust policy, evaluated by an IAM simulator together with the broker's own
// permission policy — both exactly as the Pulumi program generates them.
import { describe, expect, it } from 'vitest';
import { targetTrustPolicy, sourceIdentityPatternFor, type TargetTrustInput } from '../../infra/policies/target-trust.js';
import { brokerPermissionsPolicy } from '../../infra/policies/broker-permissions.js';
import { simulateAssumeRole, type AssumeRoleRequest } from './simulate.js';

const BROKER_ACCOUNT = '111111111111';
const OTHER_ACCOUNT = '444455556666';
const BROKER_ROLE = `arn:aws:iam::${BROKER_ACCOUNT}:role/credbroker-system/credbroker-broker`;
const BROKER_SESSION = `arn:aws:sts::${BROKER_ACCOUNT}:assumed-role/credbroker-broker/ecs-task-5f2c`;
const TARGET_ROLE = `arn:aws:iam::${BROKER_ACCOUNT}:role/credbroker/deploy`;
const REMOTE_TARGET_ROLE = `arn:aws:iam::${OTHER_ACCOUNT}:role/credbroker/deploy-production`;

const trustInput: TargetTrustInput = {
  brokerRoleArn: BROKER_ROLE,
  sessionTagKeys: ['provider', 'repository_id', 'ref', 'workflow'],
  sessionTagValues: { provider: ['github-actions'] },
  transitiveTagKeys: ['repository_id'],
  sourceIdentityPattern: sourceIdentityPatternFor('gh-{repository_id}-{actor_id}'),
  requireSourceIdentity: true,
};
const trust = targetTrustPolicy(trustInput);
const brokerPolicy = brokerPermissionsPolicy({
  partition: 'aws',
  accountId: BROKER_ACCOUNT,
  targetAccountIds: [BROKER_ACCOUNT, OTHER_ACCOUNT],
  targetRolePath: '/credbroker/',
  rotation: { path: '/credbroker/static/', tagKey: 'credbroker:rotate', tagValue: 'true', match: 'path-and-tag' },
  revocation: true,
});

/** What the broker sends for a GitHub Actions job (server/src/core/presets.ts, github-actions). */
const brokerCall: AssumeRoleRequest = {
  principal: BROKER_SESSION,
  roleArn: TARGET_ROLE,
  roleAccount: BROKER_ACCOUNT,
  sessionName: 'gh-487920697-9012345678-1',
  sourceIdentity: 'gh-487920697-583231',
  tags: { provider: 'github-actions', repository_id: '487920697', ref: 'refs/heads/main', workflow: 'deploy' },
  transitiveTagKeys: ['repository_id'],
  identityPolicy: brokerPolicy,
  trustPolicy: trust,
};

describe('target role trust policy (simulated)', () => {
  it('allows the broker with the expected tags and source identity', async () => {
    const verdict = await simulateAssumeRole(brokerCall);
    expect(verdict.actions).toEqual({ 'sts:AssumeRole': 'Allowed', 'sts:TagSession': 'Allowed', 'sts:SetSourceIdentity': 'Allowed' });
    expect(verdict.decision).toBe('Allowed');
  });

  it('allows the broker with a subset of the allowed tag keys', async () => {
    const tags = { provider: 'github-actions', repository_id: '487920697' };
    expect((await simulateAssumeRole({ ...brokerCall, tags })).decision).toBe('Allowed');
  });

  it('requires a tag whose value is constrained (the broker always sends every configured tag)', async () => {
    const verdict = await simulateAssumeRole({ ...brokerCall, tags: { repository_id: '487920697' } });
    expect(verdict.actions['sts:TagSession']).toBe('ImplicitlyDenied');
  });

  it('allows the broker role itself as principal, not only its sessions', async () => {
    expect((await simulateAssumeRole({ ...brokerCall, principal: BROKER_ROLE })).decision).toBe('Allowed');
  });

  const otherPrincipals: Array<[string, string]> = [
    ['another role of the same account', `arn:aws:iam::${BROKER_ACCOUNT}:role/credbroker-system/not-the-broker`],
    ['a session of another role', `arn:aws:sts::${BROKER_ACCOUNT}:assumed-role/deployer/alice`],
    ['a role with the broker’s name in another account', `arn:aws:iam::${OTHER_ACCOUNT}:role/credbroker-system/credbroker-broker`],
    ['a user of the same account', `arn:aws:iam::${BROKER_ACCOUNT}:user/alice`],
  ];
  it.each(otherPrincipals)('denies %s, even with the same tags and source identity', async (_name, principal) => {
    const verdict = await simulateAssumeRole({ ...brokerCall, principal });
    expect(verdict.actions['sts:AssumeRole']).toBe('ImplicitlyDenied');
    expect(verdict.decision).toBe('ImplicitlyDenied');
  });

  it('denies an administrator of the same account whose own policy allows sts:* on everything', async () => {
    const admin = { Version: '2012-10-17' as const, Statement: [{ Sid: 'Admin', Effect: 'Allow' as const, Action: '*', Resource: '*' }] };
    const verdict = await simulateAssumeRole({ ...brokerCall, principal: `arn:aws:iam::${BROKER_ACCOUNT}:role/Admin`, identityPolicy: admin });
    expect(verdict.actions['sts:AssumeRole']).toBe('ImplicitlyDenied');
  });

  it('denies a tag key outside the allowed set', async () => {
    const verdict = await simulateAssumeRole({ ...brokerCall, tags: { ...brokerCall.tags, environment: 'production' } });
    expect(verdict.actions['sts:TagSession']).toBe('ImplicitlyDenied');
    expect(verdict.decision).toBe('ImplicitlyDenied');
  });

  it('denies an allowed tag key whose value is outside its pattern', async () => {
    const verdict = await simulateAssumeRole({ ...brokerCall, tags: { ...brokerCall.tags, provider: 'gitlab' } });
    expect(verdict.actions['sts:TagSession']).toBe('ImplicitlyDenied');
  });

  it('denies a transitive tag key that is not allowed to be transitive', async () => {
    const verdict = await simulateAssumeRole({ ...brokerCall, transitiveTagKeys: ['repository_id', 'ref'] });
    expect(verdict.actions['sts:TagSession']).toBe('ImplicitlyDenied');
  });

  it('denies transitive keys altogether on a role that allows none', async () => {
    const noTransitive = targetTrustPolicy({ ...trustInput, transitiveTagKeys: [] });
    const verdict = await simulateAssumeRole({ ...brokerCall, trustPolicy: noTransitive });
    expect(verdict.actions['sts:TagSession']).toBe('ImplicitlyDenied');
    const without = await simulateAssumeRole({ ...brokerCall, trustPolicy: noTransitive, transitiveTagKeys: [] });
    expect(without.decision).toBe('Allowed');
  });

  it('denies any session tag on a role that allows none', async () => {
    const noTags = targetTrustPolicy({ ...trustInput, sessionTagKeys: [], sessionTagValues: {}, transitiveTagKeys: [] });
    expect((await simulateAssumeRole({ ...brokerCall, trustPolicy: noTags, transitiveTagKeys: [] })).actions['sts:TagSession']).toBe('ImplicitlyDenied');
    expect((await simulateAssumeRole({ ...brokerCall, trustPolicy: noTags, tags: {} })).decision).toBe('Allowed');
  });

  it('denies a call without SourceIdentity when the role requires one', async () => {
    const { sourceIdentity: _omit, ...withoutSourceIdentity } = brokerCall;
    const verdict = await simulateAssumeRole(withoutSourceIdentity);
    expect(verdict.actions['sts:AssumeRole']).toBe('ImplicitlyDenied');
    expect(verdict.decision).toBe('ImplicitlyDenied');
  });

  it('allows a call without SourceIdentity when the role does not require one', async () => {
    const { sourceIdentity: _omit, ...withoutSourceIdentity } = brokerCall;
    const optional = targetTrustPolicy({ ...trustInput, requireSourceIdentity: false });
    expect((await simulateAssumeRole({ ...withoutSourceIdentity, trustPolicy: optional })).decision).toBe('Allowed');
  });

  it('denies a SourceIdentity outside the pattern, even when not required', async () => {
    const optional = targetTrustPolicy({ ...trustInput, requireSourceIdentity: false });
    const verdict = await simulateAssumeRole({ ...brokerCall, trustPolicy: optional, sourceIdentity: 'gl-20-4711' });
    expect(verdict.actions['sts:SetSourceIdentity']).toBe('ImplicitlyDenied');
    expect(verdict.decision).toBe('ImplicitlyDenied');
  });

  it('anchors the source identity pattern at the start', async () => {
    const verdict = await simulateAssumeRole({ ...brokerCall, sourceIdentity: 'evil-gh-487920697-583231' });
    expect(verdict.decision).toBe('ImplicitlyDenied');
  });

  describe('across accounts', () => {
    const remote: AssumeRoleRequest = { ...brokerCall, roleArn: REMOTE_TARGET_ROLE, roleAccount: OTHER_ACCOUNT };

    it('allows the broker into a target role of another account it is granted', async () => {
      expect((await simulateAssumeRole(remote)).decision).toBe('Allowed');
    });

    it('denies it when the broker’s own policy does not name that account', async () => {
      const homeOnly = brokerPermissionsPolicy({
        partition: 'aws',
        accountId: BROKER_ACCOUNT,
        targetAccountIds: [BROKER_ACCOUNT],
        targetRolePath: '/credbroker/',
        revocation: false,
      });
      const verdict = await simulateAssumeRole({ ...remote, identityPolicy: homeOnly });
      expect(verdict.actions['sts:AssumeRole']).toBe('ImplicitlyDenied');
    });
  });
});
