// Hot reload as an operator does it: edit the file, send SIGHUP (or just save). A bad file is
// rejected with a log line and a metric while the running policy keeps serving.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startIssuer, type TestIssuer } from '../support/oidc-issuer.js';
import { startFakeSts, type FakeSts } from '../support/fake-sts.js';
import { requestCredentials, TEST_AUDIENCE } from '../support/broker.js';
import { providerClaims } from '../support/fixtures.js';
import { startServe, until as poll, type ServeProcess } from '../support/serve-process.js';

let issuer: TestIssuer;
let sts: FakeSts;
let broker: ServeProcess;
let url = '';
const dir = mkdtempSync(path.join(tmpdir(), 'credbroker-reload-'));
const file = path.join(dir, 'credbroker.yaml');

const configText = (repositoryId: string) =>
  [
    'server: { port: 0 }',
    'metrics: { port: 0 }',
    `aws: { sts_endpoint: "${sts.endpoint}", role_chaining: never }`,
    'audit: { sink: file, path: ' + JSON.stringify(path.join(dir, 'audit.jsonl')) + ' }',
    'issuers:',
    `  local: { url: "${issuer.url}", audiences: [${TEST_AUDIENCE}], allow_insecure_http: true }`,
    'roles:',
    '  deploy:',
    '    arn: arn:aws:iam::123456789012:role/credbroker/deploy',
    `    allow: [{ issuer: local, claims: { repository_id: "${repositoryId}" } }]`,
  ].join('\n');

/** Writes the file atomically, as editors and config maps do. */
function replaceConfig(text: string): void {
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

const exchangeFor = async (repositoryId: string) =>
  (await requestCredentials(url, await issuer.sign({ ...providerClaims('github-actions'), aud: TEST_AUDIENCE, repository_id: repositoryId }))).status;

const until = (predicate: () => boolean | Promise<boolean>) => poll(predicate, 10_000, () => broker.stderr());

const reloads = async (outcome: string) => {
  const m = new RegExp(`credbroker_config_reloads_total\\{outcome="${outcome}"\\} (\\d+)`).exec(await (await fetch(broker.metricsUrl!)).text());
  return m ? Number(m[1]) : 0;
};

beforeAll(async () => {
  [issuer, sts] = await Promise.all([startIssuer(), startFakeSts()]);
  writeFileSync(file, configText('111'));
  broker = await startServe(file);
  url = broker.url;
});

afterAll(async () => {
  await broker?.stop();
  await Promise.all([issuer?.close(), sts?.close()]);
});

it('applies a valid change on SIGHUP', async () => {
  expect(await exchangeFor('111')).toBe(200);
  expect(await exchangeFor('222')).toBe(403);
  writeFileSync(file, configText('222'));
  broker.child.kill('SIGHUP');
  await until(async () => (await reloads('applied')) >= 1);
  expect(await exchangeFor('222')).toBe(200);
  expect(await exchangeFor('111')).toBe(403);
});

it('rejects a bad file with a log line and a metric, and keeps the running policy', async () => {
  const rejectedBefore = await reloads('rejected');
  replaceConfig(configText('333').replace('arn:aws:iam::123456789012:role/credbroker/deploy', 'not-an-arn'));
  broker.child.kill('SIGHUP');
  await until(async () => (await reloads('rejected')) > rejectedBefore);
  expect(broker.stderr()).toMatch(/config reload rejected; the running config stays in effect/);
  expect(broker.stderr()).toContain('roles.deploy.arn');
  expect(await exchangeFor('222')).toBe(200);
  expect(await exchangeFor('333')).toBe(403);
});

it('reloads on file change without a signal', async () => {
  const before = await reloads('applied');
  replaceConfig(configText('444'));
  await until(async () => (await reloads('applied')) > before);
  expect(await exchangeFor('444')).toBe(200);
  expect(await exchangeFor('222')).toBe(403);
});

it('says "config unchanged" on SIGHUP when the file has not changed, and applies nothing', async () => {
  await until(async () => (await exchangeFor('444')) === 200);
  const applied = await reloads('applied');
  const seen = () => broker.stderr().split('\n').filter((l) => l.includes('"msg":"config unchanged"'));
  const before = seen().length;
  broker.child.kill('SIGHUP');
  await until(() => seen().length > before);
  expect(JSON.parse(seen().at(-1)!)).toMatchObject({ level: 'info', trigger: 'SIGHUP', file, msg: 'config unchanged' });
  expect(await reloads('applied')).toBe(applied);
  expect(await exchangeFor('444')).toBe(200);
});

it('names trust_proxy as needing a restart: the running listener keeps the proxy trust it started with', async () => {
  const before = await reloads('applied');
  replaceConfig(configText('555').replace('server: { port: 0 }', 'server: { port: 0, trust_proxy: 1 }'));
  await until(async () => (await reloads('applied')) > before);
  expect(broker.stderr()).toMatch(/"needs_restart":\["server\.trust_proxy"\]/);
});
