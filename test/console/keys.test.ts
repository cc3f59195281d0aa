// The static-keys page and its actions in dev mode (the dev login), against moto: key ages as the
// broker computes them from IAM's creation dates (the inventory's clock set 95 days ahead, as the
// page would look then), a dry run that changes nothing, and a rotation started from the console
// that really replaces the key in IAM and is audited with the person's identity.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { IAMClient, CreateAccessKeyCommand, CreateUserCommand, ListAccessKeysCommand } from '@aws-sdk/client-iam';
import { createIamKeys } from '../../server/src/aws/iam.js';
import { consoleKeys } from '../../server/src/console/keys.js';
import { rotationConfigSchema } from '../../server/src/rotation/config-schema.js';
import { SqliteStore } from '../../server/src/store/sqlite.js';
import { hashAdminToken } from '../../server/src/admin/auth.js';
import { startMoto, type Moto } from '../support/moto.js';
import { startIssuer, type TestIssuer } from '../support/oidc-issuer.js';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { Agent } from './agent.js';

const DAY = 86_400_000;
let moto: Moto;
let issuer: TestIssuer;
let tb: TestBroker;
let iamAdmin: IAMClient;
let consoleUrl: string;
let inventoryOffsetMs = 95 * DAY;
const dir = mkdtempSync(path.join(tmpdir(), 'credbroker-console-keys-'));
const store = SqliteStore.open(path.join(dir, 'store.sqlite'));
const original: Record<string, string> = {};

beforeAll(async () => {
  [moto, issuer] = await Promise.all([startMoto(), startIssuer()]);
  iamAdmin = new IAMClient({ region: 'us-east-1', endpoint: moto.endpoint, credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'x' } });
  for (const user of ['ci-deployer', 'old-bot']) {
    await iamAdmin.send(new CreateUserCommand({ UserName: user, Path: '/ci/' }));
    original[user] = (await iamAdmin.send(new CreateAccessKeyCommand({ UserName: user }))).AccessKey!.AccessKeyId!;
  }
  const rotation = rotationConfigSchema.parse({
    enabled: false,
    grace_period_seconds: 0,
    verify: { successes: 1, initial_backoff_ms: 0, max_backoff_ms: 0 },
    users: [{ name: 'ci-deployer', path_prefix: '/ci/', sinks: [{ type: 'command', name: 'ci', command: ['/bin/sh', '-c', 'cat > /dev/null'] }] }],
  });
  process.env.CREDBROKER_CONSOLE_KEYS_TEST_AUDIT_KEY = randomBytes(32).toString('base64');
  const iam = createIamKeys({ region: 'us-east-1', iamEndpoint: moto.endpoint, stsEndpoint: moto.endpoint, credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'x' } });
  tb = await startTestBroker({
    moto,
    issuer,
    config: {
      audit: { sink: 'store', hmac_key_env: 'CREDBROKER_CONSOLE_KEYS_TEST_AUDIT_KEY' },
      admin: { enabled: true, tokens: [{ name: 'x', sha256: hashAdminToken('unused-token-for-this-test') }] },
    },
    brokerOptions: {
      ops: store,
      console: {
        devLogin: true,
        keys: consoleKeys({
          config: rotation,
          store,
          iam: async () => iam,
          runtime: () => ({ audit: tb.broker.audit, logger: tb.broker.logger, registry: tb.broker.metrics.registry }),
          now: () => new Date(Date.now() + inventoryOffsetMs),
        }),
      },
    },
  });
  consoleUrl = (await tb.broker.listenAdmin(0, '127.0.0.1')).url;
});
afterAll(async () => {
  await tb?.close();
  await store.close();
  iamAdmin?.destroy();
  await Promise.all([moto?.stop(), issuer?.close()]);
  rmSync(dir, { recursive: true, force: true });
});

async function devLogin(role: 'operator' | 'viewer'): Promise<Agent> {
  const a = new Agent();
  const page = await a.get(`${consoleUrl}/console/login`);
  expect(page.text).toContain('Dev login');
  const r = await a.request('POST', `${consoleUrl}/console/auth/dev`, { form: { _csrf: Agent.input(page.text, '_csrf')!, role, next: '/console/keys' } });
  expect(r.status).toBe(303);
  // Plain http on loopback in dev mode: not Secure, so no __Host- prefix either.
  expect(r.setCookies.find((c) => c.startsWith('credbroker-console='))).toMatch(/HttpOnly; SameSite=Strict$/);
  return a;
}


describe('static keys in the console (dev mode)', () => {
  it('the dev login refuses a form without its pre-login token', async () => {
    const a = new Agent();
    const r = await a.request('POST', `${consoleUrl}/console/auth/dev`, { form: { role: 'operator' } });
    expect(r.status).toBe(403);
  });

  it('shows each key with its age, in the histogram too, and the users no rotation manages', async () => {
    const a = await devLogin('viewer');
    const page = await a.get(`${consoleUrl}/console/keys`);
    expect(page.status).toBe(200);
    expect(page.text).toContain('DEV MODE');
    const row = (user: string) => new RegExp(`<td[^>]*>${user}</td>.*?${original[user]}.*?<strong class="key-age">95 days</strong>`, 's');
    expect(page.text).toMatch(row('ci-deployer'));
    expect(page.text).toMatch(row('old-bot'));
    expect(page.text).toContain('2 active keys: &lt; 30 d: 0, 30–60 d: 0, 60–90 d: 0, 90–180 d: 2, 180 d +: 0');
    expect(page.text).toContain('data-counts="[0,0,0,2,0]"');
    // A viewer gets no action links.
    expect(page.text).not.toContain('/rotate?mode=');
  });

  it('runs a dry run for one user: the plan is shown, nothing changes', async () => {
    const a = await devLogin('operator');
    const confirm = await a.get(`${consoleUrl}/console/keys/ci-deployer/rotate?mode=dry-run`);
    expect(confirm.status).toBe(200);
    const r = await a.request('POST', `${consoleUrl}/console/keys/ci-deployer/rotate`, { form: { _csrf: Agent.input(confirm.text, '_csrf')!, mode: 'dry-run' } });
    expect(r.status).toBe(200);
    expect(r.text).toContain('Dry run: nothing was changed.');
    expect(r.text).toMatch(/next action <strong>(start|create)<\/strong>/);
    const keys = (await iamAdmin.send(new ListAccessKeysCommand({ UserName: 'ci-deployer' }))).AccessKeyMetadata!;
    expect(keys.map((k) => k.AccessKeyId)).toEqual([original['ci-deployer']]);
  });

  it('rotates one user from the console: the old key is replaced in IAM, and the run is audited with who started it', async () => {
    inventoryOffsetMs = 0; // the rotation's own clock is real time; the key is rotated because it is forced
    const a = await devLogin('operator');
    const confirm = await a.get(`${consoleUrl}/console/keys/ci-deployer/rotate?mode=rotate`);
    expect(confirm.text).toContain('Rotate the key of ci-deployer now?');
    const r = await a.request('POST', `${consoleUrl}/console/keys/ci-deployer/rotate`, { form: { _csrf: Agent.input(confirm.text, '_csrf')!, mode: 'rotate' } });
    expect(r.status, r.text).toBe(200);
    expect(r.text).toContain('Outcome <strong class="state good">progressed</strong>');
    const keys = (await iamAdmin.send(new ListAccessKeysCommand({ UserName: 'ci-deployer' }))).AccessKeyMetadata!;
    expect(keys.filter((k) => k.Status === 'Active').map((k) => k.AccessKeyId)).not.toContain(original['ci-deployer']);
    expect(keys.some((k) => k.Status === 'Active')).toBe(true);
    const records = (await store.searchAudit({ eventPrefix: 'admin.rotate', limit: 10 })).map((x) => x.record);
    expect(records[0]).toMatchObject({ event: 'admin.rotate', admin: 'dev-operator (dev login)', via: 'console', users: ['ci-deployer'], leader: true });
    // The push to the sink is on the page now, as the last delivery.
    const page = await a.get(`${consoleUrl}/console/keys`);
    expect(page.text).toMatch(/command:ci<\/span> <span class="state good">delivered/);
  });
});
