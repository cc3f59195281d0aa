// Issuer keys over real HTTP: rotation, outages, the unknown-kid single flight, and the checks
// on what the issuer serves (discovery issuer must match, size caps).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startMoto, type Moto } from '../support/moto.js';
import { startIssuer, type TestIssuer } from '../support/oidc-issuer.js';
import { startTestBroker, requestCredentials, TEST_AUDIENCE, type TestBroker } from '../support/broker.js';
import { providerClaims } from '../support/fixtures.js';

let moto: Moto;
const cleanup: Array<() => Promise<unknown>> = [];
const claims = () => ({ ...providerClaims('github-actions'), aud: TEST_AUDIENCE });
const cooldown = () => new Promise((r) => setTimeout(r, 1100)); // test config: 1 s cooldown

async function setup(settings: Record<string, unknown> = {}): Promise<{ issuer: TestIssuer; tb: TestBroker }> {
  const issuer = await startIssuer();
  cleanup.push(() => issuer.close());
  const tb = await startTestBroker({ moto, issuer, issuerSettings: { test: settings }, config: { server: { readiness_wait_ms: 2000 } } });
  cleanup.push(() => tb.close());
  return { issuer, tb };
}

beforeAll(async () => {
  moto = await startMoto();
});
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!();
});
afterAll(async () => {
  await moto?.stop();
});

describe('issuer keys', () => {
  it('picks up a key rotation at the issuer (new kid) with one refetch', async () => {
    const { issuer, tb } = await setup();
    expect((await requestCredentials(tb.url, await issuer.sign(claims()))).status).toBe(200);
    await cooldown();
    const fetches = issuer.jwksFetches;
    const fresh = await issuer.rotate({ retire: true });
    const res = await requestCredentials(tb.url, await issuer.sign(claims(), { key: fresh }));
    expect(res.status).toBe(200);
    expect(issuer.jwksFetches).toBe(fetches + 1);
  });

  it('keeps verifying with cached keys while the issuer is down, and counts the failed refresh', async () => {
    const { issuer, tb } = await setup();
    issuer.down = true;
    await tb.broker.verifier().caches.get('test')!.refresh('interval');
    const res = await requestCredentials(tb.url, await issuer.sign(claims()));
    expect(res.status).toBe(200);
    expect((await fetch(`${tb.url}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(tb.metricsUrl)).text();
    expect(metrics).toMatch(/credbroker_jwks_refresh_total\{issuer="test",outcome="failure",trigger="interval"\} 1/);
  });

  it('lets 100 concurrent requests with an unknown kid cause exactly one JWKS fetch', async () => {
    // A cooldown long enough that all 100 requests land inside it even on a loaded machine.
    const { issuer, tb } = await setup({ jwks_cooldown_seconds: 5 });
    await new Promise((r) => setTimeout(r, 5100));
    issuer.jwksDelayMs = 200; // make sure the requests overlap the refetch
    const stranger = await issuer.unpublishedKey();
    const tokens = await Promise.all(Array.from({ length: 100 }, () => issuer.sign(claims(), { key: stranger })));
    const fetches = issuer.jwksFetches;
    const results = await Promise.all(tokens.map((t) => requestCredentials(tb.url, t)));
    expect(results.every((r) => r.status === 401 && r.body.error.code === 'ERR_TOKEN_INVALID')).toBe(true);
    expect(issuer.jwksFetches - fetches).toBe(1);
  });

  it("names the cause when an issuer cannot be reached: a refused connection, a host that does not resolve", async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    // RFC 6761: ".invalid" never resolves, on any resolver, online or not.
    const nowhere = 'http://issuer.credbroker.invalid';
    const live = await startIssuer();
    cleanup.push(() => live.close());
    const tb = await startTestBroker({
      moto,
      issuer: { refused: { ...live, url: closed }, unresolved: { ...live, url: nowhere } },
      roles: { deploy: { arn: 'arn:aws:iam::123456789012:role/credbroker/deploy', allow: [{ issuer: 'refused', claims: { repository_id: '1' } }] } },
      config: { server: { readiness_wait_ms: 500 } },
    });
    cleanup.push(() => tb.close());
    const body = (await (await fetch(`${tb.url}/readyz`)).json()) as { issuer_errors: Record<string, string> };
    expect(body.issuer_errors.refused).toBe(`GET ${closed}/.well-known/openid-configuration: connection refused (127.0.0.1:${new URL(closed).port}, ECONNREFUSED)`);
    expect(body.issuer_errors.unresolved).toMatch(/^GET http:\/\/issuer\.credbroker\.invalid\/\.well-known\/openid-configuration: cannot resolve the host( \(temporary DNS failure\))? \(issuer\.credbroker\.invalid:80, (ENOTFOUND|EAI_AGAIN)\)$/);
    // The log says the same, for the operator.
    expect(tb.logs.some((l) => l.includes('ECONNREFUSED') && l.includes('issuer key refresh failed'))).toBe(true);
  });

  it('is not ready while an issuer is down at start, answers 503 ERR_NOT_READY, and recovers on the next request', async () => {
    const issuer = await startIssuer();
    cleanup.push(() => issuer.close());
    issuer.down = true;
    const tb = await startTestBroker({ moto, issuer, config: { server: { readiness_wait_ms: 500 } } });
    cleanup.push(() => tb.close());
    const ready = await fetch(`${tb.url}/readyz`);
    expect(ready.status).toBe(503);
    // Why, too: the URL that failed and how (here the issuer's 503).
    expect(await ready.json()).toEqual({ status: 'not ready', issuers: { test: false }, issuer_errors: { test: `GET ${issuer.url}/.well-known/openid-configuration: HTTP 503` } });
    const token = await issuer.sign(claims());
    const refused = await requestCredentials(tb.url, token);
    expect(refused.status).toBe(503);
    expect(refused.body.error.code).toBe('ERR_NOT_READY');
    expect(refused.headers.get('retry-after')).toBe('5');
    issuer.down = false;
    await cooldown();
    const res = await requestCredentials(tb.url, await issuer.sign(claims()));
    expect(res.status).toBe(200);
    expect((await fetch(`${tb.url}/readyz`)).status).toBe(200);
  });

  it('refuses keys whose discovery document names another issuer', async () => {
    const issuer = await startIssuer();
    cleanup.push(() => issuer.close());
    issuer.discoveryIssuerOverride = 'https://evil.example.com';
    const tb = await startTestBroker({ moto, issuer, config: { server: { readiness_wait_ms: 1000 } } });
    cleanup.push(() => tb.close());
    expect(issuer.jwksFetches).toBe(0); // never followed the jwks_uri of a mismatched document
    expect((await fetch(`${tb.url}/readyz`)).status).toBe(503);
    expect(tb.logs.some((l) => l.includes('does not equal the configured issuer'))).toBe(true);
  });

  it('refuses a JWKS larger than max_response_bytes', async () => {
    const issuer = await startIssuer();
    cleanup.push(() => issuer.close());
    issuer.jwksPaddingBytes = 8 * 1024;
    const tb = await startTestBroker({ moto, issuer, issuerSettings: { test: { max_response_bytes: 4096 } }, config: { server: { readiness_wait_ms: 1000 } } });
    cleanup.push(() => tb.close());
    expect(issuer.jwksFetches).toBe(1);
    expect((await fetch(`${tb.url}/readyz`)).status).toBe(503);
    expect(tb.logs.some((l) => l.includes('exceeds 4096'))).toBe(true);
  });
});
