// Small pieces: sink templates, the in-memory secret wrapper, throttling backoff, the command
// sink's environment, and the shape of audit records.
import { describe, expect, it } from 'vitest';
import { inspect } from 'node:util';
import { expandSinkConfig, expandTemplate } from '../../../server/src/rotation/sinks/template.js';
import { targetAllowed } from '../../../server/src/rotation/sinks/targets.js';
import { SecretValue, scrub } from '../../../server/src/rotation/secret.js';
import { isThrottling, withThrottleBackoff } from '../../../server/src/aws/iam.js';
import { childEnv } from '../../../server/src/rotation/sinks/command.js';
import { sinkIdOf } from '../../../server/src/rotation/sinks/index.js';
import { rotationConfigSchema } from '../../../server/src/rotation/config-schema.js';
import { matchesEntry } from '../../../server/src/rotation/users.js';

const user = { userName: 'ci-app', tags: { 'credbroker:repo': 'acme/app', empty: '' } };

describe('sink templates', () => {
  const travis = (over: Record<string, unknown>) => rotationConfigSchema.parse({ users: [{ tag: { key: 'k' }, sinks: [{ type: 'travis', token_env: 'T', allowed_targets: ['travis:acme/*'], ...over }] }] }).users[0]!.sinks[0]!;
  it('expands {user} and {tag:KEY} in target fields and variable names', () => {
    expect(expandTemplate('{tag:credbroker:repo}-{user}', user, 'p')).toBe('acme/app-ci-app');
    const out = expandSinkConfig(travis({ repo: 'acme/{user}', access_key_id_name: 'ID_{tag:credbroker:repo}' }), user, 'p');
    expect(out).toMatchObject({ repo: 'acme/ci-app', access_key_id_name: 'ID_acme/app' });
  });
  it('refuses a missing or empty tag instead of writing somewhere else', () => {
    expect(() => expandTemplate('{tag:nope}', user, 'rotation.users[0].sinks[0].repo')).toThrow(expect.objectContaining({ code: 'ERR_SINK_TEMPLATE' }));
    expect(() => expandTemplate('{tag:empty}', user, 'p')).toThrow(expect.objectContaining({ code: 'ERR_SINK_TEMPLATE' }));
  });
  it.each([
    { name: 'a slash (another owner or path)', value: 'evil/app' },
    { name: 'a parent segment', value: '..' },
    { name: 'a URL-encoded slash', value: 'a%2Fb' },
    { name: 'a space', value: 'a b' },
  ])('refuses a tag value with $name in a target field', ({ value }) => {
    const sink = travis({ repo: 'acme/{tag:repo}' });
    expect(() => expandSinkConfig(sink, { userName: 'u', tags: { repo: value } }, 'p')).toThrow(expect.objectContaining({ code: 'ERR_SINK_TARGET_NOT_ALLOWED' }));
  });
});

describe('allowed_targets patterns', () => {
  it.each([
    { name: 'matches the exact target', pattern: 'github:repo:acme/app', target: 'github:repo:acme/app', expected: true },
    { name: '* matches within a segment', pattern: 'github:repo:acme/app-*', target: 'github:repo:acme/app-web', expected: true },
    { name: '* does not cross a slash', pattern: 'github:repo:acme/*', target: 'github:repo:acme/x/y', expected: false },
    { name: '* does not cross a colon', pattern: 'github:*', target: 'github:org:acme', expected: false },
    { name: 'is anchored at the start', pattern: 'repo:acme/app', target: 'github:repo:acme/app', expected: false },
    { name: 'is anchored at the end', pattern: 'github:repo:acme/app', target: 'github:repo:acme/app-evil', expected: false },
    { name: 'treats regex characters literally', pattern: 'travis:acme/a.b', target: 'travis:acme/aXb', expected: false },
  ])('$name', ({ pattern, target, expected }) => {
    expect(targetAllowed([pattern], target)).toBe(expected);
  });
});

describe('user entries', () => {
  const cfg = rotationConfigSchema.parse({
    users: [
      { name: 'exact', sinks: [{ type: 'travis', token_env: 'T', repo: 'a/b' }] },
      { tag: { key: 'credbroker:rotate', value: 'true' }, path_prefix: '/ci/', sinks: [{ type: 'travis', token_env: 'T', repo: 'acme/{tag:repo}', allowed_targets: ['travis:acme/*'] }] },
    ],
  });
  const u = (userName: string, path: string, tags: Record<string, string> = {}) => ({ userName, arn: '', path, tags });
  it.each([
    { name: 'matches by exact name', entry: 0, user: u('exact', '/'), expected: true },
    { name: 'does not match a name that only starts the same', entry: 0, user: u('exact-2', '/'), expected: false },
    { name: 'matches by tag under the path', entry: 1, user: u('x', '/ci/team/', { 'credbroker:rotate': 'true' }), expected: true },
    { name: 'does not match the tag outside the path', entry: 1, user: u('x', '/other/', { 'credbroker:rotate': 'true' }), expected: false },
    { name: 'does not match another tag value', entry: 1, user: u('x', '/ci/', { 'credbroker:rotate': 'false' }), expected: false },
  ])('$name', ({ entry, user: iamUser, expected }) => {
    expect(matchesEntry(cfg.users[entry]!, iamUser)).toBe(expected);
  });
});

describe('SecretValue', () => {
  it('cannot be printed, serialised or inspected by accident', () => {
    const s = new SecretValue('wJalrXUtnFEMI-not-a-real-secret');
    const leaks = [JSON.stringify({ s }), String(s), `${s}`, inspect({ s }), inspect(s)];
    for (const l of leaks) expect(l).not.toContain('wJalr');
    expect(s.reveal()).toBe('wJalrXUtnFEMI-not-a-real-secret');
  });
  it('scrub removes the secret from text that echoed it', () => {
    expect(scrub('error: bad value abc123xyz here', [new SecretValue('abc123xyz')])).toBe('error: bad value [REDACTED] here');
  });
});

describe('IAM throttling', () => {
  const throttled = () => Object.assign(new Error('Rate exceeded'), { name: 'Throttling', $metadata: { httpStatusCode: 400 } });
  it('retries throttling with growing waits, then succeeds', async () => {
    const waits: number[] = [];
    let calls = 0;
    const r = await withThrottleBackoff(
      async () => {
        calls++;
        if (calls < 3) throw throttled();
        return 'ok';
      },
      { attempts: 5, baseMs: 100, sleep: async (ms) => void waits.push(ms), random: () => 1 },
    );
    expect(r).toBe('ok');
    expect(waits).toEqual([100, 200]);
  });
  it('does not retry other errors, and gives up after the attempts', async () => {
    let calls = 0;
    await expect(withThrottleBackoff(async () => { calls++; throw new Error('AccessDenied'); }, { attempts: 5, baseMs: 1, sleep: async () => {} })).rejects.toThrow('AccessDenied');
    expect(calls).toBe(1);
    calls = 0;
    await expect(withThrottleBackoff(async () => { calls++; throw throttled(); }, { attempts: 3, baseMs: 1, sleep: async () => {} })).rejects.toThrow();
    expect(calls).toBe(3);
    expect(isThrottling({ name: 'X', $metadata: { httpStatusCode: 429 } })).toBe(true);
  });
});

describe('command sink environment', () => {
  it('passes only the base variables and pass_env, never the broker AWS credentials', () => {
    const env = childEnv({ env: { PATH: '/bin', HOME: '/h', AWS_SECRET_ACCESS_KEY: 'x', AWS_ACCESS_KEY_ID: 'y', VAULT_ADDR: 'v', OTHER: 'o' }, timeoutMs: 1 }, ['VAULT_ADDR']);
    expect(env).toEqual({ PATH: '/bin', HOME: '/h', VAULT_ADDR: 'v' });
  });
});

describe('sink ids', () => {
  const parse = (s: unknown) => rotationConfigSchema.parse({ users: [{ name: 'u', sinks: [s] }] }).users[0]!.sinks[0]!;
  it.each([
    { sink: { type: 'github', token_env: 'T', owner: 'o', repo: 'r' }, id: 'github:repo:o/r' },
    { sink: { type: 'github', token_env: 'T', owner: 'o', repo: 'r', environment: 'prod' }, id: 'github:env:o/r/prod' },
    { sink: { type: 'github', token_env: 'T', org: 'o' }, id: 'github:org:o' },
    { sink: { type: 'gitlab', token_env: 'T', project: 42, environment_scope: 'production' }, id: 'gitlab:42:production' },
    { sink: { type: 'circleci', token_env: 'T', project_slug: 'gh/o/r' }, id: 'circleci:gh/o/r' },
    { sink: { type: 'travis', token_env: 'T', repo: 'o/r', branch: 'main' }, id: 'travis:o/r@main' },
    { sink: { type: 'command', name: 'vault', command: ['/bin/true'] }, id: 'command:vault' },
    { sink: { type: 'travis', token_env: 'T', repo: 'o/r', id: 'legacy' }, id: 'legacy' },
  ])('$id', ({ sink, id }) => {
    expect(sinkIdOf(parse(sink))).toBe(id);
  });
});
