// Permission policy of the broker's own role: the least it needs to do its three jobs.
//  - exchange: AssumeRole + TagSession + SetSourceIdentity, only on target roles under one path;
//  - rotation: access-key actions only on users under the rotation path and/or carrying
//    the rotation tag, plus the two read-only calls it needs to find those users;
//  - revocation: PutRolePolicy (the AWSRevokeOlderSessions deny) only on target roles.
import { rolesUnderPath, usersUnderPath } from './arns.js';
import { policy, type PolicyDocument, type Statement } from './document.js';

export const EXCHANGE_ACTIONS = ['sts:AssumeRole', 'sts:TagSession', 'sts:SetSourceIdentity'] as const;

/** What the rotation loop calls on one user (server/src/aws/iam.ts). */
export const ROTATION_KEY_ACTIONS = [
  'iam:CreateAccessKey',
  'iam:UpdateAccessKey',
  'iam:DeleteAccessKey',
  'iam:ListAccessKeys',
  'iam:GetAccessKeyLastUsed',
  'iam:GetUser',
] as const;

/**
 * How rotation recognises its users. `path-and-tag` (default) needs both: a user moved out of the
 * path or untagged is out of reach. `path-or-tag` reaches either.
 */
export const ROTATION_MATCHES = ['path-and-tag', 'path', 'tag', 'path-or-tag'] as const;
export type RotationMatch = (typeof ROTATION_MATCHES)[number];

export interface RotationScope {
  path: string;
  tagKey: string;
  tagValue: string;
  match: RotationMatch;
}

export interface BrokerPermissionsInput {
  partition: string;
  /** The broker's own account: IAM calls (rotation, revocation) only reach this account. */
  accountId: string;
  /** Every account that holds target roles (the broker's own included when it has some). */
  targetAccountIds: string[];
  targetRolePath: string;
  /** Omit when rotation is off: no IAM user permission at all. */
  rotation?: RotationScope | undefined;
  /** Grant PutRolePolicy on target roles for "revoke active sessions". */
  revocation: boolean;
}

const unique = (xs: string[]): string[] => [...new Set(xs)];

export function brokerPermissionsPolicy(input: BrokerPermissionsInput): PolicyDocument {
  const statements: Statement[] = [];
  const accounts = unique(input.targetAccountIds);
  if (accounts.length > 0) {
    statements.push({
      Sid: 'ExchangeIntoTargetRoles',
      Effect: 'Allow',
      Action: [...EXCHANGE_ACTIONS],
      Resource: accounts.map((a) => rolesUnderPath(input.partition, a, input.targetRolePath)),
    });
  }
  // IAM has no resource policies: the broker's credentials can only change roles in its own account.
  if (input.revocation && accounts.includes(input.accountId)) {
    statements.push({
      Sid: 'RevokeTargetRoleSessions',
      Effect: 'Allow',
      Action: 'iam:PutRolePolicy',
      Resource: rolesUnderPath(input.partition, input.accountId, input.targetRolePath),
    });
  }
  if (input.rotation) statements.push(...rotationStatements(input.partition, input.accountId, input.rotation));
  if (statements.length === 0) throw new Error('broker permissions: nothing to grant (no target roles, rotation off)');
  return policy(statements);
}

function rotationStatements(partition: string, accountId: string, r: RotationScope): Statement[] {
  const byPath = usersUnderPath(partition, accountId, r.path);
  const everyUser = usersUnderPath(partition, accountId, '/');
  const tagged = { StringEquals: { [`aws:ResourceTag/${r.tagKey}`]: r.tagValue } };
  const keys = (sid: string, resource: string, condition?: typeof tagged): Statement => ({
    Sid: sid,
    Effect: 'Allow',
    Action: [...ROTATION_KEY_ACTIONS],
    Resource: resource,
    ...(condition ? { Condition: condition } : {}),
  });
  const manage: Statement[] = {
    'path-and-tag': [keys('RotateKeysOfTaggedUsersUnderPath', byPath, tagged)],
    path: [keys('RotateKeysOfUsersUnderPath', byPath)],
    tag: [keys('RotateKeysOfTaggedUsers', everyUser, tagged)],
    'path-or-tag': [keys('RotateKeysOfUsersUnderPath', byPath), keys('RotateKeysOfTaggedUsers', everyUser, tagged)],
  }[r.match];
  // Discovery: ListUsers has no resource type (only "*"); reading tags must work on every user a
  // listing can return, or the loop fails on the first untagged one. Tags are not secrets.
  const tagDiscoveryScope = r.match === 'path' || r.match === 'path-and-tag' ? byPath : everyUser;
  return [
    ...manage,
    { Sid: 'DiscoverRotationUsers', Effect: 'Allow', Action: 'iam:ListUsers', Resource: '*' },
    { Sid: 'ReadRotationUserTags', Effect: 'Allow', Action: 'iam:ListUserTags', Resource: tagDiscoveryScope },
  ];
}
