// The stack's settings (Pulumi config namespace `credbroker`), parsed and checked once. Every
// problem is gathered with its path and reported in one error, so a bad stack config is fixed in
// one round instead of one `pulumi up` per mistake. Pure: index.ts hands in the raw values.
import { z } from 'zod';
import { TRUSTED_SERVICES, type TrustedService } from './policies/broker-trust.js';
import { ROTATION_MATCHES, type RotationMatch } from './policies/broker-permissions.js';
import { sourceIdentityPatternFor } from './policies/target-trust.js';
import { checkSettings } from './settings-checks.js';
import { checkServiceSettings, serviceSettingsSchema, type ServiceSettings } from './service/settings.js';

/** The config keys this program reads, without the `credbroker:` namespace. */
export const SETTINGS_KEYS = ['broker', 'targetRolePath', 'accounts', 'roles', 'rotation', 'staticUsers', 'revocation', 'tags', 'service'] as const;

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
    eksServiceAccounts: z
      .array(z.strictObject({ oidcProviderArn: z.string(), namespace: z.string().default('credbroker'), serviceAccount: z.string().default('credbroker') }))
      .default([])
      .describe('EKS service accounts (IRSA) that run as the broker.'),
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
  service: serviceSettingsSchema.optional().describe('The broker itself on ECS Fargate, behind an ALB, with RDS PostgreSQL.'),
});

export type StackSettingsInput = z.input<typeof settingsSchema>;
type Parsed = z.output<typeof settingsSchema>;

export interface BrokerSettings {
  roleName: string;
  path: string;
  trustedServices: TrustedService[];
  trustedPrincipalArns: string[];
  eksServiceAccounts: Array<{ oidcProviderArn: string; namespace: string; serviceAccount: string }>;
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
  /** The deployed broker service, when configured. */
  service?: ServiceSettings | undefined;
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
  if (settings.service) checkServiceSettings(settings.service, problems, settings.roles);
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
    ...(p.service ? { service: p.service } : {}),
  };
}
