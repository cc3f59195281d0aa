// The configuration file's definition. One source of truth: the TypeScript types, the runtime
// validation and the JSON Schema for editors (`credbroker config schema`) all come from here.
// Cross-field rules (issuer references, templates, tag keys, typed values) are checked later by
// `compileConfig`, which reports every problem at once with its path.
import { z } from 'zod';
import { rotationConfigSchema } from '../rotation/config-schema.js';

const seconds = (min: number, max: number) => z.number().int().min(min).max(max);
const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/);
const keyId = z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/);

/** Admin token scopes: `operate` includes `read`. */
export const ADMIN_SCOPES = ['read', 'operate'] as const;
export type AdminScope = (typeof ADMIN_SCOPES)[number];

export const PRESET_NAMES = [
  'github-actions',
  'gitlab',
  'circleci',
  'buildkite',
  'bitbucket',
  'jenkins',
  'azure-devops',
  'terraform-cloud',
] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

/** Algorithms a token may be signed with. `none` and HS* are not representable: fail closed. */
export const ALLOWED_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;

export const issuerSchema = z
  .strictObject({
    preset: z.enum(PRESET_NAMES).optional().describe('Fills defaults and claim knowledge for a known CI provider.'),
    url: z.string().optional().describe('Issuer URL, exactly as in the token `iss`. Presets derive it where they can.'),
    host: z.string().optional().describe('GitHub Enterprise Server host (github-actions) or Terraform Enterprise host.'),
    org_id: z.string().optional().describe('CircleCI organization id, or Azure DevOps organization id: part of the issuer URL.'),
    workspace: z.string().optional().describe('Bitbucket workspace slug: part of the issuer URL.'),
    audiences: z.array(z.string().min(1)).min(1).describe('Accepted `aud` values. Use a broker-specific audience.'),
    allow_multiple_audiences: z
      .boolean()
      .default(false)
      .describe('Accept tokens whose `aud` lists several audiences (one must be accepted). Off: a token minted for several services is refused.'),
    algorithms: z.array(z.enum(ALLOWED_ALGORITHMS)).min(1).optional().describe('Default RS256 and ES256.'),
    clock_skew_seconds: seconds(0, 300).default(30),
    max_token_age_seconds: seconds(30, 86_400).optional().describe('Enforced from `iat`, even when `exp` is later. Preset default or 900.'),
    required_claims: z.array(z.string().min(1)).default([]),
    allow_insecure_http: z.boolean().default(false).describe('Allow an http:// issuer. Only for local testing.'),
    jwks_refresh_seconds: seconds(60, 86_400).default(3600),
    jwks_cooldown_seconds: seconds(1, 3600).default(30).describe('Minimum time between refetches triggered by an unknown `kid`.'),
    http_timeout_ms: z.number().int().min(100).max(60_000).default(5000),
    max_response_bytes: z.number().int().min(1024).max(10 * 1024 * 1024).default(512 * 1024),
    ca_file: z
      .string()
      .min(1)
      .optional()
      .describe('PEM CA certificate(s) for discovery and JWKS (an issuer behind an internal CA): added to the system roots and network.ca_file.'),
    ca_file_only: z.boolean().default(false).describe('Trust only ca_file for this issuer, not the system roots nor network.ca_file.'),
  })
  .describe('An issuer the broker trusts.');

const scalar = z.union([z.string(), z.number(), z.boolean()]);
export type Scalar = z.infer<typeof scalar>;

const CONDITION_OPERATORS = ['equals', 'one_of', 'glob', 'present', 'contains'];
export const CONDITION_FORMS = 'a value, a list of values, {equals: V}, {one_of: [V, …]}, {glob: PATTERN or [PATTERN, …]}, {present: true|false} or {contains: V or [V, …]}';

/** Names the operator that is wrong ({regex: …}) and lists every valid form. */
function conditionError(input: unknown): string {
  const keys = input !== null && typeof input === 'object' && !Array.isArray(input) ? Object.keys(input) : [];
  const unknown = keys.filter((k) => !CONDITION_OPERATORS.includes(k));
  const what =
    unknown.length > 0 ? `unknown condition ${unknown.map((k) => JSON.stringify(k)).join(', ')}` : keys.length > 1 ? 'one operator per condition' : 'not a valid condition';
  const regex = unknown.some((k) => /^(regexp?|pattern|match(es)?)$/i.test(k)) ? ' (regular expressions are not supported: use glob, e.g. {glob: "refs/heads/release-*"})' : '';
  return `${what}: expected ${CONDITION_FORMS}${regex}`;
}

export const conditionSchema = z.union(
  [
    scalar,
    z.array(scalar).min(1),
    z.strictObject({ equals: scalar }),
    z.strictObject({ one_of: z.array(scalar).min(1) }),
    z.strictObject({ glob: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]) }),
    z.strictObject({ present: z.boolean() }),
    z.strictObject({ contains: z.union([scalar, z.array(scalar).min(1)]) }),
  ],
  { error: (issue) => conditionError(issue.input) },
);
export type ConditionInput = z.infer<typeof conditionSchema>;

const claimsSchema = z.record(z.string().min(1), conditionSchema);

export const bindingSchema = z.strictObject({
  description: z.string().optional(),
  issuer: z.string().min(1).describe('Key of an entry under `issuers`.'),
  claims: claimsSchema.describe('Claim name → condition. Every condition must hold.'),
  session_policy: z
    .union([z.string(), z.record(z.string(), z.unknown())])
    .optional()
    .describe('Inline session policy (JSON text or object) that further restricts the session.'),
  policy_arns: z.array(z.string()).max(10).optional().describe('Managed policy ARNs used as session policies.'),
  max_duration_seconds: seconds(900, 43_200).optional(),
});

export const denyRuleSchema = z.strictObject({
  description: z.string().optional(),
  issuer: z.string().min(1).optional().describe('Omit to match tokens of every issuer.'),
  claims: claimsSchema,
});

export const roleSchema = z.strictObject({
  description: z.string().optional(),
  arn: z.string().describe('arn:aws:iam::<account>:role/<path/name>; any account.'),
  region: z.string().optional().describe('STS region for this role; default aws.region.'),
  max_duration_seconds: seconds(900, 43_200).default(3600),
  default_duration_seconds: seconds(900, 43_200).optional(),
  session_name: z.string().optional().describe('Template; default from the issuer preset. `{claim}` and `{@issuer}`, `{@role}`, `{@provider}`, `{@token_hash}`.'),
  source_identity: z.string().optional().describe('Template over immutable claims; default from the preset.'),
  tags: z.record(z.string(), z.string()).optional().describe('Session tag key → template. Default from the preset.'),
  transitive_tag_keys: z.array(z.string()).optional(),
  allow: z.array(bindingSchema).min(1),
  deny: z.array(denyRuleSchema).default([]),
});

const consoleAccessSchema = z
  .strictObject({
    groups: z.array(z.string().min(1)).default([]).describe('Members of any of these groups (the `groups_claim` of the ID token) get this role.'),
    emails: z.array(z.string().min(3)).default([]).describe('These people (exact e-mail address, case-insensitive) get this role.'),
  })
  .prefault({});

export const consoleSchema = z
  .strictObject({
    url: z
      .string()
      .optional()
      .describe('The address people open (scheme://host[:port], no path), e.g. the TLS proxy in front of the admin listener. The SSO redirect URI is <url>/console/auth/callback; requests from any other origin are refused.'),
    session_idle_seconds: seconds(60, 8 * 3600).default(900).describe('A console session ends after this long without a request.'),
    session_max_seconds: seconds(300, 24 * 3600).default(8 * 3600).describe('A console session ends this long after sign-in, active or not.'),
    sso: z
      .strictObject({
        issuer: z.string().min(1).describe('The identity provider\'s OIDC issuer URL (discovery at <issuer>/.well-known/openid-configuration).'),
        client_id: z.string().min(1),
        client_secret_file: z.string().min(1).optional().describe('File holding the client secret.'),
        client_secret_env: envName.optional().describe('Environment variable holding the client secret (instead of client_secret_file).'),
        scopes: z.array(z.string().min(1)).default(['openid', 'email', 'profile']).describe('Scopes to request; must include openid.'),
        groups_claim: z.string().min(1).default('groups').describe('ID token claim listing the person\'s groups (Entra ID app roles: `roles`).'),
        email_claim: z.string().min(1).default('email').describe('ID token claim with the person\'s e-mail address (Entra ID: `preferred_username`).'),
        required_claims: z
          .record(z.string().min(1), z.string())
          .default({})
          .describe('Claims the ID token must carry with exactly these values, e.g. { hd: example.com } for Google Workspace (only accounts of that domain).'),
        userinfo: z.boolean().default(false).describe('Also read claims from the userinfo endpoint (providers that leave groups out of the ID token).'),
        allow_insecure_http: z.boolean().default(false).describe('Allow an http:// issuer. Only for local testing.'),
      })
      .optional()
      .describe('Single sign-on with OpenID Connect (authorization code + PKCE). Without it the console is off (except in `credbroker dev`).'),
    viewers: consoleAccessSchema.describe('Who may read: the overview, decisions, revocations, static keys, policy.'),
    operators: consoleAccessSchema.describe('Who may also act: revoke, lift revocations, revoke sessions, rotate keys.'),
  })
  .prefault({});

export const configSchema = z.strictObject({
  server: z
    .strictObject({
      host: z.string().default('127.0.0.1'),
      port: z.number().int().min(0).max(65_535).default(8080),
      trust_proxy: z
        .union([z.boolean(), z.number().int().min(0).max(10), z.array(z.string().min(1)).min(1)])
        .default(false)
        .describe(
          'Which X-Forwarded-For entries to believe for the client IP (rate limits, audit). false: none (the socket address). ' +
            'A number: how many proxies are in front (1 behind one load balancer). A list: the proxies\' IPs/CIDRs ' +
            '(or loopback, linklocal, uniquelocal). true trusts every entry, so a client can choose its own IP: avoid. Read at start only.',
        ),
      tls: z
        .strictObject({
          cert_file: z.string().min(1).describe('PEM certificate chain (leaf first). Re-read on SIGHUP and when the file changes.'),
          key_file: z.string().min(1).describe('PEM private key of the certificate. Keep it readable by the broker only.'),
          min_version: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2').describe('Oldest TLS version accepted.'),
        })
        .optional()
        .describe('Serve HTTPS (public and admin listeners). Without it the broker speaks plain HTTP: terminate TLS in front of it.'),
      request_timeout_ms: z.number().int().min(1000).max(120_000).default(15_000),
      max_concurrent_exchanges: z
        .number()
        .int()
        .min(1)
        .max(100_000)
        .default(128)
        .describe('Exchanges in progress at once; more wait their turn (in order) before their body is read. Bounds memory under load.'),
      keep_alive_timeout_ms: z
        .number()
        .int()
        .min(1000)
        .max(600_000)
        .default(65_000)
        .describe('How long an idle keep-alive connection stays open. Keep it above the idle timeout of the load balancer in front (ALB: 60 s).'),
      body_limit_bytes: z.number().int().min(256).max(1024 * 1024).default(16 * 1024),
      max_session_duration_seconds: seconds(900, 43_200).default(3600).describe('Broker-wide cap on DurationSeconds.'),
      readiness_wait_ms: z.number().int().min(0).max(120_000).default(5000).describe('How long start-up waits for issuer keys.'),
      rate_limit: z
        .strictObject({
          per_ip: z.strictObject({ limit: z.number().int().min(1), window_seconds: z.number().int().min(1).max(86_400) }).default({ limit: 1200, window_seconds: 60 }),
          per_identity: z
            .strictObject({ limit: z.number().int().min(1), window_seconds: z.number().int().min(1).max(86_400) })
            .default({ limit: 300, window_seconds: 60 })
            .describe('Per issuer + subject of the presented token.'),
        })
        .prefault({}),
    })
    .prefault({}),
  aws: z
    .strictObject({
      region: z.string().default('us-east-1'),
      sts_endpoint: z.string().optional().describe('Override the STS endpoint (tests, VPC endpoints).'),
      iam_endpoint: z.string().optional(),
      max_attempts: z.number().int().min(1).max(10).default(3),
      http_timeout_ms: z.number().int().min(500).max(60_000).default(5000),
      sts_calls_per_second_per_account: z
        .number()
        .min(1)
        .max(10_000)
        .default(500)
        .describe('Pacing: AssumeRole calls per second per target account (STS itself allows a few hundred per second); excess calls wait up to 2 s, then get 503.'),
      circuit_breaker: z
        .strictObject({
          failure_threshold: z.number().int().min(1).max(1000).default(5).describe('Consecutive STS throttling/5xx failures for one account that open the circuit.'),
          open_seconds: z.number().int().min(1).max(3600).default(30).describe('While open, requests for that account get 503 without calling STS; then one trial call.'),
        })
        .prefault({}),
      role_chaining: z
        .enum(['auto', 'always', 'never'])
        .default('auto')
        .describe('Whether the broker itself runs on role credentials (AssumeRole is then capped at 1 h). auto: temporary credentials ⇒ chaining.'),
    })
    .prefault({}),
  logging: z
    .strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') })
    .prefault({}),
  audit: z
    .strictObject({
      sink: z.enum(['stdout', 'file', 'store']).default('stdout'),
      path: z.string().optional(),
      hmac_key_file: z
        .string()
        .min(1)
        .optional()
        .describe('File holding the HMAC key that chains audit records in the store (at least 32 characters, e.g. `openssl rand -base64 48`). The database never holds it.'),
      hmac_key_env: envName.optional().describe('Environment variable holding the HMAC key (instead of hmac_key_file).'),
      hmac_key_id: keyId.optional().describe('Id recorded with each row; default derived from the key (a fingerprint, not the key).'),
      previous_hmac_keys: z
        .array(
          z.strictObject({
            id: keyId.optional().describe('The id the rows name; default derived from the key.'),
            file: z.string().min(1).optional(),
            env: envName.optional(),
          }),
        )
        .default([])
        .describe('Retired keys, kept to verify rows written before a key rotation. Never used to write.'),
      allow_unkeyed_chain: z
        .boolean()
        .default(false)
        .describe('Accept audit.sink "store" without an HMAC key: anyone who can write to the database can then rewrite the trail. Off: the broker refuses to start.'),
      checkpoints: z
        .strictObject({
          sink: z
            .enum(['stderr', 'stdout', 'file'])
            .default('stderr')
            .describe('Where signed checkpoints of the chain head go: somewhere the database writer cannot write (the log stream, or a file).'),
          path: z.string().optional().describe('Append-only file for checkpoints (sink "file").'),
          interval_seconds: z.number().int().min(5).max(3600).default(60).describe('A checkpoint is written when the head moved, at most this often; also at start and at shutdown.'),
        })
        .prefault({}),
    })
    .prefault({}),
  store: z
    .strictObject({
      driver: z.enum(['memory', 'sqlite', 'postgres']).default('memory'),
      sqlite_path: z.string().default('credbroker.sqlite'),
      postgres_url: z.string().optional(),
      postgres_pool_size: z
        .number()
        .int()
        .min(1)
        .max(200)
        .default(10)
        .describe('Connections per replica. The writes of concurrent exchanges are batched, so a few connections carry a lot of load.'),
    })
    .prefault({}),
  admin: z
    .strictObject({
      enabled: z.boolean().default(false),
      host: z.string().default('127.0.0.1').describe('Bind address of the admin listener; keep it private.'),
      port: z.number().int().min(0).max(65_535).default(8081),
      client_ca_file: z
        .string()
        .min(1)
        .optional()
        .describe('PEM CA certificates: the admin listener then requires a client certificate they signed (mutual TLS). Needs server.tls.'),
      allow_insecure_non_loopback: z
        .boolean()
        .default(false)
        .describe('Without server.tls the admin listener speaks plain HTTP: a host other than loopback is then refused unless this is true (and the broker warns at start).'),
      tokens: z
        .array(
          z.strictObject({
            name: z.string().min(1).describe('Who holds this token (recorded in the audit trail).'),
            sha256: z.string().regex(/^[0-9a-f]{64}$/).describe('SHA-256 (hex) of the bearer token; the token itself is never in the config.'),
            scopes: z
              .array(z.enum(ADMIN_SCOPES))
              .min(1)
              .optional()
              .describe('read: every read-only route. operate: also revoke, unrevoke, revoke sessions, rotate. Default [read].'),
          }),
        )
        .default([]),
    })
    .prefault({}),
  metrics: z
    .strictObject({
      enabled: z.boolean().default(true).describe('Serve Prometheus metrics on their own listener (never on the public one).'),
      host: z.string().default('127.0.0.1').describe('Bind address; metrics name accounts, issuers and IAM users: keep it private.'),
      port: z.number().int().min(0).max(65_535).default(8082),
    })
    .prefault({}),
  network: z
    .strictObject({
      proxy: z
        .string()
        .min(1)
        .optional()
        .describe(
          'Egress proxy for every outbound request (issuers, STS, IAM, CI APIs): http://[user:password@]host:port or https://…. ' +
            'Wins over HTTPS_PROXY/HTTP_PROXY. Keep credentials out of the file: proxy: ${PROXY_URL}.',
        ),
      no_proxy: z
        .array(z.string().min(1))
        .optional()
        .describe('Hosts reached directly: a host name (and its subdomains; a leading dot is optional), an IP address, a CIDR, or "*". Wins over NO_PROXY.'),
      use_env_proxy: z
        .boolean()
        .default(true)
        .describe('Read HTTPS_PROXY, HTTP_PROXY and NO_PROXY (lower case first) where proxy / no_proxy are not set.'),
      ca_file: z
        .string()
        .min(1)
        .optional()
        .describe('PEM CA certificate(s) added to the system roots for every outbound HTTPS connection (STS, IAM, CI APIs, issuers, an https:// proxy).'),
      ca_file_only: z.boolean().default(false).describe('Trust only ca_file, not the system roots.'),
    })
    .prefault({})
    .describe('Outbound connections: egress proxy and internal certificate authorities. Read at start only.'),
  revocation: z
    .strictObject({
      poll_ms: z.number().int().min(50).max(60_000).default(500).describe('How often replicas check for new revocations.'),
      max_staleness_ms: z.number().int().min(1000).max(600_000).default(10_000).describe('Refuse exchanges when the revocation list could not be read for this long.'),
    })
    .prefault({}),
  issuers: z.record(z.string().regex(/^[A-Za-z0-9_-]+$/), issuerSchema),
  roles: z.record(z.string().regex(/^[A-Za-z0-9_.-]+$/), roleSchema),
  deny: z.array(denyRuleSchema).default([]).describe('Deny rules for every role; deny wins over allow.'),
  console: consoleSchema.describe('The security team\'s web console on the admin listener (docs/console.md).'),
  rotation: rotationConfigSchema.optional(),
});

export type ConfigInput = z.input<typeof configSchema>;
export type RawConfig = z.output<typeof configSchema>;
export type IssuerInput = z.output<typeof issuerSchema>;
export type RoleInput = z.output<typeof roleSchema>;
export type BindingInput = z.output<typeof bindingSchema>;
export type DenyRuleInput = z.output<typeof denyRuleSchema>;

export function configJsonSchema(): unknown {
  return z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' });
}
