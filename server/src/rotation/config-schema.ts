// The `rotation:` section of the config: which static IAM users credbroker rotates, how often, and
// where each new key is delivered. Sink API tokens are named by environment variable (`token_env`),
// never written in the file. A sink's target fields and variable names may use `{user}` and
// `{tag:KEY}` so that one tag-matched entry can deliver each user's key to that user's own
// repository — but a target that takes its value from IAM needs `allowed_targets` (sinks/targets.ts:
// IAM tags must not choose where a key goes).
import { z } from 'zod';
import { baseUrlProblem, hasPlaceholder, hasTagPlaceholder, targetFromIam, type SinkType } from './sinks/targets.js';

const seconds = (min: number, max: number) => z.number().int().min(min).max(max);
const DAY = 86_400;

// Upper case only: a token pasted here by mistake (ghp_…, glpat-…, Travis/CircleCI tokens) is then
// rejected at load, instead of being looked up — and named in an error message — as a variable.
const envName = z
  .string()
  .regex(/^[A-Z_][A-Z0-9_]*$/, 'must be an environment variable name (A-Z, 0-9, _)')
  .describe('Name of the environment variable that holds the API token (never the token itself).');

const secretName = (dflt: string) =>
  z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_{}:.-]*$/, 'must be a variable name')
    .default(dflt);

const names = {
  access_key_id_name: secretName('AWS_ACCESS_KEY_ID').describe('Variable that receives the access key id.'),
  secret_access_key_name: secretName('AWS_SECRET_ACCESS_KEY').describe('Variable that receives the secret access key.'),
};

/** A value with a fixed shape, or a template ({user}, {tag:KEY}) checked once expanded. */
const shaped = (re: RegExp, message: string) =>
  z.string().refine((v) => re.test(v) || /\{(user|tag:[^{}]+)\}/.test(v), { message });

const sinkCommon = {
  id: z
    .string()
    .regex(/^[A-Za-z0-9_.:/@{}-]+$/)
    .optional()
    .describe('Stable identifier used in the rotation state and audit; derived from the target when omitted.'),
};

/** The API host: from the config alone, https (plain http only to loopback). */
const baseUrl = (dflt: string, description: string) =>
  z
    .string()
    .superRefine((v, ctx) => {
      const problem = baseUrlProblem(v);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .default(dflt)
    .describe(description);

const allowedTargets = {
  allowed_targets: z
    .array(
      z
        .string()
        .min(1)
        .refine((p) => !hasPlaceholder(p), { message: 'a pattern, not a template' }),
    )
    .min(1)
    .optional()
    .describe(
      'Targets this sink may write to, as patterns over its target id (github:repo:OWNER/REPO, github:env:OWNER/REPO/ENV, github:org:ORG, gitlab:PROJECT:SCOPE, circleci:VCS/ORG/REPO, travis:OWNER/REPO[@BRANCH]); * matches within one segment (not / or :). Required when a target field takes its value from IAM ({tag:KEY}, or {user} in a tag entry).',
    ),
};

export const githubSinkSchema = z
  .strictObject({
    type: z.literal('github'),
    ...sinkCommon,
    ...allowedTargets,
    token_env: envName,
    base_url: baseUrl('https://api.github.com', 'GitHub Enterprise Server: https://HOST/api/v3.'),
    owner: z.string().min(1).optional().describe('Repository owner (repository and environment secrets).'),
    repo: z.string().min(1).optional(),
    environment: z.string().min(1).optional().describe('Deployment environment: an environment secret.'),
    org: z.string().min(1).optional().describe('Organization: an organization secret (without owner/repo).'),
    visibility: z.enum(['all', 'private', 'selected']).default('private').describe('Organization secrets only.'),
    selected_repository_ids: z.array(z.number().int().positive()).optional(),
    ...names,
  })
  .refine((s) => !(s.org !== undefined && (s.owner !== undefined || s.repo !== undefined)), {
    message: 'give either org, or owner and repo (optionally environment)',
  })
  .refine((s) => s.org !== undefined || (s.owner !== undefined && s.repo !== undefined), {
    message: 'owner and repo are both required for a repository or environment secret',
  })
  .refine((s) => !(s.org !== undefined && s.environment !== undefined), { message: 'environment is not valid with org' })
  .describe('GitHub Actions secrets, sealed with the target public key (libsodium sealed box).');

export const gitlabSinkSchema = z
  .strictObject({
    type: z.literal('gitlab'),
    ...sinkCommon,
    ...allowedTargets,
    token_env: envName,
    base_url: baseUrl('https://gitlab.com', 'GitLab host (the API lives under /api/v4).'),
    project: z.union([z.string().min(1), z.number().int().positive()]).describe('Project id or full path (group/project).'),
    environment_scope: z.string().min(1).default('*'),
    protected: z.boolean().default(true),
    ...names,
  })
  .describe('GitLab CI/CD project variables, always masked.');

export const circleciSinkSchema = z
  .strictObject({
    type: z.literal('circleci'),
    ...sinkCommon,
    ...allowedTargets,
    token_env: envName,
    base_url: baseUrl('https://circleci.com/api/v2', 'CircleCI API base.'),
    project_slug: shaped(/^[^/\s]+\/[^/\s]+\/[^/\s]+$/, 'vcs/org/repo, e.g. gh/acme/app'),
    ...names,
  })
  .describe('CircleCI project environment variables (API v2).');

export const travisSinkSchema = z
  .strictObject({
    type: z.literal('travis'),
    ...sinkCommon,
    ...allowedTargets,
    token_env: envName,
    base_url: baseUrl('https://api.travis-ci.com', 'Travis CI API base.'),
    repo: shaped(/^[^/\s]+\/[^/\s]+$/, 'owner/name'),
    branch: z.string().min(1).optional().describe('Restrict the variables to one branch.'),
    ...names,
  })
  .describe('Travis CI repository environment variables (API v3), always private.');

export const commandSinkSchema = z
  .strictObject({
    type: z.literal('command'),
    ...sinkCommon,
    name: z.string().regex(/^[A-Za-z0-9_.-]+$/).describe('Short name for state, audit and logs.'),
    command: z
      .array(
        z
          .string()
          .min(1)
          // The program gets user_name on stdin; an argument from IAM could inject an option (--output=…).
          .refine((v) => !hasPlaceholder(v), { message: 'must not use {user} or {tag:…}: command arguments come from the config alone (the program receives user_name on stdin)' }),
      )
      .min(1)
      .describe('Program and arguments; no shell, no templates. Credentials arrive as JSON on stdin.'),
    timeout_seconds: seconds(1, 600).default(60),
    pass_env: z.array(envName).default([]).describe('Environment variables passed to the program (besides PATH, HOME, LANG).'),
  })
  .describe('Runs a program with {"access_key_id","secret_access_key",...} on stdin; exit 0 confirms delivery.');

export const sinkSchema = z.discriminatedUnion('type', [
  githubSinkSchema,
  gitlabSinkSchema,
  circleciSinkSchema,
  travisSinkSchema,
  commandSinkSchema,
]);

const userSettings = {
  max_key_age_seconds: seconds(3600, 400 * DAY).optional().describe('Rotate once the active key is this old. Default rotation.max_key_age_seconds.'),
  grace_period_seconds: seconds(0, 90 * DAY).optional().describe('Time between deactivating the old key and deleting it.'),
  sinks: z.array(sinkSchema).min(1),
};

export const userEntrySchema = z
  .strictObject({
    name: z.string().regex(/^[\w+=,.@-]{1,64}$/).optional().describe('An IAM user name.'),
    tag: z
      .strictObject({ key: z.string().min(1), value: z.string().optional() })
      .optional()
      .describe('Every IAM user with this tag (and value, when given) under path_prefix.'),
    path_prefix: z.string().regex(/^\/([\x21-\x7e]*\/)?$/, 'an IAM path such as /ci/').default('/'),
    ...userSettings,
  })
  .refine((u) => (u.name === undefined) !== (u.tag === undefined), { message: 'give exactly one of name or tag' })
  .superRefine((u, ctx) => {
    u.sinks.forEach((sink, i) => {
      if (sink.type === 'command' || sink.allowed_targets !== undefined) return;
      for (const field of targetFromIam(sink.type as SinkType, sink as Record<string, unknown>, u.tag !== undefined)) {
        ctx.addIssue({
          code: 'custom',
          path: ['sinks', i, field],
          message: `takes its value from IAM (${hasTagPlaceholder((sink as Record<string, unknown>)[field]) ? '{tag:…}' : '{user}, in an entry that matches users by tag'}): add allowed_targets, so that IAM cannot choose where the key goes`,
        });
      }
    });
  });

export const rotationConfigSchema = z
  .strictObject({
    enabled: z.boolean().default(true).describe('Run the rotation loop inside `credbroker serve`.'),
    interval_seconds: seconds(60, DAY).default(3600),
    jitter_seconds: seconds(0, DAY).default(300),
    concurrency: z.number().int().min(1).max(16).default(2).describe('Users rotated in parallel.'),
    lease_seconds: seconds(10, 3600).default(120).describe('Leader lock lease; renewed while a run lasts.'),
    max_key_age_seconds: seconds(3600, 400 * DAY).default(30 * DAY),
    grace_period_seconds: seconds(0, 90 * DAY).default(7 * DAY),
    verify: z
      .strictObject({
        successes: z.number().int().min(1).max(20).default(3).describe('Consecutive GetCallerIdentity successes required.'),
        initial_backoff_ms: z.number().int().min(0).max(60_000).default(2000),
        max_backoff_ms: z.number().int().min(0).max(300_000).default(15_000),
        timeout_seconds: seconds(1, 3600).default(120),
      })
      .prefault({}),
    sink_attempts: z.number().int().min(1).max(10).default(3).describe('Attempts per sink per run (408/429/5xx and network errors).'),
    sink_backoff_ms: z.number().int().min(0).max(60_000).default(1000).describe('First wait between sink attempts; doubles each time.'),
    sink_timeout_ms: z.number().int().min(500).max(120_000).default(15_000),
    retry_backoff_seconds: seconds(1, DAY).default(300).describe('Wait after a failed run before retrying that user.'),
    users: z.array(userEntrySchema).min(1),
  })
  .describe('Static IAM user key rotation.');

export type RotationConfig = z.output<typeof rotationConfigSchema>;
export type RotationConfigInput = z.input<typeof rotationConfigSchema>;
export type UserEntry = z.output<typeof userEntrySchema>;
export type SinkConfig = z.output<typeof sinkSchema>;
export type GithubSinkConfig = z.output<typeof githubSinkSchema>;
export type GitlabSinkConfig = z.output<typeof gitlabSinkSchema>;
export type CircleciSinkConfig = z.output<typeof circleciSinkSchema>;
export type TravisSinkConfig = z.output<typeof travisSinkSchema>;
export type CommandSinkConfig = z.output<typeof commandSinkSchema>;
