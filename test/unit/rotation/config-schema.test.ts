// The rotation section of the config: defaults, sink shapes, and what is rejected.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { rotationConfigSchema } from '../../../server/src/rotation/config-schema.js';
import { configSchema } from '../../../server/src/config/schema.js';

const travis = { type: 'travis', token_env: 'TRAVIS_TOKEN', repo: 'acme/app' };
const parse = (rotation: unknown) => rotationConfigSchema.safeParse(rotation);
const paths = (r: ReturnType<typeof parse>) => (r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));

describe('rotation config', () => {
  it('fills safe defaults', () => {
    const r = rotationConfigSchema.parse({ users: [{ name: 'ci-deployer', sinks: [travis] }] });
    expect(r).toMatchObject({ enabled: true, interval_seconds: 3600, concurrency: 2, max_key_age_seconds: 30 * 86_400, grace_period_seconds: 7 * 86_400 });
    expect(r.verify).toMatchObject({ successes: 3 });
    expect(r.users[0]).toMatchObject({ path_prefix: '/', sinks: [{ base_url: 'https://api.travis-ci.com', access_key_id_name: 'AWS_ACCESS_KEY_ID', secret_access_key_name: 'AWS_SECRET_ACCESS_KEY' }] });
  });

  it('is the top-level rotation: key of the broker config', () => {
    const r = configSchema.parse({ issuers: {}, roles: {}, rotation: { users: [{ tag: { key: 'credbroker:rotate', value: 'true' }, path_prefix: '/ci/', sinks: [travis] }] } });
    expect(r.rotation?.users[0]?.tag).toEqual({ key: 'credbroker:rotate', value: 'true' });
  });

  const rejected: Array<{ name: string; rotation: unknown; path: string }> = [
    { name: 'a token written in the file instead of an env var name', rotation: { users: [{ name: 'u', sinks: [{ ...travis, token_env: 'ghp_abc-123!' }] }] }, path: 'users.0.sinks.0.token_env' },
    { name: 'a token pasted where the variable name goes', rotation: { users: [{ name: 'u', sinks: [{ ...travis, token_env: 'ghp_16C7e42F292c6912E7710c838347Ae178B4a' }] }] }, path: 'users.0.sinks.0.token_env' },
    { name: 'a literal token field', rotation: { users: [{ name: 'u', sinks: [{ ...travis, token: 'x' }] }] }, path: 'users.0.sinks.0' },
    { name: 'both name and tag', rotation: { users: [{ name: 'u', tag: { key: 'k' }, sinks: [travis] }] }, path: 'users.0' },
    { name: 'neither name nor tag', rotation: { users: [{ sinks: [travis] }] }, path: 'users.0' },
    { name: 'a user without sinks', rotation: { users: [{ name: 'u', sinks: [] }] }, path: 'users.0.sinks' },
    { name: 'a GitHub sink with org and repo', rotation: { users: [{ name: 'u', sinks: [{ type: 'github', token_env: 'T', org: 'o', owner: 'o', repo: 'r' }] }] }, path: 'users.0.sinks.0' },
    { name: 'a GitHub repo sink without owner', rotation: { users: [{ name: 'u', sinks: [{ type: 'github', token_env: 'T', repo: 'r' }] }] }, path: 'users.0.sinks.0' },
    { name: 'a CircleCI slug without vcs', rotation: { users: [{ name: 'u', sinks: [{ type: 'circleci', token_env: 'T', project_slug: 'acme/app' }] }] }, path: 'users.0.sinks.0.project_slug' },
    { name: 'a command sink without a program', rotation: { users: [{ name: 'u', sinks: [{ type: 'command', name: 'x', command: [] }] }] }, path: 'users.0.sinks.0.command' },
    { name: 'a max key age under an hour', rotation: { max_key_age_seconds: 60, users: [{ name: 'u', sinks: [travis] }] }, path: 'max_key_age_seconds' },
    { name: 'an IAM path without slashes', rotation: { users: [{ tag: { key: 'k' }, path_prefix: 'ci', sinks: [travis] }] }, path: 'users.0.path_prefix' },
    // IAM tags must not choose where a key goes.
    { name: 'a tag choosing the repository without allowed_targets', rotation: { users: [{ tag: { key: 'k' }, sinks: [{ ...travis, repo: 'acme/{tag:repo}' }] }] }, path: 'users.0.sinks.0.repo' },
    { name: 'a tag choosing the owner, even in a name entry', rotation: { users: [{ name: 'u', sinks: [{ type: 'github', token_env: 'T', owner: '{tag:owner}', repo: 'app' }] }] }, path: 'users.0.sinks.0.owner' },
    { name: 'a tag choosing the GitHub environment', rotation: { users: [{ name: 'u', sinks: [{ type: 'github', token_env: 'T', owner: 'acme', repo: 'app', environment: '{tag:env}' }] }] }, path: 'users.0.sinks.0.environment' },
    { name: 'the IAM user name choosing the project in a tag entry', rotation: { users: [{ tag: { key: 'k' }, sinks: [{ type: 'gitlab', token_env: 'T', project: 'acme/{user}' }] }] }, path: 'users.0.sinks.0.project' },
    { name: 'a tag choosing the CircleCI project', rotation: { users: [{ tag: { key: 'k' }, sinks: [{ type: 'circleci', token_env: 'T', project_slug: 'gh/acme/{tag:repo}' }] }] }, path: 'users.0.sinks.0.project_slug' },
    { name: 'a tag choosing the Travis branch', rotation: { users: [{ tag: { key: 'k' }, sinks: [{ ...travis, branch: '{tag:branch}' }] }] }, path: 'users.0.sinks.0.branch' },
    { name: 'a tag in a command argument', rotation: { users: [{ tag: { key: 'k' }, sinks: [{ type: 'command', name: 'x', command: ['/bin/store', '--output={tag:path}'] }] }] }, path: 'users.0.sinks.0.command.1' },
    { name: 'the user name in a command argument', rotation: { users: [{ name: 'u', sinks: [{ type: 'command', name: 'x', command: ['/bin/store', '{user}'] }] }] }, path: 'users.0.sinks.0.command.1' },
    { name: 'a tag in base_url', rotation: { users: [{ name: 'u', sinks: [{ ...travis, base_url: 'https://{tag:host}/' }] }] }, path: 'users.0.sinks.0.base_url' },
    { name: 'a template in an allowed_targets pattern', rotation: { users: [{ name: 'u', sinks: [{ ...travis, allowed_targets: ['travis:{tag:x}'] }] }] }, path: 'users.0.sinks.0.allowed_targets.0' },
    // Sink API base URLs: https, plain http only on loopback.
    { name: 'a plain-http base_url to a remote host', rotation: { users: [{ name: 'u', sinks: [{ ...travis, base_url: 'http://travis.example.com' }] }] }, path: 'users.0.sinks.0.base_url' },
    { name: 'a plain-http base_url to a host that only starts like loopback', rotation: { users: [{ name: 'u', sinks: [{ type: 'gitlab', token_env: 'T', project: 1, base_url: 'http://127.0.0.1.attacker.example' }] }] }, path: 'users.0.sinks.0.base_url' },
    { name: 'a base_url with userinfo', rotation: { users: [{ name: 'u', sinks: [{ type: 'github', token_env: 'T', org: 'o', base_url: 'https://user:pw@ghe.example.com/api/v3' }] }] }, path: 'users.0.sinks.0.base_url' },
    { name: 'a base_url that is not a URL', rotation: { users: [{ name: 'u', sinks: [{ type: 'circleci', token_env: 'T', project_slug: 'gh/o/r', base_url: 'circleci.com' }] }] }, path: 'users.0.sinks.0.base_url' },
  ];

  it.each(rejected)('rejects $name', ({ rotation, path }) => {
    const r = parse(rotation);
    expect(r.success).toBe(false);
    // Problems name the path, never echo the value.
    expect(JSON.stringify(r.error?.issues.map((i) => i.message))).not.toContain('ghp_');
    expect(paths(r).some((p) => p.startsWith(`${path}:`) || p.startsWith(`${path}.`))).toBe(true);
  });

  const accepted: Array<{ name: string; sink: Record<string, unknown>; entry?: Record<string, unknown> }> = [
    { name: 'https base_url', sink: { ...travis, base_url: 'https://travis.example.com' } },
    { name: 'plain http to 127.0.0.1', sink: { ...travis, base_url: 'http://127.0.0.1:8080' } },
    { name: 'plain http to localhost', sink: { ...travis, base_url: 'http://localhost:8080/' } },
    { name: 'plain http to [::1]', sink: { ...travis, base_url: 'http://[::1]:8080' } },
    { name: 'the configured user name in a name entry target', sink: { ...travis, repo: 'acme/{user}' } },
    { name: 'a tag choosing the repository with allowed_targets', sink: { ...travis, repo: 'acme/{tag:repo}', allowed_targets: ['travis:acme/app-*'] }, entry: { tag: { key: 'k' } } },
    { name: 'a tag in a variable name (not a target)', sink: { ...travis, access_key_id_name: 'AWS_ACCESS_KEY_ID_{tag:suffix}' }, entry: { tag: { key: 'k' } } },
  ];
  it.each(accepted)('accepts $name', ({ sink, entry }) => {
    const r = parse({ users: [{ ...(entry ?? { name: 'u' }), sinks: [sink] }] });
    expect(paths(r)).toEqual([]);
  });
});

describe('the example in docs/rotation.md', () => {
  it('is a valid rotation section, allowlists included', () => {
    const page = readFileSync(new URL('../../../docs/rotation.md', import.meta.url), 'utf8');
    const yaml = [...page.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!).find((b) => /^rotation:/m.test(b))!;
    const r = parse((parseYaml(yaml) as { rotation: unknown }).rotation);
    expect(paths(r)).toEqual([]);
  });
});
