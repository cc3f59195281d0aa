// The `credbroker:service` stack setting: the broker itself, deployed on ECS Fargate behind an ALB
// with an RDS PostgreSQL store. Parsed and checked here, every problem with its path (the stack's
// settings parser reports them together with the rest). Pure.
import { z } from 'zod';

/** ALB security policies that negotiate TLS 1.2 or 1.3 only. */
export const TLS_POLICIES = [
  'ELBSecurityPolicy-TLS13-1-2-2021-06',
  'ELBSecurityPolicy-TLS13-1-2-Res-2021-06',
  'ELBSecurityPolicy-TLS13-1-2-Ext1-2021-06',
  'ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06',
  'ELBSecurityPolicy-TLS13-1-3-2021-06',
  'ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04',
  'ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04',
  'ELBSecurityPolicy-FS-1-2-Res-2020-10',
  'ELBSecurityPolicy-TLS-1-2-Ext-2018-06',
] as const;

/** The retention periods CloudWatch Logs accepts (days). */
const LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

/** Fargate's CPU units → the memory sizes (MiB) it allows with them. */
const FARGATE_MEMORY: Record<number, (memory: number) => boolean> = {
  256: (m) => [512, 1024, 2048].includes(m),
  512: (m) => m >= 1024 && m <= 4096 && m % 1024 === 0,
  1024: (m) => m >= 2048 && m <= 8192 && m % 1024 === 0,
  2048: (m) => m >= 4096 && m <= 16_384 && m % 1024 === 0,
  4096: (m) => m >= 8192 && m <= 30_720 && m % 1024 === 0,
};

const cidr = z.string();
const serviceSchema = z.strictObject({
  domainName: z.string().describe('The public name CI jobs use (the broker URL is https://domainName).'),
  certificateArn: z.string().describe('ACM certificate for domainName, in the stack region.'),
  hostedZoneId: z.string().optional().describe('Route 53 zone: an alias record for domainName (and admin.domainName) is created.'),
  image: z
    .strictObject({
      repository: z.string().optional().describe('Image repository; default: the ECR repository of `ecr`.'),
      digest: z.string().optional().describe('sha256:… of the image to run. Until it is set, only the ECR repository is created.'),
    })
    .prefault({}),
  ecr: z
    .strictObject({
      create: z.boolean().default(false),
      name: z.string().default('credbroker'),
      keepImages: z.number().int().min(1).max(1000).default(30),
    })
    .prefault({}),
  network: z
    .strictObject({
      vpcId: z.string().optional(),
      publicSubnetIds: z.array(z.string()).optional(),
      privateSubnetIds: z.array(z.string()).optional(),
      cidrBlock: cidr.default('10.40.0.0/16').describe('For a created VPC.'),
      availabilityZones: z.number().int().min(2).max(3).default(2).describe('For a created VPC.'),
      natGateways: z.enum(['one', 'per-az']).default('per-az').describe('For a created VPC: per-az survives the loss of one zone.'),
    })
    .prefault({}),
  loadBalancer: z
    .strictObject({
      tlsPolicy: z.enum(TLS_POLICIES).default('ELBSecurityPolicy-TLS13-1-2-2021-06'),
      allowedCidrs: z.array(cidr).min(1).default(['0.0.0.0/0']).describe('Who may reach port 443 (CI runners).'),
      httpRedirect: z.boolean().default(false).describe('Also open port 80, only to redirect to 443.'),
      wafWebAclArn: z.string().optional(),
      deletionProtection: z.boolean().default(true),
      idleTimeoutSeconds: z
        .number()
        .int()
        .min(1)
        .max(595)
        .default(60)
        .describe("The ALB's idle timeout; the broker keeps idle connections 5 s longer (server.keep_alive_timeout_ms)."),
      trustProxyHops: z.number().int().min(1).max(5).default(1).describe('Proxies in front of the tasks (the ALB is one): server.trust_proxy.'),
    })
    .prefault({}),
  tasks: z
    .strictObject({
      desired: z.number().int().min(2).max(100).default(2),
      min: z.number().int().min(2).max(100).default(2),
      max: z.number().int().min(2).max(100).default(6),
      cpu: z.number().int().default(512),
      memory: z.number().int().default(1024),
      architecture: z.enum(['X86_64', 'ARM64']).default('X86_64'),
      stopTimeoutSeconds: z.number().int().min(2).max(120).default(30),
    })
    .prefault({}),
  autoscaling: z
    .strictObject({
      cpuPercent: z.number().min(10).max(90).default(60),
      requestsPerTargetPerMinute: z.number().int().min(10).default(3000),
      scaleInCooldownSeconds: z.number().int().min(0).default(300),
      scaleOutCooldownSeconds: z.number().int().min(0).default(60),
    })
    .prefault({}),
  logs: z
    .strictObject({
      retentionDays: z.number().int().default(90),
      kmsKeyArn: z.string().optional(),
    })
    .prefault({}),
  database: z
    .strictObject({
      instanceClass: z.string().default('db.t4g.small'),
      engineVersion: z.string().default('16'),
      allocatedStorageGb: z.number().int().min(20).max(65_536).default(20),
      maxAllocatedStorageGb: z.number().int().min(20).max(65_536).default(100),
      multiAz: z.boolean().default(true),
      backupRetentionDays: z.number().int().min(1).max(35).default(7),
      deletionProtection: z.boolean().default(true),
      kmsKeyArn: z.string().optional().describe('Storage and secret encryption key; default the AWS managed keys.'),
    })
    .prefault({}),
  admin: z
    .strictObject({
      enabled: z.boolean().default(false),
      domainName: z.string().optional(),
      certificateArn: z.string().optional(),
      allowedCidrs: z.array(cidr).default([]),
      allowedSecurityGroupIds: z.array(z.string()).default([]),
      tokenHashesSecretArn: z.string().optional().describe('Secrets Manager secret: JSON {name: sha256 hex of the token}.'),
      tokens: z
        .array(z.strictObject({ name: z.string(), scopes: z.array(z.enum(['read', 'operate'])).min(1).default(['read']) }))
        .default([])
        .describe('Admin tokens by name; their hashes are the keys of tokenHashesSecretArn. read, or operate (revoke, rotate).'),
    })
    .prefault({}),
  audit: z
    .strictObject({
      hmacKeySecretArn: z.string().optional().describe('Secrets Manager secret holding the audit chain HMAC key.'),
    })
    .prefault({}),
  brokerConfig: z
    .record(z.string(), z.unknown())
    .default({})
    .describe('The broker config the stack does not write: issuers, deny, server tuning, aws, logging, revocation, rotation.'),
});

export type ServiceSettingsInput = z.input<typeof serviceSchema>;
export type ServiceSettings = z.output<typeof serviceSchema>;
export const serviceSettingsSchema = serviceSchema;

const HOSTNAME_RE = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;
export const ACM_ARN_RE = /^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate\/[\w-]+$/;
export const SECRET_ARN_RE = /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[\w/+=.@-]+-[A-Za-z0-9]{6}$/;
const WAF_ARN_RE = /^arn:aws[a-z-]*:wafv2:[a-z0-9-]+:\d{12}:regional\/webacl\/[\w-]+\/[\w-]+$/;
const KMS_ARN_RE = /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[\w-]+$/;
export const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;
const CIDR_RE = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}\/([0-9]|[12]\d|3[0-2])$/;
/** Admin token names become environment variable names (CREDBROKER_ADMIN_TOKEN_SHA256_<NAME>). */
const TOKEN_NAME_RE = /^[A-Za-z0-9_-]{1,64}$/;

/** Broker config keys the stack writes itself; `brokerConfig` may not set them. */
export const STACK_OWNED_KEYS = ['roles', 'store', 'admin', 'audit', 'server.host', 'server.port', 'server.trust_proxy'] as const;

const isPublic = (c: string) => c === '0.0.0.0/0' || c.endsWith('/0');

export function checkServiceSettings(s: ServiceSettings, problems: string[], roles: Array<{ key: string; allow?: unknown[] | undefined }>): void {
  const add = (path: string, message: string | undefined) => {
    if (message !== undefined) problems.push(`service.${path}: ${message}`);
  };
  add('domainName', HOSTNAME_RE.test(s.domainName) ? undefined : 'expected a lower-case DNS name, e.g. credbroker.example.com');
  add('certificateArn', ACM_ARN_RE.test(s.certificateArn) ? undefined : 'expected an ACM certificate ARN');
  if (s.image.digest !== undefined) add('image.digest', DIGEST_RE.test(s.image.digest) ? undefined : 'expected sha256:<64 hex> (images are pinned by digest)');
  if (s.image.repository === undefined && !s.ecr.create) add('image.repository', 'required unless ecr.create is true');
  if (s.image.repository !== undefined && /[@:]/.test(s.image.repository.split('/').pop() ?? '')) {
    add('image.repository', 'a repository without tag or digest (the digest goes in image.digest)');
  }
  add('ecr.name', /^[a-z0-9]+(?:[._/-][a-z0-9]+)*$/.test(s.ecr.name) ? undefined : 'expected an ECR repository name');

  const n = s.network;
  const given = [n.vpcId, n.publicSubnetIds, n.privateSubnetIds].filter((v) => v !== undefined).length;
  if (given !== 0 && given !== 3) add('network', 'give vpcId, publicSubnetIds and privateSubnetIds together, or none (a VPC is then created)');
  if (n.publicSubnetIds && n.publicSubnetIds.length < 2) add('network.publicSubnetIds', 'at least 2 subnets, in different availability zones');
  if (n.privateSubnetIds && n.privateSubnetIds.length < 2) add('network.privateSubnetIds', 'at least 2 subnets, in different availability zones');
  add('network.cidrBlock', CIDR_RE.test(n.cidrBlock) && Number(n.cidrBlock.split('/')[1]) <= 20 ? undefined : 'expected an IPv4 CIDR of /20 or larger');

  s.loadBalancer.allowedCidrs.forEach((c, i) => add(`loadBalancer.allowedCidrs[${i}]`, CIDR_RE.test(c) ? undefined : 'expected an IPv4 CIDR'));
  if (s.loadBalancer.wafWebAclArn !== undefined) add('loadBalancer.wafWebAclArn', WAF_ARN_RE.test(s.loadBalancer.wafWebAclArn) ? undefined : 'expected a regional WAFv2 web ACL ARN');

  const t = s.tasks;
  if (!(t.min <= t.desired && t.desired <= t.max)) add('tasks', `expected min ≤ desired ≤ max (got ${t.min}, ${t.desired}, ${t.max})`);
  const memoryOk = FARGATE_MEMORY[t.cpu];
  if (!memoryOk) add('tasks.cpu', `Fargate CPU units are ${Object.keys(FARGATE_MEMORY).join(', ')}`);
  else if (!memoryOk(t.memory)) add('tasks.memory', `${t.memory} MiB is not a Fargate size for ${t.cpu} CPU units`);

  add('logs.retentionDays', LOG_RETENTION_DAYS.includes(s.logs.retentionDays) ? undefined : `CloudWatch accepts ${LOG_RETENTION_DAYS.join(', ')}`);
  for (const [path, arn] of [['logs.kmsKeyArn', s.logs.kmsKeyArn], ['database.kmsKeyArn', s.database.kmsKeyArn]] as const) {
    if (arn !== undefined) add(path, KMS_ARN_RE.test(arn) ? undefined : 'expected a KMS key ARN');
  }
  add('database.instanceClass', /^db\.[a-z0-9]+\.[a-z0-9]+$/.test(s.database.instanceClass) ? undefined : 'expected an RDS instance class, e.g. db.t4g.small');
  add('database.engineVersion', /^(1[4-9])(\.\d+)?$/.test(s.database.engineVersion) ? undefined : 'expected PostgreSQL 14 or later, e.g. "16"');
  if (s.database.maxAllocatedStorageGb < s.database.allocatedStorageGb) add('database.maxAllocatedStorageGb', 'must be ≥ allocatedStorageGb');

  const a = s.admin;
  if (a.enabled) {
    if (a.domainName === undefined) add('admin.domainName', 'required when the admin API is enabled (its internal load balancer serves HTTPS)');
    else add('admin.domainName', HOSTNAME_RE.test(a.domainName) ? undefined : 'expected a lower-case DNS name');
    if (a.certificateArn === undefined) add('admin.certificateArn', 'required when the admin API is enabled');
    else add('admin.certificateArn', ACM_ARN_RE.test(a.certificateArn) ? undefined : 'expected an ACM certificate ARN');
    if (a.allowedCidrs.length === 0 && a.allowedSecurityGroupIds.length === 0) {
      add('admin', 'give allowedCidrs or allowedSecurityGroupIds: who may reach the admin API');
    }
    a.allowedCidrs.forEach((c, i) =>
      add(`admin.allowedCidrs[${i}]`, !CIDR_RE.test(c) ? 'expected an IPv4 CIDR' : isPublic(c) ? 'the admin API is never open to everyone' : undefined),
    );
    if (a.tokenHashesSecretArn === undefined) add('admin.tokenHashesSecretArn', 'required when the admin API is enabled');
    if (a.tokens.length === 0) add('admin.tokens', 'at least one admin token');
  }
  if (a.tokenHashesSecretArn !== undefined) add('admin.tokenHashesSecretArn', SECRET_ARN_RE.test(a.tokenHashesSecretArn) ? undefined : 'expected a full Secrets Manager secret ARN');
  const names = a.tokens.map((t) => t.name);
  names.forEach((name, i) => add(`admin.tokens[${i}].name`, TOKEN_NAME_RE.test(name) ? undefined : 'expected 1–64 of [A-Za-z0-9_-]'));
  const folded = names.map(tokenEnvName);
  folded.forEach((e, i) => {
    if (folded.indexOf(e) !== i) add(`admin.tokens[${i}].name`, `"${names[i]}" and "${names[folded.indexOf(e)]}" name the same variable`);
  });
  if (s.audit.hmacKeySecretArn === undefined) add('audit.hmacKeySecretArn', 'required: the key of the audit chain (audit.hmac_key_env), from Secrets Manager');
  else add('audit.hmacKeySecretArn', SECRET_ARN_RE.test(s.audit.hmacKeySecretArn) ? undefined : 'expected a full Secrets Manager secret ARN');

  const bc = s.brokerConfig;
  for (const key of STACK_OWNED_KEYS) {
    const [top, sub] = key.split('.') as [string, string | undefined];
    const section = bc[top];
    const set = sub === undefined ? section !== undefined : typeof section === 'object' && section !== null && sub in section;
    if (set) add(`brokerConfig.${key}`, 'is written by the stack');
  }
  const keepAlive = (bc.server as { keep_alive_timeout_ms?: unknown } | undefined)?.keep_alive_timeout_ms;
  if (typeof keepAlive === 'number' && keepAlive <= s.loadBalancer.idleTimeoutSeconds * 1000) {
    add('brokerConfig.server.keep_alive_timeout_ms', `must exceed the load balancer's idle timeout (${s.loadBalancer.idleTimeoutSeconds} s), or the broker may close a connection the balancer is sending on`);
  }
  if (typeof bc.issuers !== 'object' || bc.issuers === null || Object.keys(bc.issuers).length === 0) {
    add('brokerConfig.issuers', 'the broker needs at least one issuer');
  }
  for (const r of roles) {
    if (!r.allow || r.allow.length === 0) problems.push(`roles.${r.key}.allow: the deployed broker needs the bindings of every role (who may assume it)`);
  }
}

/** The environment variable that carries one admin token's hash into the task. */
export const tokenEnvName = (name: string): string => `CREDBROKER_ADMIN_TOKEN_SHA256_${name.toUpperCase().replace(/-/g, '_')}`;
