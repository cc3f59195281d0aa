// Lint warnings at load: valid but risky policies, from the providers' docs and public incidents.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../server/src/config/load.js';
import type { Problem } from '../../server/src/core/problems.js';

const AUD = ['https://credbroker.example.com'];

function warningsOf(issuer: Record<string, unknown>, claims: Record<string, unknown>): Problem[] {
  return parseConfig(
    JSON.stringify({
      issuers: { ci: { audiences: AUD, ...issuer } },
      roles: { deploy: { arn: 'arn:aws:iam::111122223333:role/deploy', allow: [{ issuer: 'ci', claims }] } },
    }),
  ).warnings;
}

const B = 'roles.deploy.allow[0]';
const MUTABLE = (names: string, suggest: string) => new RegExp(`^binds on mutable name\\(s\\) ${names} only; .* bind on ${suggest}$`);
const SHARED = (preset: string) => new RegExp(`^shared issuer \\(${preset}\\): pin the organization`);
const GITLAB = /^GitLab binding without ref_protected/;
const NO_EXACT = /^no exact-match condition/;
const ANY = /^pattern matches any value$/;
const WILD_SUB = /^wildcard subject match/;

type Case = [name: string, issuer: Record<string, unknown>, claims: Record<string, unknown>, expected: Array<[path: string, message: RegExp]>];

const gh = { preset: 'github-actions' };
const gl = { preset: 'gitlab' };
const bk = { preset: 'buildkite' };
const generic = { url: 'https://issuer.example.com' };

describe('lint warnings', () => {
  const cases: Case[] = [
    ['warns on a GitHub binding on the repository name without repository_id', gh, { repository: 'octo-org/octo-repo' }, [
      [B, MUTABLE('repository', 'repository_id')],
      [B, SHARED('github-actions')],
    ]],
    ['warns on a GitHub binding on the owner name and actor name', gh, { repository_owner: 'octo-org', actor: 'octocat' }, [
      [B, MUTABLE('repository_owner, actor', 'repository_owner_id, actor_id')],
      [B, SHARED('github-actions')],
    ]],
    ['warns on a GitHub binding pinned by a glob on the repository_id only', gh, { repository_id: { glob: '4879*' }, repository: 'octo-org/octo-repo' }, [
      [B, MUTABLE('repository', 'repository_id')],
      [B, SHARED('github-actions')],
    ]],
    ['warns on a GitHub binding without an organization pin', gh, { actor_id: '583231' }, [[B, SHARED('github-actions')]]],
    ['does not warn on a GitHub binding pinned by repository_id', gh, { repository_id: '487920697', ref: 'refs/heads/main' }, []],
    ['does not warn on a GitHub binding pinned by owner id with a name', gh, { repository_owner_id: '9919', repository: 'octo-org/octo-repo' }, []],
    ['warns on a wildcard-only subject match', generic, { sub: { glob: 'repo:octo-org/*' } }, [
      [B, NO_EXACT],
      [`${B}.claims.sub`, WILD_SUB],
    ]],
    ['warns on a match-anything subject pattern', generic, { sub: { glob: '**' } }, [
      [B, NO_EXACT],
      [`${B}.claims.sub`, ANY],
      [`${B}.claims.sub`, WILD_SUB],
    ]],
    ['warns on a match-anything pattern for any claim', generic, { project: 'p1', ref: { glob: '*' } }, [[`${B}.claims.ref`, ANY]]],
    ['warns on a binding decided by presence only', generic, { sub: { present: true } }, [[B, NO_EXACT]]],
    ['does not warn on a subject glob next to an exact pin', generic, { project: 'p1', sub: { glob: 'repo:octo-org/app:*' } }, []],
    ['warns on a wildcard GitHub subject with all the risks', gh, { sub: { glob: 'repo:octo-org/*' } }, [
      [B, NO_EXACT],
      [`${B}.claims.sub`, WILD_SUB],
      [B, MUTABLE('sub', 'repository_id')],
      [B, SHARED('github-actions')],
    ]],
    ['warns on a GitLab binding without ref_protected', gl, { project_id: '20' }, [[B, GITLAB]]],
    ['warns on a GitLab binding with ref_protected only as presence', gl, { project_id: '20', ref_protected: { present: true } }, [[B, GITLAB]]],
    ['does not warn on a GitLab binding with ref_protected "true"', gl, { project_id: '20', ref_protected: 'true' }, []],
    ['warns on a GitLab binding on the project path', gl, { project_path: 'my-group/my-project', ref_protected: 'true' }, [[B, MUTABLE('project_path', 'project_id')]]],
    ['warns on a Buildkite binding without the organization id', bk, { pipeline_id: '0184990a-4782-42b5-afc1-16715b10b1a0' }, [[B, SHARED('buildkite')]]],
    ['warns on a Buildkite binding on slugs', bk, { organization_slug: 'acme-inc', pipeline_slug: 'app' }, [
      [B, MUTABLE('organization_slug, pipeline_slug', 'organization_id, pipeline_id')],
      [B, SHARED('buildkite')],
    ]],
    ['does not warn on a Buildkite binding with the organization id', bk, { organization_id: 'f892efa9-103e-4d28-97a1-3b8616a0994d', pipeline_slug: 'app' }, []],
  ];
  it.each(cases)('%s', (_name, issuer, claims, expected) => {
    const warnings = warningsOf(issuer, claims);
    expect(warnings).toHaveLength(expected.length);
    for (const [path, message] of expected) {
      expect(warnings).toContainEqual({ path, message: expect.stringMatching(message) });
    }
  });

  it('warns on GitHub\'s default audience https://github.com/<owner>', () => {
    const { warnings } = parseConfig(
      JSON.stringify({
        issuers: { gh: { preset: 'github-actions', audiences: ['https://credbroker.example.com', 'https://github.com/octo-org'] } },
        roles: { deploy: { arn: 'arn:aws:iam::111122223333:role/deploy', allow: [{ issuer: 'gh', claims: { repository_id: '1' } }] } },
      }),
    );
    expect(warnings).toEqual([{ path: 'issuers.gh.audiences[1]', message: expect.stringMatching(/default audience/) }]);
  });

  it('warns on the default audience of a GitHub Enterprise Server host', () => {
    const { warnings } = parseConfig(
      JSON.stringify({
        issuers: { ghes: { preset: 'github-actions', host: 'ghe.example.com', audiences: ['https://ghe.example.com/octo-org'] } },
        roles: { deploy: { arn: 'arn:aws:iam::111122223333:role/deploy', allow: [{ issuer: 'ghes', claims: { repository_id: '1' } }] } },
      }),
    );
    expect(warnings).toEqual([{ path: 'issuers.ghes.audiences[0]', message: expect.stringMatching(/default audience/) }]);
  });

  it('does not warn on a github.com audience for other providers', () => {
    expect(warningsOf({ preset: 'gitlab', audiences: ['https://github.com/octo-org'] }, { project_id: '20', ref_protected: 'true' })).toEqual([]);
  });

  it('finds no warnings in config/example.yaml', () => {
    const text = readFileSync(fileURLToPath(new URL('../../config/example.yaml', import.meta.url)), 'utf8');
    const { config, warnings } = parseConfig(text, 'config/example.yaml');
    expect(warnings).toEqual([]);
    expect([...config.policy.roles.keys()]).toEqual(['deploy-production', 'read-only']);
  });
});

describe('lint: deny rules whose types cannot be confirmed', () => {
  const denyWarnings = (issuers: Record<string, unknown>, deny: Array<Record<string, unknown>>, roleDeny: Array<Record<string, unknown>> = []) =>
    parseConfig(
      JSON.stringify({
        issuers,
        roles: {
          deploy: {
            arn: 'arn:aws:iam::111122223333:role/deploy',
            allow: Object.keys(issuers).map((id) => ({ issuer: id, claims: { project: 'p1' } })),
            deny: roleDeny,
          },
        },
        deny,
      }),
    ).warnings.filter((w) => /deny rule also matches its text form/.test(w.message));
  const generic = { p: { url: 'https://p.example.com', audiences: AUD } };

  const cases: Array<[string, Record<string, unknown>, Array<Record<string, unknown>>, Array<Record<string, unknown>>, string[]]> = [
    ['flags a boolean in a deny rule with an issuer that has no preset', generic, [], [{ issuer: 'p', claims: { emergency_freeze: true } }], ['roles.deploy.deny[0].claims.emergency_freeze']],
    ['flags a boolean in an issuer-less deny rule', generic, [{ claims: { emergency_freeze: true } }], [], ['deny[0].claims.emergency_freeze']],
    ['flags a number on a custom GitLab claim', { gl: { preset: 'gitlab', audiences: AUD } }, [{ issuer: 'gl', claims: { freeze_level: 2 } }], [], ['deny[0].claims.freeze_level']],
    ['flags a value in contains', generic, [{ issuer: 'p', claims: { groups: { contains: 7 } } }], [], ['deny[0].claims.groups']],
    ['does not flag a string value', generic, [{ issuer: 'p', claims: { emergency_freeze: 'true' } }], [], []],
    ['does not flag a number the preset types as a number', { gl: { preset: 'gitlab', audiences: AUD } }, [{ issuer: 'gl', claims: { runner_id: 7 } }], [], []],
    ['does not flag GitHub, which sends strings (true becomes "true")', { gh: { preset: 'github-actions', audiences: AUD } }, [{ issuer: 'gh', claims: { ref_protected: false } }], [], []],
  ];
  it.each(cases)('%s', (_name, issuers, deny, roleDeny, paths) => {
    expect(denyWarnings(issuers, deny, roleDeny).map((w) => w.path)).toEqual(paths);
  });
});

describe('lint: session tags from mutable names', () => {
  const tagWarnings = (tags: Record<string, string> | undefined) =>
    parseConfig(
      JSON.stringify({
        issuers: { gh: { preset: 'github-actions', audiences: AUD } },
        roles: { deploy: { arn: 'arn:aws:iam::111122223333:role/deploy', ...(tags ? { tags } : {}), allow: [{ issuer: 'gh', claims: { repository_id: '1' } }] } },
      }),
    ).warnings.filter((w) => w.path.startsWith('roles.deploy.tags'));

  it('flags a configured tag filled from the repository name', () => {
    expect(tagWarnings({ repo: '{repository}', ref: '{ref}' })).toEqual([
      { path: 'roles.deploy.tags.repo', message: expect.stringMatching(/mutable name\(s\) repository .* aws:PrincipalTag\/repo .* tag repository_id/) },
    ]);
  });

  it('does not flag a tag filled from an immutable id, nor the preset defaults', () => {
    expect(tagWarnings({ repository_id: '{repository_id}' })).toEqual([]);
    expect(tagWarnings(undefined)).toEqual([]);
  });
});

describe('lint: claims no token of the issuer carries', () => {
  const UNKNOWN = (claim: string, providers: string, guess?: string) =>
    new RegExp(`^no ${providers} token is known to carry the claim "${claim}"${guess ? ` \\(did you mean "${guess}"\\?\\)` : ''}: this binding never matches$`);
  const cases: Case[] = [
    ['names a misspelt GitHub claim and the one meant', gh, { repository_id: '1', enviroment: 'production' }, [[`${B}.claims.enviroment`, UNKNOWN('enviroment', 'github-actions', 'environment')]]],
    ['suggests the full name for an abbreviation', gh, { repository_owner_id: '9919', repo_id: '1' }, [[`${B}.claims.repo_id`, UNKNOWN('repo_id', 'github-actions', 'repository_id')]]],
    ['names an unknown claim without a guess when none is close', gl, { project_id: '20', ref_protected: 'true', colour: 'blue' }, [[`${B}.claims.colour`, UNKNOWN('colour', 'gitlab')]]],
    ['knows Buildkite\'s agent_tag:* optional claims', bk, { organization_id: 'f892efa9', 'agent_tag:queue': 'deploy' }, []],
    ['does not judge an issuer without a preset', generic, { project: 'p1', anything_at_all: 'x' }, []],
    ['does not judge Jenkins, whose claims each installation chooses', { preset: 'jenkins', url: 'https://jenkins.example.com/oidc' }, { sub: 'job', my_claim: 'x' }, []],
    ['does not warn on "must be absent" for an unknown claim', gh, { repository_id: '1', repository_owner_id: '9919', legacy_flag: { present: false } }, []],
  ];
  it.each(cases)('%s', (_name, issuer, claims, expected) => {
    const warnings = warningsOf(issuer, claims).filter((w) => / token is known to carry /.test(w.message));
    expect(warnings).toHaveLength(expected.length);
    for (const [path, message] of expected) expect(warnings).toContainEqual({ path, message: expect.stringMatching(message) });
  });

  it('warns that a deny rule on an unknown claim never denies (it fails open)', () => {
    const { warnings } = parseConfig(
      JSON.stringify({
        issuers: { gh: { preset: 'github-actions', audiences: AUD }, gl: { preset: 'gitlab', audiences: AUD } },
        roles: { deploy: { arn: 'arn:aws:iam::111122223333:role/deploy', allow: [{ issuer: 'gh', claims: { repository_id: '1', repository_owner_id: '9919' } }] } },
        deny: [{ claims: { event: 'pull_request_target' } }, { claims: { runner_environment: 'self-hosted' } }],
      }),
    );
    expect(warnings.filter((w) => / token is known to carry /.test(w.message))).toEqual([
      { path: 'deny[0].claims.event', message: 'no github-actions, gitlab token is known to carry the claim "event" (did you mean "event_name"?): this deny rule never denies' },
    ]);
  });
});
