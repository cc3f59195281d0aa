// The broker's own role: its permission policy and trust policy, evaluated by an IAM simulator.
// The broker must reach target roles and rotation users, and nothing next to them.
import { describe, expect, it } from 'vitest';
import { brokerPermissionsPolicy, ROTATION_KEY_ACTIONS, type BrokerPermissionsInput, type RotationMatch } from '../../infra/policies/broker-permissions.js';
import { brokerTrustPolicy } from '../../infra/policies/broker-trust.js';
import { simulate, type Decision } from './simulate.js';

const ACCOUNT = '111111111111';
const OTHER_ACCOUNT = '444455556666';
const BROKER_ROLE = `arn:aws:iam::${ACCOUNT}:role/credbroker-system/credbroker-broker`;
const BROKER_SESSION = `arn:aws:sts::${ACCOUNT}:assumed-role/credbroker-broker/ecs-task-5f2c`;
const user = (path: string, name: string) => `arn:aws:iam::${ACCOUNT}:user${path}${name}`;
const role = (account: string, path: string, name: string) => `arn:aws:iam::${account}:role${path}${name}`;
const TAGGED = { 'aws:ResourceTag/credbroker:rotate': 'true' };

const baseInput: BrokerPermissionsInput = {
  partition: 'aws',
  accountId: ACCOUNT,
  targetAccountIds: [ACCOUNT, OTHER_ACCOUNT],
  targetRolePath: '/credbroker/',
  rotation: { path: '/credbroker/static/', tagKey: 'credbroker:rotate', tagValue: 'true', match: 'path-and-tag' },
  revocation: true,
};

/**
 * A resource policy in another account that trusts the broker's whole account, so that only the
 * broker's own permission policy decides (cross-account calls need both sides).
 */
const trustsBrokerAccount = (action: string) => ({
  Version: '2012-10-17' as const,
  Statement: [{ Sid: 'TrustBrokerAccount', Effect: 'Allow' as const, Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: action }],
});

function asBroker(identityPolicy = brokerPermissionsPolicy(baseInput)) {
  return (action: string, resource: string, context: Record<string, string> = {}, resourceAccount = ACCOUNT): Promise<Decision> =>
    simulate({
      principal: BROKER_SESSION,
      action,
      resource,
      resourceAccount,
      context,
      identityPolicy,
      ...(resourceAccount !== ACCOUNT && action.startsWith('sts:') ? { resourcePolicy: trustsBrokerAccount(action) } : {}),
    });
}

describe('broker permission policy (simulated)', () => {
  const broker = asBroker();

  describe('exchange', () => {
    it.each(['sts:AssumeRole', 'sts:TagSession', 'sts:SetSourceIdentity'])('allows %s on target roles under the path, in every target account', async (action) => {
      expect(await broker(action, role(ACCOUNT, '/credbroker/', 'deploy'))).toBe('Allowed');
      expect(await broker(action, role(ACCOUNT, '/credbroker/team-a/', 'deploy'))).toBe('Allowed');
      expect(await broker(action, role(OTHER_ACCOUNT, '/credbroker/', 'deploy-production'), {}, OTHER_ACCOUNT)).toBe('Allowed');
    });

    const outside: Array<[string, string, string]> = [
      ['a role at the root path', role(ACCOUNT, '/', 'Admin'), ACCOUNT],
      ['a role whose path only starts with the same letters', role(ACCOUNT, '/credbroker-evil/', 'x'), ACCOUNT],
      ['the broker’s own role', BROKER_ROLE, ACCOUNT],
      ['a target-path role in an account that is not a target account', role('999999999999', '/credbroker/', 'deploy'), '999999999999'],
    ];
    it.each(outside)('cannot assume %s', async (_name, arn, account) => {
      expect(await broker('sts:AssumeRole', arn, {}, account)).toBe('ImplicitlyDenied');
    });
  });

  describe('revocation', () => {
    it('may put an inline policy (AWSRevokeOlderSessions) on target roles of its own account', async () => {
      expect(await broker('iam:PutRolePolicy', role(ACCOUNT, '/credbroker/', 'deploy'))).toBe('Allowed');
    });

    it.each([
      ['its own role', BROKER_ROLE],
      ['a role outside the target path', role(ACCOUNT, '/', 'Admin')],
    ])('may not put a policy on %s', async (_name, arn) => {
      expect(await broker('iam:PutRolePolicy', arn)).toBe('ImplicitlyDenied');
    });

    it.each(['iam:AttachRolePolicy', 'iam:DeleteRolePolicy', 'iam:UpdateAssumeRolePolicy', 'iam:DeleteRolePermissionsBoundary'])(
      'may not %s on target roles',
      async (action) => {
        expect(await broker(action, role(ACCOUNT, '/credbroker/', 'deploy'))).toBe('ImplicitlyDenied');
      },
    );

    it('gets no PutRolePolicy at all when revocation is off', async () => {
      const noRevocation = asBroker(brokerPermissionsPolicy({ ...baseInput, revocation: false }));
      expect(await noRevocation('iam:PutRolePolicy', role(ACCOUNT, '/credbroker/', 'deploy'))).toBe('ImplicitlyDenied');
    });
  });

  describe('rotation', () => {
    const inPath = user('/credbroker/static/', 'travis-deploy');
    const outOfPath = user('/', 'alice');

    // Which users each match mode reaches: [mode, user, tagged, expected]
    const table: Array<[RotationMatch, string, string, boolean, Decision]> = [
      ['path-and-tag', 'a tagged user under the path', inPath, true, 'Allowed'],
      ['path-and-tag', 'an untagged user under the path', inPath, false, 'ImplicitlyDenied'],
      ['path-and-tag', 'a tagged user outside the path', outOfPath, true, 'ImplicitlyDenied'],
      ['path', 'an untagged user under the path', inPath, false, 'Allowed'],
      ['path', 'a tagged user outside the path', outOfPath, true, 'ImplicitlyDenied'],
      ['tag', 'a tagged user outside the path', outOfPath, true, 'Allowed'],
      ['tag', 'an untagged user under the path', inPath, false, 'ImplicitlyDenied'],
      ['path-or-tag', 'an untagged user under the path', inPath, false, 'Allowed'],
      ['path-or-tag', 'a tagged user outside the path', outOfPath, true, 'Allowed'],
      ['path-or-tag', 'an untagged user outside the path', outOfPath, false, 'ImplicitlyDenied'],
    ];
    describe.each(table)('match %s: %s', (match, _name, arn, tagged, expected) => {
      const rotating = asBroker(brokerPermissionsPolicy({ ...baseInput, rotation: { ...baseInput.rotation!, match } }));
      it.each([...ROTATION_KEY_ACTIONS])(`%s → ${expected}`, async (action) => {
        expect(await rotating(action, arn, tagged ? TAGGED : {})).toBe(expected);
      });
    });

    it('does not accept a different value of the rotation tag', async () => {
      expect(await broker('iam:CreateAccessKey', inPath, { 'aws:ResourceTag/credbroker:rotate': 'false' })).toBe('ImplicitlyDenied');
    });

    it.each(['iam:CreateUser', 'iam:DeleteUser', 'iam:PutUserPolicy', 'iam:AttachUserPolicy', 'iam:TagUser', 'iam:UntagUser', 'iam:CreateLoginProfile'])(
      'may not %s, even on a rotation user',
      async (action) => {
        expect(await broker(action, inPath, TAGGED)).toBe('ImplicitlyDenied');
      },
    );

    it('may list users (ListUsers has no resource scope) and read tags under the path only', async () => {
      expect(await broker('iam:ListUsers', '*')).toBe('Allowed');
      expect(await broker('iam:ListUserTags', inPath)).toBe('Allowed');
      expect(await broker('iam:ListUserTags', outOfPath)).toBe('ImplicitlyDenied');
    });

    it('reads tags of every user when it must discover tagged users anywhere', async () => {
      const byTag = asBroker(brokerPermissionsPolicy({ ...baseInput, rotation: { ...baseInput.rotation!, match: 'tag' } }));
      expect(await byTag('iam:ListUserTags', outOfPath)).toBe('Allowed');
    });

    it('gets no IAM user permission at all when rotation is off', async () => {
      const noRotation = asBroker(brokerPermissionsPolicy({ ...baseInput, rotation: undefined }));
      expect(await noRotation('iam:CreateAccessKey', inPath, TAGGED)).toBe('ImplicitlyDenied');
      expect(await noRotation('iam:ListUsers', '*')).toBe('ImplicitlyDenied');
    });
  });
});

describe('broker trust policy (simulated)', () => {
  const trust = brokerTrustPolicy({ accountId: ACCOUNT, services: ['ecs-tasks', 'ec2'], principalArns: [`arn:aws:iam::${ACCOUNT}:role/eks-credbroker`] });
  const assume = (principal: string, context: Record<string, string> = {}) =>
    simulate({ principal, action: 'sts:AssumeRole', resource: BROKER_ROLE, resourceAccount: ACCOUNT, context, resourcePolicy: trust });

  it('lets ECS tasks of its own account run as the broker', async () => {
    expect(await assume('ecs-tasks.amazonaws.com', { 'aws:SourceAccount': ACCOUNT })).toBe('Allowed');
  });

  it('refuses ECS tasks on behalf of another account (confused deputy)', async () => {
    expect(await assume('ecs-tasks.amazonaws.com', { 'aws:SourceAccount': OTHER_ACCOUNT })).toBe('ImplicitlyDenied');
  });

  it('lets EC2 instances and the configured principal run as the broker', async () => {
    expect(await assume('ec2.amazonaws.com')).toBe('Allowed');
    expect(await assume(`arn:aws:iam::${ACCOUNT}:role/eks-credbroker`)).toBe('Allowed');
  });

  it('refuses services and principals it does not name', async () => {
    expect(await assume('lambda.amazonaws.com')).toBe('ImplicitlyDenied');
    expect(await assume(`arn:aws:iam::${ACCOUNT}:role/Admin`)).toBe('ImplicitlyDenied');
  });
});

describe('broker trust policy for an EKS service account (IRSA)', () => {
  // Read, not simulated: the simulator does not know the condition keys of an IAM OIDC provider
  // (<issuer>:sub, <issuer>:aud) and would ignore them — a "denied" would then prove nothing.
  const ISSUER = 'oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE';
  const PROVIDER = `arn:aws:iam::${ACCOUNT}:oidc-provider/${ISSUER}`;

  it('trusts exactly one service account of that cluster, with STS as the audience', () => {
    const trust = brokerTrustPolicy({
      accountId: ACCOUNT,
      services: [],
      principalArns: [],
      eksServiceAccounts: [{ oidcProviderArn: PROVIDER, namespace: 'credbroker', serviceAccount: 'credbroker' }],
    });
    expect(trust.Statement).toEqual([
      {
        Sid: 'EksServiceAccount0',
        Effect: 'Allow',
        Principal: { Federated: PROVIDER },
        Action: 'sts:AssumeRoleWithWebIdentity',
        Condition: { StringEquals: { [`${ISSUER}:sub`]: 'system:serviceaccount:credbroker:credbroker', [`${ISSUER}:aud`]: 'sts.amazonaws.com' } },
      },
    ]);
  });
});
