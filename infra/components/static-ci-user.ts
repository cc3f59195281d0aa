// An IAM user for a CI system that cannot use the broker yet. It lives under the rotation path
// and carries the rotation tag, so the broker's rotation loop (and only it) manages its keys.
// No aws.iam.AccessKey here, ever: Pulumi would write the secret into its state file, and the
// key would never rotate. The first key is created by the rotation loop, delivered to the CI
// secret store, and rotated from then on.
import * as pulumi from '@pulumi/pulumi';
import * as aws from '@pulumi/aws';
import { policyShortName, resourceTags } from './tags.js';

export interface StaticCiUserArgs {
  userName: string;
  /** The rotation path, e.g. /credbroker/static/. */
  path: string;
  rotationTag: { key: string; value: string };
  managedPolicyArns: string[];
  inlinePolicies: Record<string, unknown>;
  permissionsBoundaryArn?: string | undefined;
  tags?: Record<string, string>;
}

export class StaticCiUser extends pulumi.ComponentResource {
  readonly user: aws.iam.User;
  readonly attachments: aws.iam.UserPolicyAttachment[];
  readonly inlinePolicies: aws.iam.UserPolicy[];
  readonly arn: pulumi.Output<string>;
  readonly userName: pulumi.Output<string>;

  constructor(name: string, args: StaticCiUserArgs, opts?: pulumi.ComponentResourceOptions) {
    super('credbroker:iam:StaticCiUser', name, {}, opts);
    this.user = new aws.iam.User(
      name,
      {
        name: args.userName,
        path: args.path,
        // Keys made by the rotation loop are unknown to Pulumi; without this, destroy fails.
        forceDestroy: true,
        ...(args.permissionsBoundaryArn !== undefined ? { permissionsBoundary: args.permissionsBoundaryArn } : {}),
        tags: resourceTags('static-ci-user', args.tags, { [args.rotationTag.key]: args.rotationTag.value }),
      },
      { parent: this },
    );
    this.attachments = args.managedPolicyArns.map(
      (policyArn) =>
        new aws.iam.UserPolicyAttachment(`${name}-${policyShortName(policyArn)}`, { user: this.user.name, policyArn }, { parent: this }),
    );
    this.inlinePolicies = Object.entries(args.inlinePolicies).map(
      ([policyName, document]) =>
        new aws.iam.UserPolicy(`${name}-${policyName}`, { name: policyName, user: this.user.name, policy: JSON.stringify(document) }, { parent: this }),
    );
    this.arn = this.user.arn;
    this.userName = this.user.name;
    this.registerOutputs({ arn: this.arn, userName: this.userName });
  }
}
