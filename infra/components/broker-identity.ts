// The IAM role the broker runs as: trusted by the compute it runs on (ECS task, EC2 instance,
// Lambda) or by given principals, with only the permissions of broker-permissions.ts.
import * as pulumi from '@pulumi/pulumi';
import * as aws from '@pulumi/aws';
import { brokerTrustPolicy, type EksServiceAccount, type TrustedService } from '../policies/broker-trust.js';
import { brokerPermissionsPolicy, type RotationScope } from '../policies/broker-permissions.js';
import { resourceTags } from './tags.js';

export interface BrokerIdentityArgs {
  roleName: string;
  path: string;
  /** The broker's account and partition (from the deploying provider). */
  accountId: pulumi.Input<string>;
  partition: pulumi.Input<string>;
  trustedServices: TrustedService[];
  trustedPrincipalArns: string[];
  eksServiceAccounts?: EksServiceAccount[];
  maxSessionDurationSeconds: number;
  targetRolePath: string;
  /** Accounts holding target roles (the broker's own included when it has some). */
  targetAccountIds: pulumi.Input<string>[];
  rotation?: RotationScope | undefined;
  revocation: boolean;
  tags?: Record<string, string>;
}

export class BrokerIdentity extends pulumi.ComponentResource {
  readonly role: aws.iam.Role;
  readonly permissions: aws.iam.RolePolicy;
  /** Present when EC2 may run the broker: instances need a profile to carry the role. */
  readonly instanceProfile?: aws.iam.InstanceProfile;
  readonly roleArn: pulumi.Output<string>;
  readonly roleName: pulumi.Output<string>;

  constructor(name: string, args: BrokerIdentityArgs, opts?: pulumi.ComponentResourceOptions) {
    super('credbroker:iam:BrokerIdentity', name, {}, opts);
    const tags = resourceTags('broker-identity', args.tags);

    const trust = pulumi
      .output(args.accountId)
      .apply((accountId) => JSON.stringify(brokerTrustPolicy({ accountId, services: args.trustedServices, principalArns: args.trustedPrincipalArns, eksServiceAccounts: args.eksServiceAccounts ?? [] })));
    this.role = new aws.iam.Role(
      name,
      {
        name: args.roleName,
        path: args.path,
        description: 'credbroker: the identity the broker runs as',
        assumeRolePolicy: trust,
        maxSessionDuration: args.maxSessionDurationSeconds,
        tags,
      },
      { parent: this },
    );

    const permissions = pulumi
      .all([args.partition, args.accountId, pulumi.all(args.targetAccountIds)])
      .apply(([partition, accountId, targetAccountIds]) =>
        JSON.stringify(
          brokerPermissionsPolicy({
            partition,
            accountId,
            targetAccountIds,
            targetRolePath: args.targetRolePath,
            rotation: args.rotation,
            revocation: args.revocation,
          }),
        ),
      );
    this.permissions = new aws.iam.RolePolicy(
      `${name}-permissions`,
      { name: 'credbroker-broker', role: this.role.name, policy: permissions },
      { parent: this },
    );

    if (args.trustedServices.includes('ec2')) {
      this.instanceProfile = new aws.iam.InstanceProfile(
        `${name}-instance-profile`,
        { name: args.roleName, path: args.path, role: this.role.name, tags },
        { parent: this },
      );
    }

    this.roleArn = this.role.arn;
    this.roleName = this.role.name;
    this.registerOutputs({
      roleArn: this.roleArn,
      roleName: this.roleName,
      instanceProfileName: this.instanceProfile?.name,
    });
  }
}
