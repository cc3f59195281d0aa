// Replays what the Pulumi program registered (under mocks) as IAM API calls against moto, the way
// the AWS provider would create those resources. Only the resource types credbroker uses.
import {
  IAMClient,
  CreateRoleCommand,
  CreateUserCommand,
  PutRolePolicyCommand,
  PutUserPolicyCommand,
  UpdateAssumeRolePolicyCommand,
} from '@aws-sdk/client-iam';
import type { Registration } from './pulumi-mocks.js';

const tagList = (tags: Record<string, string> | undefined) => Object.entries(tags ?? {}).map(([Key, Value]) => ({ Key, Value }));

/** Creates roles and users first, then their policies. Throws on a resource type it does not know. */
export async function applyToMoto(iam: IAMClient, registrations: Registration[]): Promise<void> {
  const custom = registrations.filter((r) => !r.type.startsWith('credbroker:') && !r.type.startsWith('pulumi:'));
  const order = ['aws:iam/role:Role', 'aws:iam/user:User', 'aws:iam/rolePolicy:RolePolicy', 'aws:iam/userPolicy:UserPolicy'];
  for (const r of custom) if (!order.includes(r.type)) throw new Error(`applyToMoto: unsupported resource ${r.type} (${r.name})`);
  for (const type of order) {
    for (const { inputs: i } of custom.filter((r) => r.type === type)) {
      switch (type) {
        case 'aws:iam/role:Role':
          await iam.send(
            new CreateRoleCommand({
              RoleName: i.name,
              Path: i.path,
              AssumeRolePolicyDocument: i.assumeRolePolicy,
              MaxSessionDuration: i.maxSessionDuration,
              Description: i.description,
              Tags: tagList(i.tags),
            }),
          );
          // moto validates trust documents only on update: have it check ours too.
          await iam.send(new UpdateAssumeRolePolicyCommand({ RoleName: i.name, PolicyDocument: i.assumeRolePolicy }));
          break;
        case 'aws:iam/user:User':
          await iam.send(new CreateUserCommand({ UserName: i.name, Path: i.path, Tags: tagList(i.tags) }));
          break;
        case 'aws:iam/rolePolicy:RolePolicy':
          await iam.send(new PutRolePolicyCommand({ RoleName: i.role, PolicyName: i.name, PolicyDocument: i.policy }));
          break;
        case 'aws:iam/userPolicy:UserPolicy':
          await iam.send(new PutUserPolicyCommand({ UserName: i.user, PolicyName: i.name, PolicyDocument: i.policy }));
          break;
      }
    }
  }
}
