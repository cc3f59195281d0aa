// The stack's settings (Pulumi config namespace `credbroker`), parsed and checked once. Every
// problem is gathered with its path and reported in one error, so a bad stack config is fixed in
// one round instead of one `pulumi up` per mistake. Pure: index.ts hands in the raw values.
import { z } from 'zod';
import { TRUSTED_SERVICES, type TrustedService } from './policies/broker-trust.js';
import { ROTATION_MATCHES, type RotationMatch } from './policies/broker-permissions.js';
import {
  ACCOUNT_ID_RE,
  BROKER_ROLE_KEY_RE,
  IAM_NAME_RE,
  MANAGED_POLICY_ARN_RE,
  MAX_SESSION_TAGS,
  PRINCIPAL_ARN_RE,
  ROLE_ARN_RE,
  SOURCE_IDENTITY_CHARS_RE,
  SOURCE_IDENTITY_PATTERN_RE,
  iamPathProblem,
  pathsOverlap,
  tagKeyProblem,
} from './names.js';
import { sourceIdentityPatternFor } from './policies/target-trust.js';

/** The inline policy the broker writes onto a target role to revoke its sessions (issue 6). */
export const REVOCATION_POLICY_NAME = 'AWSRevokeOlderSessions';

/** The config keys this program reads, without the `credbroker:` namespace. */
export const SETTINGS_KEYS = ['broker', 'targetRolePath', 'accounts', 'roles', 'rotation', 'staticUsers', 'revocation', 'tags'] as const;

const policyDocument = z
  .object({ Version: z.string().optional(), Statement: z.union([z.array(z.record(z.string(), z.unknown())).min(1), z.record(z.string(), z.unknown())]) })
  .loose();
const tagMap = z.record(z.string(), z.string());
const permissions = {
  managedPolicyArns: z.array(z.string()).default([]).describe('Managed policy ARNs attached to the role or user.'),
  inlinePolicies: z.record(z.string(), policyDocument).default({}).describe('Inline policy name → IAM policy document.'),
};

const brokerSchema = z
  .strictObject({
    roleName: z.string().default('credbroker-broker'),
    path: z.string().default('/credbroker-system/'),
    trustedServices: z.array(z.enum(Object.keys(TRUSTED_SERVICES) as [TrustedService, ...TrustedService[]])).default(['ecs-tasks']),
    trustedPrincipalArns: z.array(z.string()).default([]),
    maxSessionDurationSeconds: z.number().int().min(3600).max(43_200).default(3600),
  })
  .prefault({});

const accountSchema = z.strictObject({
  accountId: z.string(),
  /** The role Pulumi assumes to deploy into this account. */
  deployRoleArn: z.string().optional(),
  region: z.string().optional(),
});

const roleSchema = z.strictObject({
  roleName: z.string().optional().describe('IAM role name; default: the key.'),
  account: z.string().optional().describe('Key under `accounts`; default: the broker’s own account.'),
  description: z.string().optional(),
  maxSessionDurationSeconds: z.number().int().min(3600).max(43_200).default(3600),
  ...permissions,
  permissionsBoundaryArn: z.string().optional(),
  sessionTags: tagMap.describe('Session tag key → broker template; becomes `tags:` in the broker config and the allowed aws:TagKeys.'),
  sessionTagValues: z.record(z.string(), z.array(z.string().min(1)).min(1)).default({}),
  transitiveTagKeys: z.array(z.string()).default([]),
  sourceIdentity: z.string().optional().describe('Broker source-identity template; its leading literal becomes the trust pattern.'),
  sourceIdentityPattern: z.string().optional().describe('StringLike pattern for sts:SourceIdentity; default from sourceIdentity, else "*".'),
  requireSourceIdentity: z.boolean().default(true),
  region: z.string().optional().describe('STS region the broker uses for this role.'),
  allow: z.array(z.record(z.string(), z.unknown())).min(1).optional().describe('Broker bindings, passed through to the emitted config.'),
  tags: tagMap.default({}),
});

const rotationSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    path: z.string().default('/credbroker/static/'),
    tagKey: z.string().default('credbroker:rotate'),
    tagValue: z.string().default('true'),
    match: z.enum(ROTATION_MATCHES).default('path-and-tag'),
  })
  .prefault({});

const staticUserSchema = z.strictObject({
  userName: z.string().optional().describe('IAM user name; default: the key.'),
  ...permissions,
  permissionsBoundaryArn: z.string().optional(),
  tags: tagMap.default({}),
});

const settingsSchema = z.strictObject({
  broker: brokerSchema,
  targetRolePath: z.string().default('/credbroker/'),
  accounts: z.record(z.string(), accountSchema).default({}),
  roles: z.record(z.string(), roleSchema).default({}),
  rotation: rotationSchema,
  staticUsers: z.record(z.string(), staticUserSchema).default({}),
  revocation: z.boolean().default(true),
  tags: tagMap.default({}),
});

export type StackSettingsInput = z.input<typeof settingsSchema>;
type Parsed = z.output<typeof settingsSchema>;

export interface BrokerSettings {
  roleName: string;
  path: string;
  trustedServices: TrustedService[];
  trustedPrincipalArns: string[];
  maxSessionDurationSeconds: number;
}
export interface AccountSettings {
  accountId: string;
  deployRoleArn?: string | undefined;
  region?: string | undefined;
}
export interface TargetRoleSettings {
  /** Key in the broker config's `roles:` map. */
  key: string;
  roleName: string;
  /** Key under `accounts`, or undefined for the broker's own account. */
  account?: string | undefined;
  description?: string | undefined;
  maxSessionDurationSeconds: number;
  managedPolicyArns: string[];
  inlinePolicies: Record<string, unknown>;
  permissionsBoundaryArn?: string | undefined;
  sessionTags: Record<string, string>;
  sessionTagValues: Record<string, string[]>;
  transitiveTagKeys: string[];
  sourceIdentity?: string | undefined;
  sourceIdentityPattern: string;
  requireSourceIdentity: boolean;
  region?: string | undefined;
  allow?: Array<Record<string, unknown>> | undefined;
  tags: Record<string, string>;
}
export interface RotationSettings {
  enabled: boolean;
  path: string;
  tagKey: string;
  tagValue: string;
  match: RotationMatch;
}
export interface StaticUserSettings {
  key: string;
  userName: string;
  managedPolicyArns: string[];
  inlinePolicies: Record<string, unknown>;
  permissionsBoundaryArn?: string | undefined;
  tags: Record<string, string>;
}
export interface StackSettings {
  broker: BrokerSettings;
  targetRolePath: string;
  accounts: Record<string, AccountSettings>;
  roles: TargetRoleSettings[];
  rotation: RotationSettings;
  staticUsers: StaticUserSettings[];
  revocation: boolean;
  tags: Record<string, string>;
}

export class InfraSettingsError extends Error {
  override readonly name = 'InfraSettingsError';
  constructor(readonly problems: string[]) {
    super(`invalid credbroker stack settings (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

/** Parses raw settings (config key → value) or throws one InfraSettingsError listing every problem. */
export function parseStackSettings(raw: Record<string, unknown>): StackSettings {
  const parsed = settingsSchema.safeParse(raw);
  if (!parsed.success) {
    throw new InfraSettingsError(parsed.error.issues.map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`));
  }
  const problems: string[] = [];
  const settings = normalize(parsed.data);
  checkSettings(settings, problems);
  if (problems.length > 0) throw new InfraSettingsError(problems);
  return settings;
}

function normalize(p: Parsed): StackSettings {
  return {
    broker: p.broker,
    targetRolePath: p.targetRolePath,
    accounts: p.accounts,
    roles: Object.entries(p.roles).map(([key, r]) => ({
      ...r,
      key,
      roleName: r.roleName ?? key,
      sourceIdentityPattern: r.sourceIdentityPattern ?? sourceIdentityPatternFor(r.sourceIdentity),
    })),
    rotation: p.rotation,
    staticUsers: Object.entries(p.staticUsers).map(([key, u]) => ({ ...u, key, userName: u.userName ?? key })),
    revocation: p.revocation,
    tags: p.tags,
  };
}

function checkSettings(s: StackSettings, problems: string[]): void {
  const add = (path: string, message: string | undefined) => {
    if (message !== undefined) problems.push(`${path}: ${message}`);
  };

  add('broker.path', iamPathProblem(s.broker.path));
  add('broker.roleName', IAM_NAME_RE.test(s.broker.roleName) ? undefined : 'expected an IAM role name (1–64 of [A-Za-z0-9_+=,.@-])');
  if (s.broker.trustedServices.length === 0 && s.broker.trustedPrincipalArns.length === 0) {
    add('broker', 'nothing could run as the broker: give trustedServices or trustedPrincipalArns');
  }
  s.broker.trustedPrincipalArns.forEach((arn, i) =>
    add(`broker.trustedPrincipalArns[${i}]`, PRINCIPAL_ARN_RE.test(arn) ? undefined : 'expected an IAM principal ARN (role, user or account root)'),
  );

  add('targetRolePath', iamPathProblem(s.targetRolePath));
  if (s.targetRolePath === '/') add('targetRolePath', 'must not be "/": the broker could then assume every role in the account');
  else if (!iamPathProblem(s.targetRolePath) && !iamPathProblem(s.broker.path) && pathsOverlap(s.targetRolePath, s.broker.path)) {
    add('broker.path', `must not overlap targetRolePath (${s.targetRolePath}): the broker could assume or rewrite its own role`);
  }

  for (const [name, a] of Object.entries(s.accounts)) {
    add(`accounts.${name}.accountId`, ACCOUNT_ID_RE.test(a.accountId) ? undefined : 'expected a 12-digit account id (quote it in YAML)');
    if (a.deployRoleArn !== undefined) {
      const m = ROLE_ARN_RE.exec(a.deployRoleArn);
      if (!m) add(`accounts.${name}.deployRoleArn`, 'expected arn:aws:iam::<account>:role/<name>');
      else if (m[1] !== a.accountId) add(`accounts.${name}.deployRoleArn`, `is in account ${m[1]}, not ${a.accountId}`);
    }
  }

  const roleNamesByAccount = new Map<string, string>();
  roleNamesByAccount.set(`:${s.broker.roleName.toLowerCase()}`, 'broker.roleName');
  for (const r of s.roles) checkRole(r, s, roleNamesByAccount, add);

  const r = s.rotation;
  add('rotation.path', iamPathProblem(r.path));
  if (r.enabled && r.path === '/' && (r.match === 'path' || r.match === 'path-or-tag')) {
    add('rotation.path', `must not be "/" with match "${r.match}": the broker could rotate every user's keys`);
  }
  add('rotation.tagKey', tagKeyProblem(r.tagKey));
  if (!r.enabled && s.staticUsers.length > 0) add('staticUsers', 'static users need rotation.enabled: nobody would ever give them a key');

  const userNames = new Map<string, string>();
  for (const u of s.staticUsers) {
    const path = `staticUsers.${u.key}`;
    add(`${path}.userName`, IAM_NAME_RE.test(u.userName) ? undefined : 'expected an IAM user name (1–64 of [A-Za-z0-9_+=,.@-])');
    const prior = userNames.get(u.userName.toLowerCase());
    if (prior) add(`${path}.userName`, `"${u.userName}" is also ${prior} (IAM user names are case-insensitive)`);
    userNames.set(u.userName.toLowerCase(), path);
    checkPermissions(path, u, add);
    if (r.tagKey in u.tags) add(`${path}.tags.${r.tagKey}`, 'is the rotation tag; it is set by the component');
  }
}

function checkRole(
  r: TargetRoleSettings,
  s: StackSettings,
  seen: Map<string, string>,
  add: (path: string, message: string | undefined) => void,
): void {
  const path = `roles.${r.key}`;
  add(path, BROKER_ROLE_KEY_RE.test(r.key) ? undefined : 'role key must match [A-Za-z0-9_.-]+ (it is the broker config role name)');
  add(`${path}.roleName`, IAM_NAME_RE.test(r.roleName) ? undefined : 'expected an IAM role name (1–64 of [A-Za-z0-9_+=,.@-])');
  if (r.account !== undefined && !(r.account in s.accounts)) {
    add(`${path}.account`, `unknown account "${r.account}" (known: ${Object.keys(s.accounts).join(', ') || 'none'})`);
  }
  const nameKey = `${r.account ?? ''}:${r.roleName.toLowerCase()}`;
  const prior = seen.get(nameKey);
  if (prior) add(`${path}.roleName`, `"${r.roleName}" is also ${prior} in the same account (IAM role names are unique, case-insensitively)`);
  seen.set(nameKey, path);
  checkPermissions(path, r, add);
  if (REVOCATION_POLICY_NAME in r.inlinePolicies) {
    add(`${path}.inlinePolicies.${REVOCATION_POLICY_NAME}`, 'is the name the broker uses to revoke sessions; choose another');
  }

  const keys = Object.keys(r.sessionTags);
  if (keys.length > MAX_SESSION_TAGS) add(`${path}.sessionTags`, `${keys.length} tags; STS allows ${MAX_SESSION_TAGS}`);
  const folded = new Map<string, string>();
  for (const k of keys) {
    add(`${path}.sessionTags.${k}`, tagKeyProblem(k));
    const other = folded.get(k.toLowerCase());
    if (other !== undefined) add(`${path}.sessionTags.${k}`, `collides with "${other}" (session tag keys are case-insensitive)`);
    folded.set(k.toLowerCase(), k);
    if (r.sessionTags[k]!.length === 0) add(`${path}.sessionTags.${k}`, 'empty template');
  }
  for (const k of Object.keys(r.sessionTagValues)) {
    if (!(k in r.sessionTags)) add(`${path}.sessionTagValues.${k}`, 'not a key of sessionTags');
  }
  r.transitiveTagKeys.forEach((k, i) => {
    if (!(k in r.sessionTags)) add(`${path}.transitiveTagKeys[${i}]`, `"${k}" is not a key of sessionTags`);
  });

  if (r.sourceIdentity !== undefined) {
    const brace = r.sourceIdentity.indexOf('{');
    const prefix = brace === -1 ? r.sourceIdentity : r.sourceIdentity.slice(0, brace);
    if (!SOURCE_IDENTITY_CHARS_RE.test(prefix) || prefix.includes('--') || prefix.length > 53 || /^aws:/i.test(prefix)) {
      add(`${path}.sourceIdentity`, 'its leading literal must be at most 53 of [A-Za-z0-9_+=,.@-] without "--" (the broker keeps it verbatim)');
    }
  }
  if (!SOURCE_IDENTITY_PATTERN_RE.test(r.sourceIdentityPattern)) {
    add(`${path}.sourceIdentityPattern`, 'expected 1–64 of [A-Za-z0-9_+=,.@-] and the wildcards * ?');
  }
}

function checkPermissions(
  path: string,
  p: { managedPolicyArns: string[]; inlinePolicies: Record<string, unknown>; permissionsBoundaryArn?: string | undefined },
  add: (path: string, message: string | undefined) => void,
): void {
  p.managedPolicyArns.forEach((arn, i) =>
    add(`${path}.managedPolicyArns[${i}]`, MANAGED_POLICY_ARN_RE.test(arn) ? undefined : 'expected arn:aws:iam::(aws|<account>):policy/<name>'),
  );
  for (const name of Object.keys(p.inlinePolicies)) {
    add(`${path}.inlinePolicies.${name}`, /^[\w+=,.@-]{1,128}$/.test(name) ? undefined : 'policy name must be 1–128 of [A-Za-z0-9_+=,.@-]');
  }
  if (p.permissionsBoundaryArn !== undefined && !MANAGED_POLICY_ARN_RE.test(p.permissionsBoundaryArn)) {
    add(`${path}.permissionsBoundaryArn`, 'expected arn:aws:iam::(aws|<account>):policy/<name>');
  }
}
