// Wires the components from parsed settings: one broker identity in the deploying account, target
// roles in that account or in others (through explicit providers), static users for rotation and,
// with `service`, the image repository and the broker service.
// index.ts reads the Pulumi config and exports what this returns.
import * as pulumi from '@pulumi/pulumi';
import * as aws from '@pulumi/aws';
import { BrokerIdentity } from './components/broker-identity.js';
import { CiTargetRole } from './components/ci-target-role.js';
import { StaticCiUser } from './components/static-ci-user.js';
import { BrokerImageRepository } from './components/broker-image-repository.js';
import { BrokerService } from './components/broker-service.js';
import { brokerRolesConfig, brokerRolesYaml, type BrokerRoleEntry } from './broker-roles-config.js';
import type { StackSettings } from './settings.js';

export interface HomeAccount {
  accountId: pulumi.Input<string>;
  partition: pulumi.Input<string>;
  /** The stack's region (the deployed broker's default STS region). */
  region?: pulumi.Input<string>;
}

export interface CredbrokerStack {
  broker: BrokerIdentity;
  /** One explicit provider per configured other account. */
  providers: Record<string, aws.Provider>;
  targetRoles: Record<string, CiTargetRole>;
  staticUsers: Record<string, StaticCiUser>;
  imageRepository?: BrokerImageRepository;
  service?: BrokerService;
  outputs: {
    brokerRoleArn: pulumi.Output<string>;
    brokerRoleName: pulumi.Output<string>;
    brokerInstanceProfileName: pulumi.Output<string | undefined>;
    targetRoleArns: pulumi.Output<Record<string, string>>;
    staticUserArns: pulumi.Output<Record<string, string>>;
    /** The broker config's `roles:` section, and the same as YAML. */
    brokerRoles: pulumi.Output<Record<string, BrokerRoleEntry>>;
    brokerRolesYaml: pulumi.Output<string>;
    /** The deployed service (undefined without `service`, or before its image digest is set). */
    service: {
      url: pulumi.Output<string | undefined>;
      loadBalancerDnsName: pulumi.Output<string | undefined>;
      adminUrl: pulumi.Output<string | undefined>;
      adminLoadBalancerDnsName: pulumi.Output<string | undefined>;
      ecrRepositoryUrl: pulumi.Output<string | undefined>;
      clusterName: pulumi.Output<string | undefined>;
      serviceName: pulumi.Output<string | undefined>;
      logGroupName: pulumi.Output<string | undefined>;
      configSecretArn: pulumi.Output<string | undefined>;
      databaseSecretArn: pulumi.Output<string | undefined>;
      brokerConfigYaml: pulumi.Output<string | undefined>;
    };
  };
}

export function createCredbrokerStack(settings: StackSettings, home: HomeAccount): CredbrokerStack {
  const providers: Record<string, aws.Provider> = {};
  for (const [name, account] of Object.entries(settings.accounts)) {
    if (!settings.roles.some((r) => r.account === name)) continue;
    const region = account.region ?? aws.config.region;
    providers[name] = new aws.Provider(`account-${name}`, {
      // Refuses to act if the credentials land in any other account.
      allowedAccountIds: [account.accountId],
      ...(region !== undefined ? { region: region as aws.Region } : {}),
      ...(account.deployRoleArn !== undefined ? { assumeRoles: [{ roleArn: account.deployRoleArn, sessionName: 'credbroker-pulumi' }] } : {}),
    });
  }

  const accountIdOf = (account: string | undefined): pulumi.Input<string> =>
    account === undefined ? home.accountId : settings.accounts[account]!.accountId;
  const targetAccountIds = [...new Set(settings.roles.map((r) => r.account))].map(accountIdOf);

  const broker = new BrokerIdentity('broker', {
    roleName: settings.broker.roleName,
    path: settings.broker.path,
    accountId: home.accountId,
    partition: home.partition,
    trustedServices: settings.broker.trustedServices,
    trustedPrincipalArns: settings.broker.trustedPrincipalArns,
    eksServiceAccounts: settings.broker.eksServiceAccounts,
    maxSessionDurationSeconds: settings.broker.maxSessionDurationSeconds,
    targetRolePath: settings.targetRolePath,
    targetAccountIds,
    rotation: settings.rotation.enabled
      ? { path: settings.rotation.path, tagKey: settings.rotation.tagKey, tagValue: settings.rotation.tagValue, match: settings.rotation.match }
      : undefined,
    revocation: settings.revocation,
    tags: settings.tags,
  });

  const targetRoles: Record<string, CiTargetRole> = {};
  for (const r of settings.roles) {
    const provider = r.account === undefined ? undefined : providers[r.account];
    targetRoles[r.key] = new CiTargetRole(
      `role-${r.key}`,
      {
        roleName: r.roleName,
        path: settings.targetRolePath,
        brokerRoleArn: broker.roleArn,
        description: r.description,
        maxSessionDurationSeconds: r.maxSessionDurationSeconds,
        managedPolicyArns: r.managedPolicyArns,
        inlinePolicies: r.inlinePolicies,
        permissionsBoundaryArn: r.permissionsBoundaryArn,
        sessionTagKeys: Object.keys(r.sessionTags),
        sessionTagValues: r.sessionTagValues,
        transitiveTagKeys: r.transitiveTagKeys,
        sourceIdentityPattern: r.sourceIdentityPattern,
        requireSourceIdentity: r.requireSourceIdentity,
        tags: { ...settings.tags, ...r.tags },
      },
      provider ? { provider } : {},
    );
  }

  const staticUsers: Record<string, StaticCiUser> = {};
  for (const u of settings.staticUsers) {
    staticUsers[u.key] = new StaticCiUser(`user-${u.key}`, {
      userName: u.userName,
      path: settings.rotation.path,
      rotationTag: { key: settings.rotation.tagKey, value: settings.rotation.tagValue },
      managedPolicyArns: u.managedPolicyArns,
      inlinePolicies: u.inlinePolicies,
      permissionsBoundaryArn: u.permissionsBoundaryArn,
      tags: { ...settings.tags, ...u.tags },
    });
  }

  const targetRoleArns = pulumi.all(Object.fromEntries(Object.entries(targetRoles).map(([k, r]) => [k, r.arn])));
  const brokerRoles = targetRoleArns.apply((arns) => brokerRolesConfig(settings.roles, arns));

  // The broker itself: the image repository first (an image must be pushed to it before the
  // service can run), then the service once the image digest is set.
  const svc = settings.service;
  const imageRepository = svc?.ecr.create
    ? new BrokerImageRepository('broker-image', { name: svc.ecr.name, keepImages: svc.ecr.keepImages, tags: settings.tags })
    : undefined;
  let service: BrokerService | undefined;
  if (svc && svc.image.digest !== undefined) {
    service = new BrokerService('broker-service', {
      settings: svc,
      brokerRoleArn: broker.roleArn,
      roles: brokerRoles,
      imageRepository: svc.image.repository ?? imageRepository!.repositoryUrl,
      accountId: home.accountId,
      partition: home.partition,
      region: home.region ?? aws.getRegionOutput().region,
      tags: settings.tags,
    });
  } else if (svc) {
    pulumi.log.warn('credbroker:service is set but service.image.digest is not: only the image repository is created. Push the image, set the digest, run `pulumi up` again.');
  }
  const none = pulumi.output<string | undefined>(undefined);
  return {
    broker,
    providers,
    targetRoles,
    staticUsers,
    ...(imageRepository ? { imageRepository } : {}),
    ...(service ? { service } : {}),
    outputs: {
      brokerRoleArn: broker.roleArn,
      brokerRoleName: broker.roleName,
      brokerInstanceProfileName: broker.instanceProfile ? broker.instanceProfile.name : pulumi.output(undefined),
      targetRoleArns,
      staticUserArns: pulumi.all(Object.fromEntries(Object.entries(staticUsers).map(([k, u]) => [k, u.arn]))),
      brokerRoles,
      brokerRolesYaml: brokerRoles.apply(brokerRolesYaml),
      service: {
        url: service?.url ?? none,
        loadBalancerDnsName: service?.loadBalancerDnsName ?? none,
        adminUrl: service?.adminUrl ?? none,
        adminLoadBalancerDnsName: service?.adminLoadBalancerDnsName ?? none,
        ecrRepositoryUrl: imageRepository?.repositoryUrl ?? none,
        clusterName: service?.clusterName ?? none,
        serviceName: service?.serviceName ?? none,
        logGroupName: service?.logGroupName ?? none,
        configSecretArn: service?.configSecretArn ?? none,
        databaseSecretArn: service?.databaseSecretArn ?? none,
        brokerConfigYaml: service?.brokerConfigYaml ?? none,
      },
    },
  };
}
