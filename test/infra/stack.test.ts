// The whole stack program (infra/index.ts) under Pulumi mocks, configured with the sample stack
// file infra/Pulumi.example.yaml: what it creates where, and what it exports — above all the
// broker config's `roles:` section, which must load in the real broker and match the trust.
import { beforeAll, describe, expect, it } from 'vitest';
import * as pulumi from '@pulumi/pulumi';
import { parse } from 'yaml';
import { parseConfig } from '../../server/src/config/load.js';
import { installMocks, settle, valueOf, HOME_ACCOUNT, type MockWorld } from './pulumi-mocks.js';
import { asRuntimeConfig, stackFileConfig } from './stack-config.js';

const PROD_ACCOUNT = '444455556666';
let world: MockWorld;
let program: typeof import('../../infra/index.js');
let outputs: {
  brokerRoleArn: string;
  targetRoleArns: Record<string, string>;
  staticUserArns: Record<string, string>;
  brokerRoles: Record<string, any>;
  brokerRolesYaml: string;
  brokerInstanceProfileName: string | undefined;
};

beforeAll(async () => {
  world = await installMocks();
  pulumi.runtime.setAllConfig(asRuntimeConfig(stackFileConfig()));
  program = await import('../../infra/index.js');
  outputs = {
    brokerRoleArn: await valueOf(program.brokerRoleArn),
    targetRoleArns: await valueOf(program.targetRoleArns),
    staticUserArns: await valueOf(program.staticUserArns),
    brokerRoles: await valueOf(program.brokerRoles),
    brokerRolesYaml: await valueOf(program.brokerRolesYaml),
    brokerInstanceProfileName: await valueOf(program.brokerInstanceProfileName),
  };
  await settle(100);
});

const trustOf = (name: string) => JSON.parse(world.one('aws:iam/role:Role', name).inputs.assumeRolePolicy);

describe('stack program with the sample stack config', () => {
  it('exports the role and user ARNs', () => {
    expect(outputs.brokerRoleArn).toBe(`arn:aws:iam::${HOME_ACCOUNT}:role/credbroker-system/credbroker-broker`);
    expect(outputs.targetRoleArns).toEqual({
      'read-only': `arn:aws:iam::${HOME_ACCOUNT}:role/credbroker/read-only`,
      'deploy-production': `arn:aws:iam::${PROD_ACCOUNT}:role/credbroker/deploy-production`,
    });
    expect(outputs.staticUserArns).toEqual({ 'travis-deploy': `arn:aws:iam::${HOME_ACCOUNT}:user/credbroker/static/travis-deploy` });
    expect(outputs.brokerInstanceProfileName).toBeUndefined();
  });

  it('deploys into the other account through an explicit provider pinned to it', () => {
    const provider = world.one('pulumi:providers:aws', 'account-production').inputs;
    expect(JSON.parse(provider.allowedAccountIds)).toEqual([PROD_ACCOUNT]);
    expect(JSON.parse(provider.assumeRoles)).toEqual([{ roleArn: `arn:aws:iam::${PROD_ACCOUNT}:role/pulumi-deploy`, sessionName: 'credbroker-pulumi' }]);
    expect(world.one('aws:iam/role:Role', 'role-deploy-production').providerName).toBe('account-production');
    expect(world.one('aws:iam/rolePolicy:RolePolicy', 'role-deploy-production-deploy-web').providerName).toBe('account-production');
    expect(world.one('aws:iam/role:Role', 'role-read-only').providerName).toBeUndefined();
    expect(world.one('aws:iam/role:Role', 'broker').providerName).toBeUndefined();
  });

  it('passes the broker identity ARN across accounts into the trust policy', () => {
    for (const role of ['role-read-only', 'role-deploy-production']) {
      for (const s of trustOf(role).Statement) expect(s.Principal).toEqual({ AWS: outputs.brokerRoleArn });
    }
  });

  it('grants the broker its exchange actions in both accounts and IAM actions only in its own', () => {
    const policy = JSON.parse(world.one('aws:iam/rolePolicy:RolePolicy', 'broker-permissions').inputs.policy);
    const sid = (id: string) => policy.Statement.find((s: { Sid: string }) => s.Sid === id);
    expect(sid('ExchangeIntoTargetRoles').Resource).toEqual([
      `arn:aws:iam::${HOME_ACCOUNT}:role/credbroker/*`,
      `arn:aws:iam::${PROD_ACCOUNT}:role/credbroker/*`,
    ]);
    expect(sid('RevokeTargetRoleSessions').Resource).toBe(`arn:aws:iam::${HOME_ACCOUNT}:role/credbroker/*`);
    expect(sid('RotateKeysOfTaggedUsersUnderPath')).toMatchObject({
      Resource: `arn:aws:iam::${HOME_ACCOUNT}:user/credbroker/static/*`,
      Condition: { StringEquals: { 'aws:ResourceTag/credbroker:rotate': 'true' } },
    });
  });

  it('creates the static user tagged for rotation, with no access key', () => {
    expect(world.one('aws:iam/user:User', 'user-travis-deploy').inputs.tags).toMatchObject({ 'credbroker:rotate': 'true', team: 'security' });
    expect(world.byType('aws:iam/accessKey:AccessKey')).toEqual([]);
  });

  it('tags every taggable resource with the stack tags', () => {
    const iam = world.registrations.filter((r) => ['aws:iam/role:Role', 'aws:iam/user:User'].includes(r.type));
    expect(iam).toHaveLength(5); // broker, two targets, the static user, the service's task execution role
    const tagged = world.registrations.filter((r) => r.inputs.tags !== undefined);
    expect(tagged.length).toBeGreaterThan(30);
    for (const r of tagged) expect(r.inputs.tags, `${r.type}/${r.name}`).toMatchObject({ 'managed-by': 'pulumi', team: 'security' });
  });

  it('creates the components with their resources as children', () => {
    const components = world.registrations.filter((r) => r.type.startsWith('credbroker:'));
    expect(components.map((c) => `${c.type}/${c.name}`).sort()).toEqual([
      'credbroker:database:BrokerDatabase/broker-service-db',
      'credbroker:iam:BrokerIdentity/broker',
      'credbroker:iam:CiTargetRole/role-deploy-production',
      'credbroker:iam:CiTargetRole/role-read-only',
      'credbroker:iam:StaticCiUser/user-travis-deploy',
      'credbroker:network:BrokerNetwork/broker-service-network',
      'credbroker:service:BrokerImageRepository/broker-image',
      'credbroker:service:BrokerService/broker-service',
    ]);
    expect(world.registeredOutputs.size).toBeGreaterThanOrEqual(8);
  });
});

describe('emitted broker roles config', () => {
  it('names each role with its ARN, max duration, session tags and source identity', () => {
    expect(outputs.brokerRoles['read-only']).toEqual({
      description: 'Read-only access for any branch of octo-org/octo-repo.',
      arn: outputs.targetRoleArns['read-only'],
      max_duration_seconds: 3600,
      source_identity: 'gh-{repository_id}-{actor_id}',
      tags: { provider: '{@provider}', repository_id: '{repository_id}', ref: '{ref}', workflow: '{workflow}' },
      transitive_tag_keys: ['repository_id'],
      allow: [{ issuer: 'github', claims: { repository_owner_id: '9919', repository_id: '487920697', ref: { glob: 'refs/heads/**' } } }],
    });
    expect(parse(outputs.brokerRolesYaml)).toEqual({ roles: outputs.brokerRoles });
  });

  it('cannot drift from the trust: tag keys, transitive keys and source identity prefix match the trust policy', () => {
    for (const [key, role] of Object.entries(outputs.brokerRoles)) {
      const trust = trustOf(`role-${key}`);
      const tagging = trust.Statement.find((s: { Action: string }) => s.Action === 'sts:TagSession');
      expect(tagging.Condition['ForAllValues:StringEquals']['aws:TagKeys']).toEqual(Object.keys(role.tags));
      expect(tagging.Condition['ForAllValues:StringEquals']['sts:TransitiveTagKeys']).toEqual(role.transitive_tag_keys);
      const assume = trust.Statement.find((s: { Action: string }) => s.Action === 'sts:AssumeRole');
      const pattern: string = assume.Condition.StringLike['sts:SourceIdentity'];
      expect(pattern).toBe(`${String(role.source_identity).split('{')[0]}*`);
    }
  });

  it('loads in the real broker config, together with an issuer and its bindings', () => {
    const brokerRoles = structuredClone(outputs.brokerRoles);
    const { config } = parseConfig(
      JSON.stringify({ issuers: { github: { preset: 'github-actions', audiences: ['https://credbroker.example.com'] } }, roles: brokerRoles }),
      'emitted',
    );
    expect(config).toBeDefined();
  });
});
