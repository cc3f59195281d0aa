// Each sink under a push fence: nothing is written after the push's deadline. A command sink's
// process group is killed at the deadline and when the push ends; an HTTP sink starts no request
// after the deadline and aborts the one in flight at it (stand-in: a server that never answers).
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createSink } from '../../../server/src/rotation/sinks/index.js';
import { rotationConfigSchema, type SinkConfig } from '../../../server/src/rotation/config-schema.js';
import { SecretValue } from '../../../server/src/rotation/secret.js';
import { startHungEndpoint, type HungEndpoint } from '../../support/hung-endpoint.js';
import { startCircleciApi, type CircleciApi } from '../../support/ci-apis/index.js';

let dir: string;
let hung: HungEndpoint;
let circleci: CircleciApi;
beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'credbroker-fence-'));
  [hung, circleci] = await Promise.all([startHungEndpoint(), startCircleciApi()]);
});
afterAll(async () => {
  await Promise.all([hung?.close(), circleci?.close()]);
  rmSync(dir, { recursive: true, force: true });
});

const key = { userName: 'u', accessKeyId: `AKIA${randomBytes(8).toString('hex').toUpperCase()}`, secretAccessKey: new SecretValue(randomBytes(20).toString('hex')), createdAt: new Date() };
const env = { PATH: process.env.PATH, CIRCLE_TOKEN: 'x', GH_TOKEN: 'x', GL_TOKEN: 'x' };
const sinkOf = (raw: Record<string, unknown>, timeoutMs = 5000) =>
  createSink(rotationConfigSchema.parse({ users: [{ name: 'u', sinks: [raw] }] }).users[0]!.sinks[0]! as SinkConfig, { env: { ...env, CIRCLE_TOKEN: circleci.token }, timeoutMs });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A program that writes `out` after `delayMs`; with `orphan`, it leaves that write to a child and exits 0 at once. */
function program(name: string, delayMs: number, orphan = false): { cmd: string[]; out: string } {
  const out = path.join(dir, `${name}.out`);
  const file = path.join(dir, `${name}.mjs`);
  const write = `setTimeout(() => require('node:fs').writeFileSync(${JSON.stringify(out)}, 'written'), ${delayMs})`;
  writeFileSync(
    file,
    orphan
      ? `import { spawn } from 'node:child_process';
process.stdin.resume();
process.stdin.on('end', () => { spawn(process.execPath, ['-e', ${JSON.stringify(write)}], { stdio: 'ignore' }).unref(); process.exit(0); });`
      : `import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
process.stdin.resume();
process.stdin.on('end', () => { ${write}; });`,
  );
  return { cmd: [process.execPath, file], out };
}

describe('command sink', () => {
  it('is killed at the push deadline, and what it started does not write later', async () => {
    const p = program('slow', 1500);
    const sink = sinkOf({ type: 'command', name: 'slow', command: p.cmd, timeout_seconds: 60 });
    const started = Date.now();
    const err = await sink.deliver(key, { deadline: Date.now() + 400 }).catch((x: unknown) => x);
    expect(err).toMatchObject({ code: 'ERR_SINK_DEADLINE', retryable: true });
    expect(Date.now() - started).toBeLessThan(1400);
    await sleep(1600);
    expect(existsSync(p.out)).toBe(false);
  });

  it('what the program leaves running in its process group is killed when the push ends', async () => {
    const p = program('orphan', 700, true);
    const sink = sinkOf({ type: 'command', name: 'orphan', command: p.cmd });
    await sink.deliver(key, { deadline: Date.now() + 10_000 });
    await sleep(1200);
    expect(existsSync(p.out)).toBe(false);
  });

  it('timeout_seconds stops a program that hangs, with its own code', async () => {
    const p = program('hangs', 5000);
    const sink = sinkOf({ type: 'command', name: 'hangs', command: p.cmd, timeout_seconds: 1 });
    const err = await sink.deliver(key).catch((x: unknown) => x);
    expect(err).toMatchObject({ code: 'ERR_SINK_COMMAND', retryable: true, message: 'sink command:hangs: ' + p.cmd[0] + ' did not finish within timeout_seconds (1s)' });
  });

  it('a program that cannot be run fails at once, not retried, without the secret', async () => {
    const sink = sinkOf({ type: 'command', name: 'missing', command: [path.join(dir, 'no-such-program')] });
    const err = await sink.deliver(key, { deadline: Date.now() + 10_000 }).catch((x: unknown) => x);
    expect(err).toMatchObject({ code: 'ERR_SINK_COMMAND', retryable: false });
    expect((err as Error).message).toContain('(ENOENT)');
    expect((err as Error).message).not.toContain('fence-test-not-a-real-secret');
  });

  it('is killed when the run stops (the push is aborted)', async () => {
    const p = program('aborted', 1500);
    const sink = sinkOf({ type: 'command', name: 'aborted', command: p.cmd });
    const stop = new AbortController();
    setTimeout(() => stop.abort(), 300);
    const err = await sink.deliver(key, { signal: stop.signal, deadline: Date.now() + 10_000 }).catch((x: unknown) => x);
    expect(err).toMatchObject({ code: 'ERR_ROTATION_ABORTED' });
    await sleep(1600);
    expect(existsSync(p.out)).toBe(false);
  });
});

describe('HTTP sinks', () => {
  it('start no request once the push deadline has passed', async () => {
    const sink = sinkOf({ type: 'circleci', token_env: 'CIRCLE_TOKEN', base_url: `${circleci.url}/api/v2`, project_slug: 'gh/acme/late' });
    const before = circleci.log.length;
    const err = await sink.deliver(key, { deadline: Date.now() - 1 }).catch((x: unknown) => x);
    expect(err).toMatchObject({ code: 'ERR_SINK_DEADLINE' });
    expect(circleci.log.length).toBe(before);
  });

  it.each([
    { type: 'circleci', raw: { type: 'circleci', token_env: 'CIRCLE_TOKEN', project_slug: 'gh/acme/app' }, api: '/api/v2' },
    { type: 'github', raw: { type: 'github', token_env: 'GH_TOKEN', owner: 'acme', repo: 'app' }, api: '' },
    { type: 'gitlab', raw: { type: 'gitlab', token_env: 'GL_TOKEN', project: 'acme/app' }, api: '' },
    { type: 'travis', raw: { type: 'travis', token_env: 'TRAVIS_TOKEN', repo: 'acme/app' }, api: '' },
  ])('$type aborts the request in flight at the deadline, and sends nothing after it', async ({ raw, api }) => {
    const sink = createSink(rotationConfigSchema.parse({ users: [{ name: 'u', sinks: [{ ...raw, base_url: `${hung.endpoint}${api}` }] }] }).users[0]!.sinks[0]!, {
      env: { ...env, TRAVIS_TOKEN: 'x' },
      timeoutMs: 10_000,
    });
    const before = hung.requests.length;
    const started = Date.now();
    const err = await sink.deliver(key, { deadline: Date.now() + 300 }).catch((x: unknown) => x);
    expect(err).toMatchObject({ code: 'ERR_SINK_DEADLINE', retryable: true });
    expect(Date.now() - started).toBeLessThan(1500);
    await sleep(200);
    expect(hung.requests.length - before).toBe(1);
  });

  it('GitHub requests time out on their own (sink_timeout_ms), without a deadline', async () => {
    const sink = createSink(rotationConfigSchema.parse({ users: [{ name: 'u', sinks: [{ type: 'github', token_env: 'GH_TOKEN', owner: 'acme', repo: 'app', base_url: hung.endpoint }] }] }).users[0]!.sinks[0]!, {
      env,
      timeoutMs: 300,
    });
    const started = Date.now();
    const err = await Promise.race([sink.deliver(key).catch((x: unknown) => x), sleep(5000).then(() => new Error('still waiting after 5 s'))]);
    expect(err).toMatchObject({ code: 'ERR_SINK_NETWORK', retryable: true });
    expect(Date.now() - started).toBeLessThan(2000);
  });
});
