// The console over HTTP, signed in through a real OpenID Connect provider: only on the admin
// listener; SSO with PKCE, groups to roles, refusals; cookies and headers; CSRF and origin checks;
// every request audited with the person's identity; viewers cannot act (the POST is refused, not
// just the button hidden); a revocation made from a denial stops the next exchange; sessions end
// when idle and at logout; audit data is escaped text. The browser tests (browser.test.ts) drive
// the same console in Chromium.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { MemoryStore } from '../../server/src/store/memory.js';
import { hashAdminToken } from '../../server/src/admin/auth.js';
import { CONSOLE_CSP } from '../../server/src/console/http.js';
import { compileConfig } from '../../server/src/config/compile.js';
import { startIssuer, type TestIssuer } from '../support/oidc-issuer.js';
import { startTestBroker, requestCredentials, TEST_AUDIENCE, type TestBroker } from '../support/broker.js';
import { providerClaims } from '../support/fixtures.js';
import { freePort } from '../support/moto.js';
import { startFakeSts, type FakeSts } from '../support/fake-sts.js';
import { Agent } from './agent.js';
import { startIdp, type TestIdp } from './idp.js';

let issuer: TestIssuer;
let idp: TestIdp;
let sts: FakeSts;
let tb: TestBroker;
let consoleUrl: string;
let clockOffsetMs = 0;
const ops = new MemoryStore();
const adminToken = randomBytes(24).toString('base64url');
const claims = (extra: Record<string, unknown> = {}) => ({ ...providerClaims('github-actions'), aud: TEST_AUDIENCE, ...extra });
const records = (event?: string) => ops.auditRows.map((r) => r.record).filter((r) => event === undefined || r.event === event);

beforeAll(async () => {
  const adminPort = await freePort();
  consoleUrl = `http://127.0.0.1:${adminPort}`;
  [issuer, idp, sts] = await Promise.all([startIssuer(), startIdp(`${consoleUrl}/console/auth/callback`), startFakeSts()]);
  process.env.CREDBROKER_CONSOLE_TEST_SECRET = idp.clientSecret;
  process.env.CREDBROKER_CONSOLE_TEST_AUDIT_KEY = randomBytes(32).toString('base64');
  tb = await startTestBroker({
    issuer,
    issuerSettings: { test: { preset: 'github-actions' } },
    roles: {
      deploy: { arn: 'arn:aws:iam::123456789012:role/deploy', allow: [{ issuer: 'test', claims: { repository_owner_id: '9919', repository_id: '487920697', ref: 'refs/heads/main' } }] },
      production: { arn: 'arn:aws:iam::123456789012:role/production', allow: [{ issuer: 'test', claims: { repository_owner_id: '9919', repository_id: '487920697', environment: 'prod-eu' } }] },
    },
    config: {
      // Fake STS (test/support/fake-sts.ts): this file is about the console, not about STS.
      aws: { sts_endpoint: sts.endpoint },
      audit: { sink: 'store', hmac_key_env: 'CREDBROKER_CONSOLE_TEST_AUDIT_KEY' },
      revocation: { poll_ms: 100 },
      admin: { enabled: true, port: adminPort, tokens: [{ name: 'script', sha256: hashAdminToken(adminToken), scopes: ['read'] }] },
      console: {
        url: consoleUrl,
        session_idle_seconds: 600,
        sso: { issuer: idp.issuer, client_id: idp.clientId, client_secret_env: 'CREDBROKER_CONSOLE_TEST_SECRET', scopes: ['openid', 'email', 'profile', 'groups'], allow_insecure_http: true },
        viewers: { groups: ['security-viewers'] },
        operators: { groups: ['security-operators'] },
      },
    },
    brokerOptions: { ops, now: () => new Date(Date.now() + clockOffsetMs) },
  });
  await tb.broker.listenAdmin(adminPort, '127.0.0.1');
});
afterAll(async () => {
  await tb?.close();
  await Promise.all([issuer?.close(), idp?.close(), sts?.close()]);
});

async function signedIn(login: 'alice' | 'bob'): Promise<Agent> {
  const a = new Agent();
  const r = await a.ssoSignIn(consoleUrl, login);
  expect(r.status, r.text).toBe(200);
  return a;
}

/** A denied exchange (no environment claim) and its audit seq. */
async function denial(extra: Record<string, unknown> = {}): Promise<number> {
  const res = await requestCredentials(tb.url, await issuer.sign(claims({ environment: 'staging', ...extra })), { role: 'production' });
  expect(res.status).toBe(403);
  const row = ops.auditRows.findLast((r) => r.record.request_id === res.body.error.request_id)!;
  return row.seq;
}

describe('where the console is served', () => {
  it('is not on the public listener', async () => {
    for (const p of ['/console', '/console/', '/console/login', '/console/auth/start']) {
      const res = await fetch(`${tb.url}${p}`, { redirect: 'manual' });
      expect(res.status, p).toBe(404);
    }
  });

  it('is off without SSO outside dev mode: /console answers as any unknown admin path', async () => {
    const other = await startTestBroker({ issuer, config: { admin: { enabled: true, tokens: [{ name: 'x', sha256: hashAdminToken(adminToken) }] } } });
    try {
      const { url } = await other.broker.listenAdmin(0, '127.0.0.1');
      expect((await fetch(`${url}/console/login`)).status).toBe(401);
      expect((await fetch(`${url}/console/login`, { headers: { authorization: `Bearer ${adminToken}` } })).status).toBe(404);
    } finally {
      await other.close();
    }
  });

  it('answers only to its own host name (no DNS rebinding)', async () => {
    // node:http, not fetch: fetch sets the Host header itself.
    const status = (host: string) =>
      new Promise<number>((resolve, reject) => {
        const req = http.get(`${consoleUrl}/console/login`, { headers: { host } }, (res) => {
          res.resume();
          resolve(res.statusCode!);
        });
        req.on('error', reject);
      });
    expect(await status('attacker.example')).toBe(421);
    expect(await status(new URL(consoleUrl).host)).toBe(200);
    expect(await status(`localhost:${new URL(consoleUrl).port}`)).toBe(200);
  });

  it('sends a strict CSP and no-frame headers with every page, and serves hashed assets with a long cache', async () => {
    const res = await fetch(`${consoleUrl}/console/login`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toBe(CONSOLE_CSP);
    expect(CONSOLE_CSP).not.toMatch(/unsafe-inline|unsafe-eval|https?:/);
    expect(CONSOLE_CSP).toContain("frame-ancestors 'none'");
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('cache-control')).toBe('no-store');
    const html = await res.text();
    const assets = [...html.matchAll(/(?:href|src)="(\/console\/assets\/[^"]+)"/g)].map((m) => m[1]!);
    expect(assets.length).toBe(3);
    for (const a of assets) {
      expect(a).toMatch(/-[A-Z0-9]{8}\.(js|css|svg)$/);
      const asset = await fetch(`${consoleUrl}${a}`);
      expect(asset.status).toBe(200);
      expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    }
    expect((await fetch(`${consoleUrl}/console/assets/main-XXXXXXXX.js`)).status).toBe(404);
    expect((await fetch(`${consoleUrl}/console/assets/..%2Fmanifest.json`)).status).toBe(404);
  });
});

describe('signing in with SSO', () => {
  it('signs an operator in with PKCE, and sets a session cookie that is HttpOnly, Secure, SameSite=Strict', async () => {
    const a = new Agent();
    const start = await a.get(`${consoleUrl}/console/auth/start?next=%2Fconsole%2Fdecisions`);
    expect(start.status).toBe(303);
    const authorize = new URL(start.headers.get('location')!);
    expect(authorize.origin).toBe(idp.issuer);
    expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');
    expect(authorize.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(authorize.searchParams.get('state')).toBeTruthy();
    expect(authorize.searchParams.get('nonce')).toBeTruthy();
    expect(start.setCookies.find((c) => c.startsWith('__Host-credbroker-login='))).toMatch(/HttpOnly/);
    expect(start.setCookies.find((c) => c.startsWith('__Host-credbroker-login='))).toMatch(/SameSite=Lax/);

    const r = await a.ssoSignIn(consoleUrl, 'alice', '/console/decisions');
    expect(r.status).toBe(200);
    const cookie = r.setCookies.find((c) => c.startsWith('__Host-credbroker-console='))!;
    expect(cookie).toMatch(/; Path=\//);
    expect(cookie).toMatch(/; HttpOnly/);
    expect(cookie).toMatch(/; Secure/);
    expect(cookie).toMatch(/; SameSite=Strict/);
    expect(r.text).toContain('http-equiv="refresh" content="0;url=/console/decisions"');
    const page = await a.get(`${consoleUrl}/console/decisions`);
    expect(page.status).toBe(200);
    expect(page.text).toContain('alice@example.com');
    expect(page.text).toContain('>operator<');
    const login = records('console.login').at(-1)!;
    expect(login).toMatchObject({ admin: 'alice@example.com', console_role: 'operator', via: 'console' });
    expect(login.groups).toContain('security-operators');
  });

  it('maps the viewers group to viewer', async () => {
    const a = await signedIn('bob');
    const page = await a.get(`${consoleUrl}/console/`);
    expect(page.text).toContain('bob@example.com');
    expect(page.text).toContain('>viewer<');
  });

  it('refuses a person in neither group, and records the refusal', async () => {
    const a = new Agent();
    const r = await a.ssoSignIn(consoleUrl, 'mallory');
    expect(r.status).toBe(403);
    expect(r.setCookies.some((c) => c.startsWith('__Host-credbroker-console='))).toBe(false);
    expect(records('console.login_refused').at(-1)).toMatchObject({ admin: 'mallory@example.com' });
    expect((await a.get(`${consoleUrl}/console/`)).status).toBe(303);
  });

  it('refuses an account without the required claims (e.g. a Google account outside the Workspace domain)', async () => {
    const running = tb.broker.config();
    const raw = running.raw;
    const strict = compileConfig({ ...raw, console: { ...raw.console, sso: { ...raw.console.sso!, required_claims: { hd: 'example.com' } } } }).config!;
    await tb.broker.reload(strict);
    try {
      const r = await new Agent().ssoSignIn(consoleUrl, 'alice');
      expect(r.status).toBe(403);
      expect(records('console.login_refused').at(-1)).toMatchObject({ admin: 'alice@example.com', reason: 'required claim hd does not hold' });
    } finally {
      await tb.broker.reload(running);
    }
    expect((await new Agent().ssoSignIn(consoleUrl, 'alice')).status).toBe(200);
  });

  it('refuses a callback that was not started in this browser, and a callback replayed', async () => {
    const a = new Agent();
    const r = await a.ssoSignIn(consoleUrl, 'alice');
    expect(r.status).toBe(200);
    const stranger = await new Agent().get(r.url);
    expect(stranger.status).toBe(400);
    const again = await a.get(r.url);
    expect(again.status).toBe(400);
  });

  it('sends someone signed out to the sign-in page, keeping where they were going', async () => {
    const r = await new Agent().get(`${consoleUrl}/console/decisions?outcome=deny&role=production`);
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe(`/console/login?next=${encodeURIComponent('/console/decisions?outcome=deny&role=production')}`);
  });
});

describe('requests of a signed-in person', () => {
  it('are audited with their identity before the page is answered', async () => {
    const a = await signedIn('bob');
    const before = records('admin.request').length;
    await a.get(`${consoleUrl}/console/decisions?outcome=deny`);
    const rec = records('admin.request').slice(before);
    expect(rec).toHaveLength(1);
    expect(rec[0]).toMatchObject({ admin: 'bob@example.com', via: 'console', console_role: 'viewer', route: '/console/decisions', query: { outcome: 'deny' } });
  });

  it('refuse a state-changing request without the CSRF token, or from another origin', async () => {
    const a = await signedIn('alice');
    const seq = await denial();
    const form = { target: 'claim:repository_id', duration: '1h', reason: 'csrf test' };
    const before = (await ops.listRevocations(new Date())).length;
    const noToken = await a.request('POST', `${consoleUrl}/console/decisions/${seq}/revoke`, { form });
    expect(noToken.status).toBe(403);
    expect(records('admin.forbidden').at(-1)).toMatchObject({ admin: 'alice@example.com', reason: 'csrf token missing or wrong' });
    const page = await a.get(`${consoleUrl}/console/decisions/${seq}`);
    const csrf = Agent.input(page.text, '_csrf')!;
    const crossSite = await a.request('POST', `${consoleUrl}/console/decisions/${seq}/revoke`, { form: { ...form, _csrf: csrf }, origin: 'https://attacker.example' });
    expect(crossSite.status).toBe(403);
    const noOrigin = await a.request('POST', `${consoleUrl}/console/decisions/${seq}/revoke`, { form: { ...form, _csrf: csrf }, origin: null });
    expect(noOrigin.status).toBe(403);
    expect((await ops.listRevocations(new Date())).length).toBe(before);
  });

  it('render audit data as text: claims holding markup come back escaped', async () => {
    const a = await signedIn('bob');
    // Both are recorded: the environment condition is evaluated, and the subject names the identity.
    const seq = await denial({ environment: '<script>alert(1)</script>', sub: '"><img src=x onerror=alert(2)>' });
    const page = await a.get(`${consoleUrl}/console/decisions/${seq}`);
    expect(page.text).toContain('&lt;script>alert(1)&lt;/script>');
    expect(page.text).toContain('&quot;>&lt;img src=x onerror=alert(2)>');
    expect(page.text).not.toContain('<script>alert(1)');
    expect(page.text).not.toContain('<img src=x');
    const list = await a.get(`${consoleUrl}/console/decisions?q=${encodeURIComponent('<img src=x')}`);
    expect(list.text).toContain('1 matching record ');
    expect(list.text).toContain('&quot;>&lt;img src=x onerror=alert(2)>');
    expect(list.text).not.toContain('<img src=x');
  });
});

describe('who may act', () => {
  it('a viewer sees no revoke form, and the revoke POST is refused and audited', async () => {
    const a = await signedIn('bob');
    const seq = await denial();
    const page = await a.get(`${consoleUrl}/console/decisions/${seq}`);
    expect(page.status).toBe(200);
    expect(page.text).not.toContain('Revoke…');
    expect(page.text).not.toContain(`/console/decisions/${seq}/revoke`);
    const csrf = Agent.input(page.text, '_csrf')!;
    const before = (await ops.listRevocations(new Date())).length;
    const post = await a.request('POST', `${consoleUrl}/console/decisions/${seq}/revoke`, { form: { _csrf: csrf, target: 'claim:repository_id', duration: '1h', reason: 'viewer tries' } });
    expect(post.status).toBe(403);
    expect(records('admin.forbidden').at(-1)).toMatchObject({ admin: 'bob@example.com', required_role: 'operator' });
    expect((await ops.listRevocations(new Date())).length).toBe(before);
    expect((await a.get(`${consoleUrl}/console/decisions/${seq}/revoke?target=claim:repository_id`)).status).toBe(403);
  });

  it('an operator revokes a repository from a denial, with a required reason, and its next exchange is refused', async () => {
    const a = await signedIn('alice');
    const seq = await denial();
    const page = await a.get(`${consoleUrl}/console/decisions/${seq}`);
    expect(page.text).toContain('this repository (repository_id = 487920697)');
    const confirm = await a.get(`${consoleUrl}/console/decisions/${seq}/revoke?target=${encodeURIComponent('claim:repository_id')}&duration=24h`);
    expect(confirm.status).toBe(200);
    const csrf = Agent.input(confirm.text, '_csrf')!;
    const noReason = await a.request('POST', `${consoleUrl}/console/decisions/${seq}/revoke`, { form: { _csrf: csrf, target: 'claim:repository_id', duration: '24h', reason: ' ' } });
    expect(noReason.status).toBe(400);
    expect(noReason.text).toContain('Give a reason');
    const ok = await a.request('POST', `${consoleUrl}/console/decisions/${seq}/revoke`, { form: { _csrf: csrf, target: 'claim:repository_id', duration: '24h', reason: 'leaked token' } });
    expect(ok.status).toBe(303);
    const revocation = (await ops.listRevocations(new Date())).find((r) => r.reason === 'leaked token')!;
    expect(revocation).toMatchObject({ issuer: 'test', claims: { repository_id: '487920697' }, created_by: 'alice@example.com (console)' });
    expect(Date.parse(revocation.expires_at) - Date.parse(revocation.created_at)).toBe(86_400_000);
    expect(records('admin.revoke').at(-1)).toMatchObject({ admin: 'alice@example.com', via: 'console', from_decision: seq });
    await tb.broker.revocations.refresh();
    const next = await requestCredentials(tb.url, await issuer.sign(claims()), { role: 'deploy' });
    expect(next.status).toBe(403);
    expect(next.body.error.code).toBe('ERR_REVOKED');
    // Lifted from the console: the repository gets credentials again.
    const lift = await a.get(`${consoleUrl}/console/revocations/${revocation.id}/lift`);
    const lifted = await a.request('POST', `${consoleUrl}/console/revocations/${revocation.id}/lift`, { form: { _csrf: Agent.input(lift.text, '_csrf')! } });
    expect(lifted.status).toBe(303);
    expect(records('admin.unrevoke').at(-1)).toMatchObject({ admin: 'alice@example.com', revocation_id: revocation.id });
    await tb.broker.revocations.refresh();
    expect((await requestCredentials(tb.url, await issuer.sign(claims()), { role: 'deploy' })).status).toBe(200);
  });
});

describe('policy', () => {
  it('explains a JWT without recording it or showing it back', async () => {
    const a = await signedIn('bob');
    const page = await a.get(`${consoleUrl}/console/policy`);
    const jwt = await issuer.sign(claims({ environment: 'staging' }));
    const r = await a.request('POST', `${consoleUrl}/console/policy/explain`, { form: { _csrf: Agent.input(page.text, '_csrf')!, claims: jwt, role: 'production', issuer: '' } });
    expect(r.status).toBe(200);
    expect(r.text).toContain('DENY ERR_POLICY_NO_MATCH');
    expect(r.text).toMatch(/environment<\/code>: expected &quot;prod-eu&quot;, got &quot;staging&quot;|environment<\/code>: expected "prod-eu", got "staging"/);
    expect(r.text).not.toContain(jwt);
    expect(JSON.stringify(records())).not.toContain(jwt.split('.')[2]!);
  });

  it('reviews a change against the running config with the policy-diff core', async () => {
    const a = await signedIn('bob');
    const page = await a.get(`${consoleUrl}/console/policy/diff`);
    const yaml = `issuers: { test: { url: "${issuer.url}", preset: github-actions, audiences: ["${TEST_AUDIENCE}"], allow_insecure_http: true } }
roles:
  deploy: { arn: "arn:aws:iam::123456789012:role/deploy", allow: [{ issuer: test, claims: { repository_owner_id: "9919", repository_id: "487920697", ref: { glob: "refs/heads/*" } } }] }
`;
    const r = await a.request('POST', `${consoleUrl}/console/policy/diff`, { form: { _csrf: Agent.input(page.text, '_csrf')!, mode: 'paste', new: yaml, old: '' } });
    expect(r.status).toBe(200);
    expect(r.text).toContain('Access gained (1)');
    expect(r.text).toContain('ref: glob &quot;refs/heads/*&quot;');
    expect(r.text).toContain('removed production');
    expect(r.text).toContain('## Policy change: `running config` → `pasted config`');
  });
});

describe('sessions', () => {
  it('end at logout: the old cookie no longer works', async () => {
    const a = await signedIn('bob');
    const page = await a.get(`${consoleUrl}/console/`);
    const cookie = a.cookies(consoleUrl).get('__Host-credbroker-console')!;
    const out = await a.request('POST', `${consoleUrl}/console/logout`, { form: { _csrf: Agent.input(page.text, '_csrf')! } });
    expect(out.status).toBe(303);
    expect(out.setCookies.find((c) => c.startsWith('__Host-credbroker-console='))).toMatch(/Expires=Thu, 01 Jan 1970/);
    expect(records('console.logout').at(-1)).toMatchObject({ admin: 'bob@example.com' });
    const replay = await fetch(`${consoleUrl}/console/`, { headers: { cookie: `__Host-credbroker-console=${cookie}` }, redirect: 'manual' });
    expect(replay.status).toBe(303);
    expect(replay.headers.get('location')).toMatch(/^\/console\/login/);
  });

  it('end after the idle time', async () => {
    const a = await signedIn('bob');
    expect((await a.get(`${consoleUrl}/console/`)).status).toBe(200);
    clockOffsetMs = 601_000;
    try {
      const r = await a.get(`${consoleUrl}/console/`);
      expect(r.status).toBe(303);
      expect(r.headers.get('location')).toMatch(/^\/console\/login/);
    } finally {
      clockOffsetMs = 0;
    }
  });
});
