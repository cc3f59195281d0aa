// The console in a real browser (Debian's Chromium), against `credbroker serve` as operators run
// it, a real OpenID provider with people in two groups (oidc-provider), moto as AWS (roles, and
// IAM users with keys for the static-keys page), and a local CI token issuer. It covers: SSO
// sign-in as viewer and as operator; a viewer cannot revoke (no button, and the POST refused);
// an operator blocks a repository from a denial and its next exchange is refused; the decisions
// filter and its shareable link; the static keys' ages; the explain form's failing condition;
// stored XSS shown as text; zero CSP violations; keyboard navigation; logout. Screenshots of each
// page go to test-output/console/.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { IAMClient, CreateAccessKeyCommand, CreateRoleCommand, CreateUserCommand } from '@aws-sdk/client-iam';
import { hashAdminToken } from '../../server/src/admin/auth.js';
import { startMoto, freePort, type Moto } from '../support/moto.js';
import { startIssuer, type TestIssuer } from '../support/oidc-issuer.js';
import { requestCredentials, TEST_AUDIENCE } from '../support/broker.js';
import { providerClaims } from '../support/fixtures.js';
import { startServe, until, type ServeProcess } from '../support/serve-process.js';
import { chromiumPath, openBrowser, screenshot, type Person } from './browser.js';
import { startIdp, type TestIdp } from './idp.js';

const executable = chromiumPath();
if (!executable) console.warn('SKIPPED: the console browser tests need Chromium (apt-get install -y chromium; .ci/run installs it)');

const ACCOUNT = '123456789012';
let moto: Moto;
let issuer: TestIssuer;
let idp: TestIdp;
let serve: ServeProcess;
let consoleUrl: string;
let viewer: Person;
let operator: Person;
const dir = mkdtempSync(path.join(tmpdir(), 'credbroker-console-browser-'));
const scriptToken = randomBytes(24).toString('base64url');
const keys: Record<string, string> = {};
const claims = (extra: Record<string, unknown> = {}) => ({ ...providerClaims('github-actions'), aud: TEST_AUDIENCE, ...extra });

async function exchange(role: string, extra: Record<string, unknown> = {}) {
  return requestCredentials(serve.url, await issuer.sign(claims(extra)), { role });
}

/** The admin API, with a read token: what the broker really holds, independent of the pages. */
async function adminGet(p: string): Promise<any> {
  const res = await fetch(`${consoleUrl}${p}`, { headers: { authorization: `Bearer ${scriptToken}` } });
  return res.json();
}

/** The seq of the audit record of an exchange, by its request id (decisions link to /console/decisions/<seq>). */
async function seqOf(requestId: string): Promise<number> {
  const { records } = await adminGet('/v1/admin/audit?event=exchange&limit=1000');
  return (records as Array<{ seq: number; request_id: string }>).find((r) => r.request_id === requestId)!.seq;
}

async function signIn(person: Person, login: string): Promise<void> {
  const { page } = person;
  await page.goto(`${consoleUrl}/console/`);
  await expect.poll(() => page.url()).toContain('/console/login');
  await screenshot(page, 'sign-in');
  await page.getByRole('link', { name: 'Sign in with SSO' }).click();
  // The identity provider's own pages: sign-in, then consent.
  await page.locator('input[name=login]').fill(login);
  await page.locator('input[name=password]').fill('correct horse battery staple');
  await page.locator('button[type=submit]').click();
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.waitForURL(`${consoleUrl}/console/`);
}

describe.skipIf(!executable)('the console in Chromium', () => {
  beforeAll(async () => {
    const adminPort = await freePort();
    consoleUrl = `http://127.0.0.1:${adminPort}`;
    [moto, issuer, idp] = await Promise.all([startMoto(), startIssuer(), startIdp(`http://127.0.0.1:${adminPort}/console/auth/callback`)]);
    const iam = new IAMClient({ region: 'us-east-1', endpoint: moto.endpoint, credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'x' } });
    for (const role of ['deploy', 'production']) {
      await iam.send(new CreateRoleCommand({ RoleName: role, Path: '/credbroker/', AssumeRolePolicyDocument: '{"Version":"2012-10-17","Statement":[]}' }));
    }
    for (const user of ['ci-deployer', 'ci-publisher', 'legacy-bot']) {
      await iam.send(new CreateUserCommand({ UserName: user, Path: '/ci/' }));
      keys[user] = (await iam.send(new CreateAccessKeyCommand({ UserName: user }))).AccessKey!.AccessKeyId!;
    }
    iam.destroy();
    writeFileSync(path.join(dir, 'audit.key'), randomBytes(48).toString('base64'), { mode: 0o600 });
    writeFileSync(path.join(dir, 'client-secret'), idp.clientSecret, { mode: 0o600 });
    const sink = (name: string) => ({ type: 'command', name, command: ['/bin/sh', '-c', 'cat > /dev/null'] });
    const config = {
      server: { host: '127.0.0.1', port: 0 },
      aws: { region: 'us-east-1', sts_endpoint: moto.endpoint, iam_endpoint: moto.endpoint, role_chaining: 'never' },
      store: { driver: 'sqlite', sqlite_path: path.join(dir, 'credbroker.sqlite') },
      audit: { sink: 'store', hmac_key_file: path.join(dir, 'audit.key'), checkpoints: { sink: 'file', path: path.join(dir, 'checkpoints.jsonl') } },
      revocation: { poll_ms: 200 },
      metrics: { enabled: false },
      admin: { enabled: true, host: '127.0.0.1', port: adminPort, tokens: [{ name: 'dashboards', sha256: hashAdminToken(scriptToken), scopes: ['read'] }] },
      console: {
        url: consoleUrl,
        sso: { issuer: idp.issuer, client_id: idp.clientId, client_secret_file: path.join(dir, 'client-secret'), scopes: ['openid', 'email', 'profile', 'groups'], allow_insecure_http: true },
        viewers: { groups: ['security-viewers'] },
        operators: { groups: ['security-operators'] },
      },
      issuers: { github: { preset: 'github-actions', url: issuer.url, audiences: [TEST_AUDIENCE], allow_insecure_http: true } },
      roles: {
        deploy: { arn: `arn:aws:iam::${ACCOUNT}:role/credbroker/deploy`, allow: [{ issuer: 'github', claims: { repository_owner_id: '9919', repository_id: '487920697', ref: 'refs/heads/main' } }] },
        production: { arn: `arn:aws:iam::${ACCOUNT}:role/credbroker/production`, allow: [{ issuer: 'github', claims: { repository_owner_id: '9919', repository_id: '487920697', environment: 'prod-eu' } }] },
      },
      rotation: {
        enabled: false,
        users: [
          { name: 'ci-deployer', path_prefix: '/ci/', sinks: [sink('deployer-ci')] },
          { name: 'ci-publisher', path_prefix: '/ci/', sinks: [sink('publisher-ci')] },
        ],
      },
    };
    const file = path.join(dir, 'credbroker.yaml');
    writeFileSync(file, JSON.stringify(config, null, 2));
    serve = await startServe(file);
    [viewer, operator] = await Promise.all([openBrowser(executable!), openBrowser(executable!)]);
  }, 180_000);

  afterAll(async () => {
    await Promise.all([viewer?.close(), operator?.close()]);
    await serve?.stop();
    await Promise.all([moto?.stop(), issuer?.close(), idp?.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('signs in through SSO as a viewer and as an operator (groups from the identity provider)', async () => {
    await signIn(viewer, 'bob');
    await expect.poll(() => viewer.page.locator('.who').innerText()).toMatch(/bob@example\.com\s*viewer/);
    await signIn(operator, 'alice');
    await expect.poll(() => operator.page.locator('.who').innerText()).toMatch(/alice@example\.com\s*operator/);
    const cookie = (await operator.context.cookies(consoleUrl)).find((c) => c.name === '__Host-credbroker-console')!;
    expect(cookie).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Strict', path: '/' });
  });

  it('shows the overview with charts drawn by uPlot', async () => {
    expect((await exchange('deploy')).status).toBe(200);
    expect((await exchange('production', { environment: 'staging' })).status).toBe(403);
    const { page } = operator;
    await page.goto(`${consoleUrl}/console/`);
    await expect.poll(() => page.locator('#chart-hour canvas').count()).toBe(1);
    await expect.poll(() => page.locator('#chart-day canvas').count()).toBe(1);
    await expect.poll(() => page.locator('#chart-hour-caption').innerText()).toMatch(/1 issued, 1 denied, 0 failed/);
    await expect.poll(() => page.locator('#chain').locator('xpath=..').innerText()).toMatch(/verified up to record \d+/);
    await expect.poll(() => page.getByRole('cell', { name: 'ERR_POLICY_NO_MATCH' }).count()).toBe(1);
    await screenshot(page, 'overview');
  });

  it('filters decisions, and the link to the search opens the same search', async () => {
    const { page } = viewer;
    await page.goto(`${consoleUrl}/console/decisions`);
    await page.getByLabel('Outcome').selectOption('deny');
    await page.getByLabel('Role').fill('production');
    await page.getByLabel('Role').press('Enter');
    await page.waitForURL(/outcome=deny/);
    const url = new URL(page.url());
    expect(url.searchParams.get('outcome')).toBe('deny');
    expect(url.searchParams.get('role')).toBe('production');
    const rows = page.locator('table.decisions tbody tr');
    await expect.poll(() => rows.count()).toBeGreaterThan(0);
    const outcomes = await page.locator('table.decisions tbody tr td:nth-child(2)').allInnerTexts();
    expect(new Set(outcomes)).toEqual(new Set(['denied']));
    await screenshot(page, 'decisions');
    const link = await page.getByRole('link', { name: 'link to this search' }).getAttribute('href');
    const other = await viewer.context.newPage();
    await other.goto(`${consoleUrl}${link}`);
    expect(await other.getByLabel('Outcome').inputValue()).toBe('deny');
    expect(await other.getByLabel('Role').inputValue()).toBe('production');
    expect(await other.locator('table.decisions tbody tr td:nth-child(2)').allInnerTexts()).toEqual(outcomes);
    await other.close();
  });

  it('lets a viewer see a denial but not revoke: no button, and the POST refused', async () => {
    const denied = await exchange('production', { environment: 'staging' });
    const seq = await seqOf(denied.body.error.request_id);
    const { page } = viewer;
    await page.goto(`${consoleUrl}/console/decisions/${seq}`);
    await expect.poll(() => page.getByRole('heading', { name: `Decision ${seq}` }).count()).toBe(1);
    expect(await page.getByRole('button', { name: /Revoke/ }).count()).toBe(0);
    expect(await page.getByRole('heading', { name: 'Block this identity' }).count()).toBe(0);
    // The same request an operator's form sends, from the viewer's signed-in page.
    const status = await page.evaluate(async (s) => {
      const csrf = (document.querySelector('input[name=_csrf]') as HTMLInputElement).value;
      const res = await fetch(`/console/decisions/${s}/revoke`, { method: 'POST', body: new URLSearchParams({ _csrf: csrf, target: 'claim:repository_id', duration: '24h', reason: 'a viewer tries' }) });
      return res.status;
    }, seq);
    expect(status).toBe(403);
    expect((await adminGet('/v1/admin/revocations')).revocations).toEqual([]);
  });

  it('explains a claim set in the policy page, showing the failing condition', async () => {
    const { page } = viewer;
    await page.goto(`${consoleUrl}/console/policy`);
    await page.getByLabel(/Claims \(JSON or YAML\)/).fill(JSON.stringify(claims({ iss: issuer.url, environment: 'staging' }), null, 2));
    await page.locator('form.explain select[name=role]').selectOption('production');
    await page.getByRole('button', { name: 'Explain' }).click();
    await screenshot(page, 'policy-explain');
    await expect.poll(() => page.locator('.explain-result').innerText(), { timeout: 5000 }).toContain('DENY ERR_POLICY_NO_MATCH');
    const failed = page.locator('.explain-result ul.conditions li.failed');
    expect(await failed.allInnerTexts()).toEqual(['✗ environment: expected "prod-eu", got "staging" (value)']);
    await screenshot(page, 'policy-explain');
  });

  it('lets an operator block a repository from a denial, after confirming with a reason; its next exchange is refused', async () => {
    const denied = await exchange('production', { environment: 'staging' });
    const seq = await seqOf(denied.body.error.request_id);
    const { page } = operator;
    await page.goto(`${consoleUrl}/console/decisions/${seq}`);
    await page.getByLabel(/this repository \(repository_id = 487920697\)/).check();
    await screenshot(page, 'decision');
    await page.getByRole('button', { name: 'Revoke…' }).click();
    await expect.poll(() => page.getByRole('heading', { name: 'Block this identity?' }).count()).toBe(1);
    await screenshot(page, 'revoke-confirm');
    await page.getByLabel(/Reason/).fill('token leaked in a build log');
    await page.getByRole('button', { name: 'Revoke', exact: true }).click();
    await page.waitForURL(/\/console\/revocations\?done=created/);
    await expect.poll(() => page.locator('tr.highlight').innerText()).toMatch(/repository_id = 487920697[\s\S]*token leaked in a build log[\s\S]*alice@example\.com \(console\)/);
    await screenshot(page, 'revocations');
    const [revocation] = (await adminGet('/v1/admin/revocations')).revocations;
    expect(revocation).toMatchObject({ issuer: 'github', claims: { repository_id: '487920697' }, reason: 'token leaked in a build log', created_by: 'alice@example.com (console)' });
    // The repository's next exchange, for a role it is allowed, is refused.
    await until(async () => (await exchange('deploy')).body?.error?.code === 'ERR_REVOKED', 5000);
    const { records } = await adminGet('/v1/admin/audit?event=admin.revoke');
    expect(records.at(-1)).toMatchObject({ admin: 'alice@example.com', via: 'console', from_decision: seq });
  });

  it('shows the static keys of the IAM users in moto, with their ages', async () => {
    const { page } = viewer;
    await page.goto(`${consoleUrl}/console/keys`);
    const managed = page.locator('table.keys tbody tr');
    await expect.poll(() => managed.count()).toBe(2);
    for (const user of ['ci-deployer', 'ci-publisher']) {
      const row = managed.filter({ hasText: user });
      await expect.poll(() => row.innerText()).toContain(keys[user]);
      // Created seconds ago in moto.
      expect(await row.locator('.key-age').allInnerTexts()).toEqual(['0 min']);
    }
    await expect.poll(() => page.getByRole('row', { name: /legacy-bot/ }).innerText()).toContain(keys['legacy-bot']);
    await expect.poll(() => page.locator('#ages-caption').innerText()).toContain('3 active keys: < 30 d: 3');
    await expect.poll(() => page.locator('#chart-ages canvas').count()).toBe(1);
    await screenshot(page, 'static-keys');
  });

  it('renders stored XSS attempts in claims as text', async () => {
    const res = await exchange('production', { environment: '<script>window.__xss=1;alert(1)</script>', sub: '"><img src=x onerror="window.__xss=2;alert(2)">' });
    const seq = await seqOf(res.body.error.request_id);
    const { page } = viewer;
    await page.goto(`${consoleUrl}/console/decisions/${seq}`);
    await expect.poll(() => page.getByText('<script>window.__xss=1;alert(1)</script>', { exact: false }).count()).toBeGreaterThan(0);
    await expect.poll(() => page.getByText('"><img src=x onerror="window.__xss=2;alert(2)">', { exact: true }).count()).toBe(1);
    expect(await page.locator('img[src=x]').count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();
    await page.goto(`${consoleUrl}/console/decisions?q=${encodeURIComponent('__xss')}`);
    await expect.poll(() => page.locator('table.decisions tbody tr').count()).toBe(1);
    expect(await page.locator('img[src=x]').count()).toBe(0);
    expect(viewer.dialogs).toEqual([]);
    await screenshot(page, 'decisions-xss');
  });

  it('can be used with the keyboard alone', async () => {
    const { page } = viewer;
    await page.goto(`${consoleUrl}/console/`);
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Skip to content');
    for (let i = 0; i < 10 && (await page.evaluate(() => document.activeElement?.textContent)) !== 'Revocations'; i++) await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    await page.waitForURL(`${consoleUrl}/console/revocations`);
    await page.goto(`${consoleUrl}/console/policy/diff`);
    await screenshot(page, 'policy-diff');
  });

  it('raises no CSP violation on any page (and the listener does hear one)', async () => {
    for (const p of [viewer, operator]) expect(p.violations.filter((v) => v.documentURI.startsWith(consoleUrl))).toEqual([]);
    // The probe: an inline script, which the CSP must block and the listener must report.
    const { page } = viewer;
    await page.goto(`${consoleUrl}/console/`);
    await page.evaluate(() => {
      const s = document.createElement('script');
      s.textContent = 'window.__inline = 1';
      document.head.append(s);
    });
    await expect.poll(() => viewer.violations.length).toBe(1);
    expect(viewer.violations[0]!.violatedDirective).toMatch(/^script-src/);
    expect(await page.evaluate(() => (window as unknown as { __inline?: number }).__inline)).toBeUndefined();
  });

  it('ends the session at logout: the console asks to sign in again, even with the old cookie', async () => {
    const { page, context } = viewer;
    await page.goto(`${consoleUrl}/console/`);
    const old = (await context.cookies(consoleUrl)).find((c) => c.name === '__Host-credbroker-console')!;
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(/\/console\/login\?signed_out=1/);
    await expect.poll(() => page.getByText('You are signed out.').count()).toBe(1);
    await context.addCookies([old]);
    await page.goto(`${consoleUrl}/console/decisions`);
    await page.waitForURL(/\/console\/login\?next=/);
  });
});
