// The components under Pulumi mocks: what each creates, how it is named, parented and tagged.
import { beforeAll, describe, expect, it } from 'vitest';
import type * as pulumiTypes from '@pulumi/pulumi';
import { installMocks, settle, valueOf, HOME_ACCOUNT, type MockWorld } from './pulumi-mocks.js';

let world: MockWorld;
let pulumi: typeof pulumiTypes;
let components: {
  BrokerIdentity: typeof import('../../infra/components/broker-identity.js').BrokerIdentity;
  CiTargetRole: typeof import('../../infra/components/ci-target-role.js').CiTargetRole;
  StaticCiUser: typeof import('../../infra/components/static-ci-user.js').StaticCiUser;
};
let policies: {
  targetTrustPolicy: typeof import('../../infra/policies/target-trust.js').targetTrustPolicy;
  brokerPermissionsPolicy: typeof import('../../infra/policies/broker-permissions.js').brokerPermissionsPolicy;
};

beforeAll(async () => {
  world = await installMocks();
  pulumi = await import('@pulumi/pulumi');
  components = {
    ...(await import('../../infra/components/broker-identity.js')),
    ...(await import('../../infra/components/ci-target-role.js')),
    ...(await import('../../infra/components/static-ci-user.js')),
  };
  policies = { ...(await import('../../infra/policies/target-trust.js')), ...(await import('../../infra/policies/broker-permissions.js')) };
});

const BROKER_ARN = `arn:aws:iam::${HOME_ACCOUNT}:role/credbroker-system/credbroker-broker`;

describe('CiTargetRole', () => {
  it('creates the role under the path with the generated trust, its attachments and inline policies as children', async () => {
    const role = new components.CiTargetRole('role-deploy', {
      roleName: 'deploy',
      path: '/credbroker/',
      brokerRoleArn: BROKER_ARN,
      maxSessionDurationSeconds: 7200,
      managedPolicyArns: ['arn:aws:iam::aws:policy/ReadOnlyAccess'],
      inlinePolicies: { 'deploy-web': { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 's3:PutObject', Resource: 'arn:aws:s3:::web/*' }] } },
      sessionTagKeys: ['repository_id', 'ref'],
      sessionTagValues: {},
      transitiveTagKeys: [],
      sourceIdentityPattern: 'gh-*',
      requireSourceIdentity: true,
      tags: { team: 'web' },
    });
    expect(await valueOf(role.arn)).toBe(`arn:aws:iam::${HOME_ACCOUNT}:role/credbroker/deploy`);
    await settle();

    const r = world.one('aws:iam/role:Role', 'role-deploy');
    expect(r.inputs).toMatchObject({ name: 'deploy', path: '/credbroker/', maxSessionDuration: 7200 });
    expect(JSON.parse(r.inputs.assumeRolePolicy)).toEqual(
      policies.targetTrustPolicy({
        brokerRoleArn: BROKER_ARN,
        sessionTagKeys: ['repository_id', 'ref'],
        sessionTagValues: {},
        transitiveTagKeys: [],
        sourceIdentityPattern: 'gh-*',
        requireSourceIdentity: true,
      }),
    );
    expect(r.inputs.tags).toEqual({ 'managed-by': 'pulumi', 'credbroker:component': 'ci-target-role', team: 'web' });
    // Exclusive inline/managed policy management would wipe the broker's AWSRevokeOlderSessions.
    expect(r.inputs).not.toHaveProperty('inlinePolicies');
    expect(r.inputs).not.toHaveProperty('managedPolicyArns');

    expect(world.one('aws:iam/rolePolicyAttachment:RolePolicyAttachment', 'role-deploy-ReadOnlyAccess').inputs).toEqual({
      role: 'deploy',
      policyArn: 'arn:aws:iam::aws:policy/ReadOnlyAccess',
    });
    const inline = world.one('aws:iam/rolePolicy:RolePolicy', 'role-deploy-deploy-web').inputs;
    expect(inline).toMatchObject({ name: 'deploy-web', role: 'deploy' });
    expect(JSON.parse(inline.policy).Statement[0].Action).toBe('s3:PutObject');

    // Parenting shows in the URN's type chain.
    expect(await valueOf(role.role.urn)).toMatch(/::credbroker:iam:CiTargetRole\$aws:iam\/role:Role::role-deploy$/);
    expect(await valueOf(role.attachments[0]!.urn)).toContain('credbroker:iam:CiTargetRole$aws:iam/rolePolicyAttachment:RolePolicyAttachment');
    expect(await valueOf(role.inlinePolicies[0]!.urn)).toContain('credbroker:iam:CiTargetRole$aws:iam/rolePolicy:RolePolicy');
    await settle();
    expect(world.registeredOutputs.get(await valueOf(role.urn))).toEqual(['arn', 'roleName', 'trustPolicy']);
  });

  it('passes a permissions boundary to the role', async () => {
    new components.CiTargetRole('role-bounded', {
      roleName: 'bounded',
      path: '/credbroker/',
      brokerRoleArn: BROKER_ARN,
      maxSessionDurationSeconds: 3600,
      managedPolicyArns: [],
      inlinePolicies: {},
      permissionsBoundaryArn: `arn:aws:iam::${HOME_ACCOUNT}:policy/ci-boundary`,
      sessionTagKeys: [],
      sessionTagValues: {},
      transitiveTagKeys: [],
      sourceIdentityPattern: '*',
      requireSourceIdentity: true,
    });
    await settle();
    expect(world.one('aws:iam/role:Role', 'role-bounded').inputs.permissionsBoundary).toBe(`arn:aws:iam::${HOME_ACCOUNT}:policy/ci-boundary`);
  });
});

describe('StaticCiUser', () => {
  it('creates a tagged user under the rotation path, with its policies, and never an access key', async () => {
    const user = new components.StaticCiUser('user-travis', {
      userName: 'travis-deploy',
      path: '/credbroker/static/',
      rotationTag: { key: 'credbroker:rotate', value: 'true' },
      managedPolicyArns: [`arn:aws:iam::${HOME_ACCOUNT}:policy/team/artifacts-write`],
      inlinePolicies: { upload: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 's3:PutObject', Resource: '*' }] } },
      tags: { team: 'web' },
    });
    expect(await valueOf(user.arn)).toBe(`arn:aws:iam::${HOME_ACCOUNT}:user/credbroker/static/travis-deploy`);
    await settle();

    const u = world.one('aws:iam/user:User', 'user-travis').inputs;
    expect(u).toMatchObject({ name: 'travis-deploy', path: '/credbroker/static/', forceDestroy: true });
    expect(u.tags).toEqual({ 'managed-by': 'pulumi', 'credbroker:component': 'static-ci-user', team: 'web', 'credbroker:rotate': 'true' });
    expect(world.one('aws:iam/userPolicyAttachment:UserPolicyAttachment', 'user-travis-artifacts-write').inputs.user).toBe('travis-deploy');
    expect(world.one('aws:iam/userPolicy:UserPolicy', 'user-travis-upload').inputs).toMatchObject({ name: 'upload', user: 'travis-deploy' });
    expect(world.byType('aws:iam/accessKey:AccessKey')).toEqual([]);
    expect(await valueOf(user.user.urn)).toMatch(/::credbroker:iam:StaticCiUser\$aws:iam\/user:User::user-travis$/);
    await settle();
    expect(world.registeredOutputs.get(await valueOf(user.urn))).toEqual(['arn', 'userName']);
  });

  it('does not let caller tags override the rotation tag', async () => {
    new components.StaticCiUser('user-sneaky', {
      userName: 'sneaky',
      path: '/credbroker/static/',
      rotationTag: { key: 'credbroker:rotate', value: 'true' },
      managedPolicyArns: [],
      inlinePolicies: {},
      tags: { 'credbroker:rotate': 'false' },
    });
    await settle();
    expect(world.one('aws:iam/user:User', 'user-sneaky').inputs.tags['credbroker:rotate']).toBe('true');
  });
});

describe('BrokerIdentity', () => {
  const args = {
    roleName: 'credbroker-broker',
    path: '/credbroker-system/',
    accountId: HOME_ACCOUNT,
    partition: 'aws',
    trustedPrincipalArns: [],
    maxSessionDurationSeconds: 3600,
    targetRolePath: '/credbroker/',
    targetAccountIds: [HOME_ACCOUNT, '444455556666'],
    rotation: { path: '/credbroker/static/', tagKey: 'credbroker:rotate', tagValue: 'true', match: 'path-and-tag' as const },
    revocation: true,
  };

  it('creates the role with its trust and one inline permission policy, and no instance profile for ECS', async () => {
    const broker = new components.BrokerIdentity('broker-ecs', { ...args, trustedServices: ['ecs-tasks'] });
    expect(await valueOf(broker.roleArn)).toBe(BROKER_ARN);
    await settle();
    const role = world.one('aws:iam/role:Role', 'broker-ecs').inputs;
    expect(role).toMatchObject({ name: 'credbroker-broker', path: '/credbroker-system/', maxSessionDuration: 3600 });
    expect(JSON.parse(role.assumeRolePolicy).Statement).toEqual([
      expect.objectContaining({ Principal: { Service: ['ecs-tasks.amazonaws.com'] }, Condition: { StringEquals: { 'aws:SourceAccount': HOME_ACCOUNT } } }),
    ]);
    const permissions = world.one('aws:iam/rolePolicy:RolePolicy', 'broker-ecs-permissions').inputs;
    expect(permissions.role).toBe('credbroker-broker');
    expect(JSON.parse(permissions.policy)).toEqual(
      policies.brokerPermissionsPolicy({ ...args, targetAccountIds: [HOME_ACCOUNT, '444455556666'] }),
    );
    expect(world.registrations.filter((r) => r.type === 'aws:iam/instanceProfile:InstanceProfile' && r.name.startsWith('broker-ecs'))).toEqual([]);
    expect(await valueOf(broker.permissions.urn)).toContain('credbroker:iam:BrokerIdentity$aws:iam/rolePolicy:RolePolicy');
    await settle();
    expect(world.registeredOutputs.get(await valueOf(broker.urn))).toEqual(['roleArn', 'roleName']);
  });

  it('adds an instance profile when EC2 may run the broker', async () => {
    const broker = new components.BrokerIdentity('broker-ec2', { ...args, roleName: 'broker-on-ec2', trustedServices: ['ec2'] });
    await valueOf(broker.roleArn);
    await settle();
    expect(world.one('aws:iam/instanceProfile:InstanceProfile', 'broker-ec2-instance-profile').inputs).toMatchObject({
      name: 'broker-on-ec2',
      path: '/credbroker-system/',
      role: 'broker-on-ec2',
    });
  });

  it('is a ComponentResource', () => {
    expect(pulumi.ComponentResource.isInstance(new components.BrokerIdentity('broker-plain', { ...args, trustedServices: ['lambda'] }))).toBe(true);
  });
});
