// What the broker knows about each CI provider's tokens: issuer URL shape, value types, which
// claims are immutable ids (safe to bind) and which are mutable names, and defaults for session
// naming. Source: the providers' public docs (see test/fixtures/ci-tokens/README.md).
import type { PresetName } from '../config/schema.js';

export type ClaimType = 'string' | 'number' | 'boolean' | 'array' | 'null';

export interface Preset {
  name: PresetName;
  /** Short prefix used in session names and source identities. */
  short: string;
  /** Issuer URL from preset parameters, or an error message naming the missing parameter. */
  issuerUrl(p: { host?: string | undefined; org_id?: string | undefined; workspace?: string | undefined }): string | { error: string };
  /** Provider sends every custom claim as a string (so `true` in config means `"true"`). */
  stringClaims: boolean;
  /** Claims whose type is known; with `stringClaims`, unlisted custom claims are strings. */
  claimTypes: Record<string, ClaimType>;
  /** Immutable ids: bind on these. */
  immutableClaims: string[];
  /** Mutable names: binding on them alone is a lint warning when an immutable id exists. */
  mutableClaims: Record<string, string>;
  /**
   * Every claim the provider documents (besides the standard ones and those named above); `x*` is
   * a prefix. Undefined: the provider lets each installation choose its claims. A name outside it
   * is a lint warning: a condition on a claim that never comes never matches.
   */
  knownClaims?: readonly string[];
  /** Claims that pin the organization on a shared issuer (lint: at least one must be bound). */
  orgPinClaims?: string[];
  defaultMaxTokenAge: number;
  sessionName: string;
  sourceIdentity: string;
  tags: Record<string, string>;
}

const STANDARD: Record<string, ClaimType> = { iss: 'string', sub: 'string', aud: 'string', jti: 'string', iat: 'number', nbf: 'number', exp: 'number' };

export const PRESETS: Record<PresetName, Preset> = {
  'github-actions': {
    name: 'github-actions',
    short: 'gh',
    issuerUrl: (p) => (p.host ? `https://${p.host}/_services/token` : 'https://token.actions.githubusercontent.com'),
    stringClaims: true,
    claimTypes: { ...STANDARD },
    immutableClaims: ['repository_id', 'repository_owner_id', 'actor_id', 'enterprise_id'],
    mutableClaims: { repository: 'repository_id', repository_owner: 'repository_owner_id', actor: 'actor_id', sub: 'repository_id', enterprise: 'enterprise_id' },
    orgPinClaims: ['repository_owner_id', 'repository_id', 'enterprise_id'],
    knownClaims: ['actor', 'actor_id', 'base_ref', 'check_run_id', 'enterprise', 'enterprise_id', 'environment', 'event_name', 'head_ref', 'job_workflow_ref', 'job_workflow_sha', 'ref', 'ref_protected', 'ref_type', 'repository', 'repository_id', 'repository_owner', 'repository_owner_id', 'repository_visibility', 'run_attempt', 'run_id', 'run_number', 'runner_environment', 'sha', 'workflow', 'workflow_ref', 'workflow_sha'],
    defaultMaxTokenAge: 600,
    sessionName: 'gh-{repository_id}-{run_id}-{run_attempt}',
    sourceIdentity: 'gh-{repository_id}-{actor_id}',
    tags: { provider: '{@provider}', repository_id: '{repository_id}', repository: '{repository}', ref: '{ref}', workflow: '{workflow}', run_id: '{run_id}', actor: '{actor}' },
  },
  gitlab: {
    name: 'gitlab',
    short: 'gl',
    issuerUrl: (p) => (p.host ? `https://${p.host}` : 'https://gitlab.com'),
    stringClaims: false,
    claimTypes: {
      ...STANDARD,
      namespace_id: 'string', project_id: 'string', job_project_id: 'string', job_namespace_id: 'string', user_id: 'string',
      pipeline_id: 'string', job_id: 'string', ref_protected: 'string', environment_protected: 'string', runner_id: 'number',
    },
    immutableClaims: ['project_id', 'namespace_id', 'job_project_id', 'job_namespace_id', 'user_id'],
    mutableClaims: { project_path: 'project_id', namespace_path: 'namespace_id', job_project_path: 'job_project_id', user_login: 'user_id', sub: 'project_id' },
    knownClaims: ['namespace_id', 'namespace_path', 'project_id', 'project_path', 'job_namespace_id', 'job_namespace_path', 'job_project_id', 'job_project_path', 'user_id', 'user_login', 'user_email', 'user_access_level', 'user_identities', 'groups_direct', 'pipeline_id', 'pipeline_source', 'job_id', 'ref', 'ref_type', 'ref_path', 'ref_protected', 'environment', 'environment_protected', 'deployment_tier', 'environment_action', 'runner_id', 'runner_environment', 'sha', 'project_visibility', 'ci_config_ref_uri', 'ci_config_sha'],
    defaultMaxTokenAge: 3600,
    sessionName: 'gl-{project_id}-{job_id}',
    sourceIdentity: 'gl-{project_id}-{user_id}',
    tags: { provider: '{@provider}', project_id: '{project_id}', project_path: '{project_path}', ref: '{ref}', pipeline_id: '{pipeline_id}', job_id: '{job_id}' },
  },
  circleci: {
    name: 'circleci',
    short: 'cci',
    issuerUrl: (p) => (p.org_id ? `https://oidc.circleci.com/org/${p.org_id}` : { error: 'circleci preset needs org_id' }),
    stringClaims: false,
    claimTypes: { ...STANDARD, 'oidc.circleci.com/context-ids': 'array', 'oidc.circleci.com/ssh-rerun': 'boolean', 'oidc.circleci.com/project-id': 'string' },
    immutableClaims: ['oidc.circleci.com/project-id', 'sub'],
    mutableClaims: { 'oidc.circleci.com/vcs-origin': 'oidc.circleci.com/project-id' },
    knownClaims: ['oidc.circleci.com/project-id', 'oidc.circleci.com/vcs-origin', 'oidc.circleci.com/vcs-ref', 'oidc.circleci.com/context-ids', 'oidc.circleci.com/ssh-rerun'],
    defaultMaxTokenAge: 3600,
    sessionName: 'cci-{oidc.circleci.com/project-id}-{@token_hash}',
    sourceIdentity: 'cci-{oidc.circleci.com/project-id}',
    tags: { provider: '{@provider}', project_id: '{oidc.circleci.com/project-id}', vcs_origin: '{oidc.circleci.com/vcs-origin}', vcs_ref: '{oidc.circleci.com/vcs-ref}' },
  },
  buildkite: {
    name: 'buildkite',
    short: 'bk',
    issuerUrl: () => 'https://agent.buildkite.com',
    stringClaims: false,
    // build_tag is null on branch builds and the tag name on tag builds: a (nullable) string.
    claimTypes: { ...STANDARD, build_number: 'number', build_tag: 'string', organization_id: 'string', pipeline_id: 'string' },
    immutableClaims: ['organization_id', 'pipeline_id'],
    mutableClaims: { organization_slug: 'organization_id', pipeline_slug: 'pipeline_id', sub: 'organization_id' },
    orgPinClaims: ['organization_id'],
    knownClaims: ['organization_slug', 'pipeline_slug', 'build_number', 'build_branch', 'build_tag', 'build_commit', 'build_source', 'step_key', 'job_id', 'agent_id', 'runner_environment', 'organization_id', 'pipeline_id', 'cluster_id', 'cluster_name', 'queue_id', 'queue_key', 'agent_tag:*'],
    defaultMaxTokenAge: 600,
    sessionName: 'bk-{job_id}',
    sourceIdentity: 'bk-{pipeline_id}',
    tags: { provider: '{@provider}', organization_slug: '{organization_slug}', pipeline_slug: '{pipeline_slug}', build_branch: '{build_branch}', job_id: '{job_id}' },
  },
  bitbucket: {
    name: 'bitbucket',
    short: 'bb',
    issuerUrl: (p) =>
      p.workspace ? `https://api.bitbucket.org/2.0/workspaces/${p.workspace}/pipelines-config/identity/oidc` : { error: 'bitbucket preset needs workspace' },
    stringClaims: false,
    claimTypes: { ...STANDARD, repositoryUuid: 'string', workspaceUuid: 'string' },
    immutableClaims: ['repositoryUuid', 'workspaceUuid'],
    mutableClaims: {},
    knownClaims: ['stepUuid', 'repositoryUuid', 'pipelineUuid', 'workspaceUuid', 'deploymentEnvironmentUuid', 'branchName'],
    defaultMaxTokenAge: 3600,
    sessionName: 'bb-{stepUuid}',
    sourceIdentity: 'bb-{repositoryUuid}',
    // Bitbucket ids are "{uuid}": AWS refuses braces in tag values, so the tags carry the bare uuid.
    tags: { provider: '{@provider}', repository_uuid: '{repositoryUuid|unbrace}', branch: '{branchName}', pipeline_uuid: '{pipelineUuid|unbrace}' },
  },
  jenkins: {
    name: 'jenkins',
    short: 'jk',
    issuerUrl: () => ({ error: 'jenkins preset needs url (JENKINS_URL + "oidc")' }),
    stringClaims: false,
    claimTypes: { ...STANDARD, build_number: 'number' },
    immutableClaims: [],
    mutableClaims: {},
    defaultMaxTokenAge: 3600,
    sessionName: 'jk-{build_number}-{@token_hash}',
    sourceIdentity: 'jk-{@token_hash}',
    tags: { provider: '{@provider}', job: '{sub}', build_number: '{build_number}' },
  },
  'azure-devops': {
    name: 'azure-devops',
    short: 'ado',
    issuerUrl: (p) => (p.org_id ? `https://vstoken.dev.azure.com/${p.org_id}` : { error: 'azure-devops preset needs org_id' }),
    stringClaims: false,
    claimTypes: { ...STANDARD, org_id: 'string', prj_id: 'string', def_id: 'string', run_id: 'string' },
    immutableClaims: ['org_id', 'prj_id', 'def_id'],
    mutableClaims: { rpo_id: 'prj_id', sub: 'def_id' },
    knownClaims: ['org_id', 'prj_id', 'def_id', 'rpo_id', 'rpo_uri', 'rpo_ver', 'rpo_ref', 'run_id'],
    defaultMaxTokenAge: 900,
    sessionName: 'ado-{def_id}-{run_id}',
    sourceIdentity: 'ado-{prj_id}-{def_id}',
    tags: { provider: '{@provider}', project_id: '{prj_id}', definition_id: '{def_id}', repository: '{rpo_id}', ref: '{rpo_ref}' },
  },
  'terraform-cloud': {
    name: 'terraform-cloud',
    short: 'tfc',
    issuerUrl: (p) => (p.host ? `https://${p.host}` : 'https://app.terraform.io'),
    stringClaims: false,
    claimTypes: { ...STANDARD },
    immutableClaims: ['terraform_organization_id', 'terraform_workspace_id', 'terraform_project_id'],
    mutableClaims: {
      terraform_organization_name: 'terraform_organization_id',
      terraform_workspace_name: 'terraform_workspace_id',
      terraform_project_name: 'terraform_project_id',
      terraform_full_workspace: 'terraform_workspace_id',
      sub: 'terraform_workspace_id',
    },
    orgPinClaims: ['terraform_organization_id', 'terraform_workspace_id'],
    knownClaims: ['terraform_organization_id', 'terraform_organization_name', 'terraform_project_id', 'terraform_project_name', 'terraform_workspace_id', 'terraform_workspace_name', 'terraform_full_workspace', 'terraform_run_id', 'terraform_run_phase'],
    defaultMaxTokenAge: 900,
    sessionName: 'tfc-{terraform_run_id}',
    sourceIdentity: 'tfc-{terraform_workspace_id}',
    tags: { provider: '{@provider}', organization_id: '{terraform_organization_id}', workspace_id: '{terraform_workspace_id}', workspace: '{terraform_workspace_name}', run_phase: '{terraform_run_phase}' },
  },
};

/** The type a provider sends for a claim, if the preset knows it (own properties only). */
export function expectedClaimType(preset: Preset | undefined, claim: string): ClaimType | undefined {
  if (!preset) return undefined;
  if (Object.hasOwn(preset.claimTypes, claim)) return preset.claimTypes[claim];
  return preset.stringClaims ? 'string' : undefined;
}

/** The immutable id to bind instead of a mutable name, if the preset knows one. */
export function immutableFor(preset: Preset, claim: string): string | undefined {
  return Object.hasOwn(preset.mutableClaims, claim) ? preset.mutableClaims[claim] : undefined;
}

/**
 * Whether the provider sends a claim of this name: true, false, or undefined when it cannot be told
 * (no preset, or a provider whose claims each installation chooses).
 */
export function knowsClaim(preset: Preset | undefined, claim: string): boolean | undefined {
  if (!preset?.knownClaims) return undefined;
  const names = claimNames(preset);
  return names.includes(claim) || names.some((n) => n.endsWith('*') && claim.startsWith(n.slice(0, -1)));
}

const claimNames = (preset: Preset): string[] => [
  ...Object.keys(STANDARD),
  ...Object.keys(preset.claimTypes),
  ...preset.immutableClaims,
  ...Object.keys(preset.mutableClaims),
  ...(preset.knownClaims ?? []),
];

/** Edit distance, for "did you mean": claim names are short. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    prev = row;
  }
  return prev[b.length]!;
}

/** `repo_id` for `repository_id`: each part a prefix of the other name's part. */
function abbreviates(short: string, long: string): boolean {
  const a = short.split(/[_.\/-]/);
  const b = long.split(/[_.\/-]/);
  return a.length === b.length && a.every((part, i) => part.length > 0 && b[i]!.startsWith(part));
}

/** The known claim a misspelt name most likely meant, if one is close. */
export function closestClaim(presets: ReadonlyArray<Preset | undefined>, claim: string): string | undefined {
  const lower = claim.toLowerCase();
  let best: { name: string; d: number } | undefined;
  for (const name of new Set(presets.flatMap((p) => (p?.knownClaims ? claimNames(p) : [])))) {
    if (name.endsWith('*')) continue;
    const n = name.toLowerCase();
    // A prefix or an abbreviation is close whatever its length; among them, the nearest wins.
    const d = n === lower ? 0 : n.startsWith(lower) || lower.startsWith(n) || abbreviates(lower, n) ? 1 + distance(lower, n) / 1000 : distance(lower, n);
    if (d <= Math.max(2, Math.floor(claim.length / 4)) && (!best || d < best.d)) best = { name, d };
  }
  return best?.name;
}

/** Defaults for an issuer without a preset: strict typing, generic naming. */
export const GENERIC = {
  short: 'oidc',
  defaultMaxTokenAge: 900,
  sessionName: 'oidc-{@token_hash}',
  sourceIdentity: 'oidc-{@token_hash}',
  tags: { provider: '{@provider}', subject: '{sub}' } as Record<string, string>,
};
