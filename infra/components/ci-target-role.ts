// A role CI jobs end up in: assumable only by the broker identity (see target-trust.ts), with the
// permissions the job needs. Attachments and inline policies are separate resources on purpose:
// `Role.inlinePolicies` would be managed exclusively, and the next `pulumi up` would delete the
// AWSRevokeOlderSessions policy the broker attaches to revoke sessions.
import * as pulumi from '@pulumi/pulumi';
import * as aws from '@pulumi/aws';
import { targetTrustPolicy } from '../policies/target-trust.js';
import { policyShortName, resourceTags } from './tags.js';

export interface CiTargetRoleArgs {
  roleName: string;
  path: string;
  brokerRoleArn: pulumi.Input<string>;
  description?: string | undefined;
  maxSessionDurationSeconds: number;
  managedPolicyArns: string[];
  inlinePolicies: Record<string, unknown>;
  permissionsBoundaryArn?: string | undefined;
  sessionTagKeys: string[];
  sessionTagValues: Record<string, string[]>;
  transitiveTagKeys: string[];
  sourceIdentityPattern: string;
  requireSourceIdentity: boolean;
  tags?: Record<string, string>;
}

export class CiTargetRole extends pulumi.ComponentResource {
  readonly role: aws.iam.Role;
  readonly attachments: aws.iam.RolePolicyAttachment[];
  readonly inlinePolicies: aws.iam.RolePolicy[];
  readonly arn: pulumi.Output<string>;
  readonly roleName: pulumi.Output<string>;
  /** The trust policy as JSON (also the role's assumeRolePolicy). */
  readonly trustPolicy: pulumi.Output<string>;

  constructor(name: string, args: CiTargetRoleArgs, opts?: pulumi.ComponentResourceOptions) {
    super('credbroker:iam:CiTargetRole', name, {}, opts);

    this.trustPolicy = pulumi.output(args.brokerRoleArn).apply((brokerRoleArn) =>
      JSON.stringify(
        targetTrustPolicy({
          brokerRoleArn,
          sessionTagKeys: args.sessionTagKeys,
          sessionTagValues: args.sessionTagValues,
          transitiveTagKeys: args.transitiveTagKeys,
          sourceIdentityPattern: args.sourceIdentityPattern,
          requireSourceIdentity: args.requireSourceIdentity,
        }),
      ),
    );
    this.role = new aws.iam.Role(
      name,
      {
        name: args.roleName,
        path: args.path,
        description: args.description ?? 'credbroker: CI target role, assumable only through the broker',
        assumeRolePolicy: this.trustPolicy,
        maxSessionDuration: args.maxSessionDurationSeconds,
        ...(args.permissionsBoundaryArn !== undefined ? { permissionsBoundary: args.permissionsBoundaryArn } : {}),
        tags: resourceTags('ci-target-role', args.tags),
      },
      { parent: this },
    );
    this.attachments = args.managedPolicyArns.map(
      (policyArn) =>
        new aws.iam.RolePolicyAttachment(`${name}-${policyShortName(policyArn)}`, { role: this.role.name, policyArn }, { parent: this }),
    );
    this.inlinePolicies = Object.entries(args.inlinePolicies).map(
      ([policyName, document]) =>
        new aws.iam.RolePolicy(`${name}-${policyName}`, { name: policyName, role: this.role.name, policy: JSON.stringify(document) }, { parent: this }),
    );

    this.arn = this.role.arn;
    this.roleName = this.role.name;
    this.registerOutputs({ arn: this.arn, roleName: this.roleName, trustPolicy: this.trustPolicy });
  }
}
