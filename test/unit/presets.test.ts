// Issuer presets: the issuer URL each derives, and each provider's real claim set evaluated against
// a binding on the preset's immutable ids: allowed, with names valid for AWS that trace to the job.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../server/src/config/load.js';
import { evaluate } from '../../server/src/core/policy.js';
import { PRESETS } from '../../server/src/core/presets.js';
import type { PresetName } from '../../server/src/config/schema.js';

const AUD = ['https://credbroker.example.com'];
const TOKEN_HASH = '0123456789abcdef'.repeat(4);
const fixture = (name: string): Record<string, unknown> =>
  JSON.parse(readFileSync(fileURLToPath(new URL(`../fixtures/ci-tokens/${name}.json`, import.meta.url)), 'utf8')) as Record<string, unknown>;

const configFor = (issuer: Record<string, unknown>, claims: Record<string, unknown>) =>
  parseConfig(
    JSON.stringify({
      issuers: { ci: { audiences: AUD, ...issuer } },
      roles: { deploy: { arn: 'arn:aws:iam::111122223333:role/deploy', allow: [{ issuer: 'ci', claims }] } },
    }),
  );

describe('issuer URL from a preset', () => {
  const cases: Array<[name: string, issuer: Record<string, unknown>, url: string]> = [
    ['github-actions on github.com', { preset: 'github-actions' }, 'https://token.actions.githubusercontent.com'],
    ['github-actions on a GHES host', { preset: 'github-actions', host: 'ghe.example.com' }, 'https://ghe.example.com/_services/token'],
    ['gitlab.com', { preset: 'gitlab' }, 'https://gitlab.com'],
    ['a self-managed GitLab instance', { preset: 'gitlab', host: 'gitlab.example.com' }, 'https://gitlab.example.com'],
    ['a CircleCI organization', { preset: 'circleci', org_id: '00f45056-5918-4171-9222-b538c76ed3f8' }, 'https://oidc.circleci.com/org/00f45056-5918-4171-9222-b538c76ed3f8'],
    ['Buildkite', { preset: 'buildkite' }, 'https://agent.buildkite.com'],
    ['a Bitbucket workspace', { preset: 'bitbucket', workspace: 'bbcitest' }, 'https://api.bitbucket.org/2.0/workspaces/bbcitest/pipelines-config/identity/oidc'],
    ['an Azure DevOps organization', { preset: 'azure-devops', org_id: '0000-1111-2222-3333-4444' }, 'https://vstoken.dev.azure.com/0000-1111-2222-3333-4444'],
    ['HCP Terraform', { preset: 'terraform-cloud' }, 'https://app.terraform.io'],
    ['Terraform Enterprise', { preset: 'terraform-cloud', host: 'tfe.example.com' }, 'https://tfe.example.com'],
    ['Jenkins with an explicit url', { preset: 'jenkins', url: 'https://jenkins.example.com/oidc' }, 'https://jenkins.example.com/oidc'],
    ['an explicit url over the preset default', { preset: 'gitlab', url: 'https://git.example.org' }, 'https://git.example.org'],
  ];
  it.each(cases)('derives the issuer of %s', (_name, issuer, url) => {
    const { config } = configFor(issuer, { sub: 'x' });
    expect(config.issuers.get('ci')?.url).toBe(url);
  });

  it('uses each preset\'s max token age unless configured', () => {
    expect(configFor({ preset: 'github-actions' }, { repository_id: '1' }).config.issuers.get('ci')?.maxTokenAgeSeconds).toBe(600);
    expect(configFor({ preset: 'github-actions', max_token_age_seconds: 120 }, { repository_id: '1' }).config.issuers.get('ci')?.maxTokenAgeSeconds).toBe(120);
    expect(configFor({ url: 'https://issuer.example.com' }, { a: '1' }).config.issuers.get('ci')?.maxTokenAgeSeconds).toBe(900);
  });
});

type ProviderCase = {
  file: string;
  issuer: Record<string, unknown>;
  claims: Record<string, unknown>;
  sessionName: string | RegExp;
  sourceIdentity: string;
  jobId: string;
  /** An immutable id to change so the binding no longer matches. */
  pinned: string;
};

const SAFE_NAME = /^[\w+=,.@-]{2,64}$/;
const SAFE_TAG = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]{0,256}$/u;

const providers: Record<PresetName, ProviderCase> = {
  'github-actions': {
    file: 'github-actions',
    issuer: { preset: 'github-actions' },
    claims: { repository_owner_id: '9919', repository_id: '487920697', ref: 'refs/heads/main', ref_protected: true, environment: 'production' },
    sessionName: 'gh-487920697-16055869479-1',
    sourceIdentity: 'gh-487920697-583231',
    jobId: '16055869479',
    pinned: 'repository_id',
  },
  gitlab: {
    file: 'gitlab',
    issuer: { preset: 'gitlab' },
    claims: { project_id: '20', namespace_id: '72', ref_protected: 'true', environment_protected: 'true', runner_id: 1 },
    sessionName: 'gl-20-302',
    sourceIdentity: 'gl-20-1',
    jobId: '302',
    pinned: 'project_id',
  },
  circleci: {
    file: 'circleci',
    issuer: { preset: 'circleci', org_id: '00f45056-5918-4171-9222-b538c76ed3f8' },
    claims: {
      'oidc.circleci.com/project-id': 'dabad1c2-62eb-48a6-87ab-fc6ae6589281',
      'oidc.circleci.com/ssh-rerun': false,
      'oidc.circleci.com/context-ids': { contains: '05ad3418-d221-484f-99fb-46dc6b0f569b' },
    },
    sessionName: 'cci-dabad1c2-62eb-48a6-87ab-fc6ae6589281-0123456789ab',
    sourceIdentity: 'cci-dabad1c2-62eb-48a6-87ab-fc6ae6589281',
    jobId: '0123456789ab',
    pinned: 'oidc.circleci.com/project-id',
  },
  buildkite: {
    file: 'buildkite',
    issuer: { preset: 'buildkite' },
    claims: { organization_id: 'f892efa9-103e-4d28-97a1-3b8616a0994d', pipeline_id: '0184990a-4782-42b5-afc1-16715b10b1a0', build_branch: 'main' },
    sessionName: 'bk-0184990a-477b-4fa8-9968-496074483cee',
    sourceIdentity: 'bk-0184990a-4782-42b5-afc1-16715b10b1a0',
    jobId: '0184990a-477b-4fa8-9968-496074483cee',
    pinned: 'organization_id',
  },
  bitbucket: {
    file: 'bitbucket',
    issuer: { preset: 'bitbucket', workspace: 'bbcitest' },
    claims: { workspaceUuid: '{922e118c-f34f-4226-a897-0e0afbec553d}', repositoryUuid: '{1de489be-ce6a-42a0-a8c8-eadbf1174ac7}', branchName: 'main' },
    sessionName: 'bb-759de0c6-eaee-4eaa-b7a6-c507eec759a7-',
    sourceIdentity: 'bb-1de489be-ce6a-42a0-a8c8-eadbf1174ac7-',
    jobId: '759de0c6-eaee-4eaa-b7a6-c507eec759a7',
    pinned: 'repositoryUuid',
  },
  jenkins: {
    file: 'jenkins',
    issuer: { preset: 'jenkins', url: 'https://jenkins.example.com/oidc' },
    claims: { sub: 'https://jenkins.example.com/job/team/job/app/job/main/' },
    sessionName: 'jk-123-0123456789ab',
    sourceIdentity: 'jk-0123456789ab',
    jobId: '123',
    pinned: 'sub',
  },
  'azure-devops': {
    file: 'azure-devops',
    issuer: { preset: 'azure-devops', org_id: '0000-1111-2222-3333-4444' },
    claims: { org_id: '0000-1111-2222-3333-4444', prj_id: '6f1a2b3c-0000-4000-8000-000000000001', def_id: '42', rpo_ref: 'refs/heads/main' },
    sessionName: 'ado-42-1234',
    sourceIdentity: 'ado-6f1a2b3c-0000-4000-8000-000000000001-42',
    jobId: '1234',
    pinned: 'def_id',
  },
  'terraform-cloud': {
    file: 'terraform-cloud',
    issuer: { preset: 'terraform-cloud' },
    claims: { terraform_organization_id: 'org-GRNbCjYNpBB6NEH9', terraform_workspace_id: 'ws-mbsd5E3Ktt5Rg2Xm', terraform_run_phase: 'apply' },
    sessionName: 'tfc-run-X3n1AUXNGWbfECsJ',
    sourceIdentity: 'tfc-ws-mbsd5E3Ktt5Rg2Xm',
    jobId: 'run-X3n1AUXNGWbfECsJ',
    pinned: 'terraform_workspace_id',
  },
};

describe('provider claim sets against a binding on immutable ids', () => {
  const rows = Object.entries(providers) as Array<[PresetName, ProviderCase]>;

  it('covers every preset', () => {
    expect(rows.map(([name]) => name).sort()).toEqual(Object.keys(PRESETS).sort());
  });

  it.each(rows)('%s: the binding loads without lint warnings', (_name, p) => {
    expect(configFor(p.issuer, p.claims).warnings).toEqual([]);
  });

  it.each(rows.filter(([name]) => name !== 'jenkins'))('%s: the fixture\'s iss is the preset\'s issuer URL', (_name, p) => {
    expect(configFor(p.issuer, p.claims).config.issuers.get('ci')?.url).toBe(fixture(p.file).iss);
  });

  it.each(rows)('%s: allows the job with AWS-valid names that trace to the job', (name, p) => {
    const { config } = configFor(p.issuer, p.claims);
    const d = evaluate(config.policy, { issuer: 'ci', claims: fixture(p.file), role: 'deploy', requestedDuration: undefined, tokenHash: TOKEN_HASH, roleChaining: false, now: new Date(0) });
    expect(d.effect).toBe('allow');
    if (d.effect !== 'allow') return;
    expect(d.binding).toBe('roles.deploy.allow[0]');
    expect(d.sessionName).toMatch(SAFE_NAME);
    expect(d.sessionName).toBe(p.sessionName);
    expect(d.sessionName).toContain(p.jobId);
    expect(d.sourceIdentity).toMatch(SAFE_NAME);
    expect(d.sourceIdentity).toBe(p.sourceIdentity);
    expect(d.tags.length).toBeGreaterThan(0);
    expect(d.tags.length).toBeLessThanOrEqual(50);
    for (const tag of d.tags) expect(tag.Value).toMatch(SAFE_TAG);
    expect(d.tags).toContainEqual({ Key: 'provider', Value: name });
    // The provider's own values fit: no default tag is left out for a real token of it.
    expect(d.omittedTags).toEqual([]);
  });

  it('tags Bitbucket\'s braced uuids as bare uuids (AWS refuses braces in tag values)', () => {
    const p = providers.bitbucket;
    const { config } = configFor(p.issuer, p.claims);
    const d = evaluate(config.policy, { issuer: 'ci', claims: fixture('bitbucket'), role: 'deploy', requestedDuration: undefined, tokenHash: TOKEN_HASH, roleChaining: false, now: new Date(0) });
    expect(d.effect === 'allow' && d.tags).toContainEqual({ Key: 'repository_uuid', Value: '1de489be-ce6a-42a0-a8c8-eadbf1174ac7' });
  });

  it.each(rows)('%s: denies the same job when the pinned immutable id differs', (_name, p) => {
    const { config } = configFor(p.issuer, p.claims);
    const claims = { ...fixture(p.file), [p.pinned]: 'someone-else' };
    const d = evaluate(config.policy, { issuer: 'ci', claims, role: 'deploy', requestedDuration: undefined, tokenHash: TOKEN_HASH, roleChaining: false, now: new Date(0) });
    expect(d.effect === 'deny' && d.reason).toBe('ERR_POLICY_NO_MATCH');
  });

  it('renders GitHub\'s default tags from the claims', () => {
    const p = providers['github-actions'];
    const { config } = configFor(p.issuer, p.claims);
    const d = evaluate(config.policy, { issuer: 'ci', claims: fixture('github-actions'), role: 'deploy', requestedDuration: undefined, tokenHash: TOKEN_HASH, roleChaining: false, now: new Date(0) });
    expect(d.effect === 'allow' && d.tags).toEqual([
      { Key: 'provider', Value: 'github-actions' },
      { Key: 'repository_id', Value: '487920697' },
      { Key: 'repository', Value: 'octo-org/octo-repo' },
      { Key: 'ref', Value: 'refs/heads/main' },
      { Key: 'workflow', Value: 'Deploy' },
      { Key: 'run_id', Value: '16055869479' },
      { Key: 'actor', Value: 'octocat' },
    ]);
  });

  it('denies a CircleCI ssh-rerun of the same project', () => {
    const p = providers.circleci;
    const { config } = configFor(p.issuer, p.claims);
    const d = evaluate(config.policy, { issuer: 'ci', claims: { ...fixture('circleci'), 'oidc.circleci.com/ssh-rerun': true }, role: 'deploy', requestedDuration: undefined, tokenHash: TOKEN_HASH, roleChaining: false, now: new Date(0) });
    expect(d.effect === 'deny' && d.reason).toBe('ERR_POLICY_NO_MATCH');
  });

  it('allows a Buildkite tag build bound on its build_tag', () => {
    const { config } = configFor({ preset: 'buildkite' }, { organization_id: 'f892efa9-103e-4d28-97a1-3b8616a0994d', build_tag: { glob: 'v*' } });
    const d = evaluate(config.policy, { issuer: 'ci', claims: { ...fixture('buildkite'), build_tag: 'v1.0.0' }, role: 'deploy', requestedDuration: undefined, tokenHash: TOKEN_HASH, roleChaining: false, now: new Date(0) });
    expect(d.effect).toBe('allow');
  });

  it('denies a GitLab job on an unprotected ref', () => {
    const p = providers.gitlab;
    const { config } = configFor(p.issuer, p.claims);
    const d = evaluate(config.policy, { issuer: 'ci', claims: { ...fixture('gitlab'), ref_protected: 'false' }, role: 'deploy', requestedDuration: undefined, tokenHash: TOKEN_HASH, roleChaining: false, now: new Date(0) });
    expect(d.effect === 'deny' && d.reason).toBe('ERR_POLICY_NO_MATCH');
  });
});
