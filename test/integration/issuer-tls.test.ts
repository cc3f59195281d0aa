// An issuer behind an internal certificate authority: a CA made at test time (openssl), an OIDC
// issuer serving HTTPS with a certificate it signed. Without the issuer's ca_file the broker does not
// trust it and says why — host and reason, in the log and in /readyz — never a bare "fetch failed";
// with it, tokens verify. An expired certificate and one for another host fail with their own words.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { startMoto, type Moto } from '../support/moto.js';
import { startIssuer, type TestIssuer } from '../support/oidc-issuer.js';
import { requestCredentials, startTestBroker, TEST_AUDIENCE } from '../support/broker.js';
import { issue, makeCa, type Ca } from '../support/certs.js';

let moto: Moto;
let ca: Ca;
const cleanup: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  moto = await startMoto();
  ca = makeCa('credbroker-test-internal-ca');
});
afterAll(async () => {
  for (const c of cleanup.reverse()) await c();
  await moto?.stop();
});

const claims = () => ({ aud: TEST_AUDIENCE, sub: 'repo:acme/app:ref:refs/heads/main', repository_id: '487920697' });

async function httpsIssuer(cert: { cert: string; key: string }): Promise<TestIssuer> {
  const issuer = await startIssuer({ tls: cert });
  cleanup.push(() => issuer.close());
  return issuer;
}

async function broker(issuer: TestIssuer, settings: Record<string, unknown> = {}) {
  const tb = await startTestBroker({ moto, issuer, issuerSettings: { test: { allow_insecure_http: false, ...settings } }, config: { server: { readiness_wait_ms: 3000 } } });
  cleanup.push(() => tb.close());
  const ready = await fetch(`${tb.url}/readyz`);
  return { tb, status: ready.status, body: (await ready.json()) as { issuers: Record<string, boolean>; issuer_errors?: Record<string, string> } };
}

const hostOf = (issuer: TestIssuer) => new URL(issuer.url).host;

describe('an issuer with a certificate from an internal CA', () => {
  it('is not trusted without ca_file, and the log and /readyz say which host and why', async () => {
    const issuer = await httpsIssuer(issue(ca, 'issuer'));
    const { tb, status, body } = await broker(issuer);
    const why = `TLS: the certificate of ${hostOf(issuer)} is signed by an unknown certificate authority (UNABLE_TO_VERIFY_LEAF_SIGNATURE): add the CA that signed it with ca_file`;
    expect(status).toBe(503);
    expect(body.issuers).toEqual({ test: false });
    expect(body.issuer_errors?.test).toBe(`GET ${issuer.url}/.well-known/openid-configuration: ${why}`);
    expect(tb.logs.some((l) => l.includes('issuer key refresh failed') && l.includes(why))).toBe(true);
    expect(tb.logs.some((l) => l.includes('fetch failed'))).toBe(false);
    const refused = await requestCredentials(tb.url, await issuer.sign(claims()));
    expect(refused.status).toBe(503);
    expect(refused.body.error.code).toBe('ERR_NOT_READY');
    expect(issuer.discoveryFetches).toBe(0); // no TLS handshake completed, so no request was answered
  });

  it('is trusted with its ca_file, on top of the system roots, and issues credentials', async () => {
    const issuer = await httpsIssuer(issue(ca, 'issuer'));
    const { tb, status, body } = await broker(issuer, { ca_file: ca.cert });
    expect(status).toBe(200);
    expect(body).toEqual({ status: 'ready', issuers: { test: true } });
    const res = await requestCredentials(tb.url, await issuer.sign(claims()));
    expect(res.status).toBe(200);
    expect(res.body.AccessKeyId).toMatch(/^(ASIA|AKIA)/);
    expect(issuer.jwksFetches).toBe(1);
  });

  it('refuses an expired certificate, saying it expired, even with the right ca_file', async () => {
    const issuer = await httpsIssuer(issue(ca, 'issuer-expired', 'server', { expired: true }));
    const { status, body } = await broker(issuer, { ca_file: ca.cert });
    expect(status).toBe(503);
    expect(body.issuer_errors?.test).toContain(`TLS: the certificate of ${hostOf(issuer)} has expired (CERT_HAS_EXPIRED)`);
  });

  it('refuses a certificate for another host, saying the name does not match, even with the right ca_file', async () => {
    const issuer = await httpsIssuer(issue(ca, 'issuer-other-host', 'server', { names: ['issuer.other.example'] }));
    const { status, body } = await broker(issuer, { ca_file: ca.cert });
    expect(status).toBe(503);
    expect(body.issuer_errors?.test).toContain(`TLS: the certificate of ${hostOf(issuer)} does not name this host (ERR_TLS_CERT_ALTNAME_INVALID)`);
  });

  it('with ca_file_only trusts that file alone: a certificate from another CA is refused', async () => {
    const other = makeCa('credbroker-test-other-ca');
    const issuer = await httpsIssuer(issue(other, 'issuer-other-ca'));
    const { status, body } = await broker(issuer, { ca_file: ca.cert, ca_file_only: true });
    expect(status).toBe(503);
    expect(body.issuer_errors?.test).toContain('is signed by an unknown certificate authority');
  });

  it('refuses a config whose ca_file is not a PEM certificate, naming the key', async () => {
    const bad = `${ca.cert}.not-pem`;
    writeFileSync(bad, 'this is not a certificate\n');
    const issuer = await httpsIssuer(issue(ca, 'issuer'));
    await expect(broker(issuer, { ca_file: bad })).rejects.toThrow(/issuers\.test\.ca_file: .*no PEM certificate/);
  });
});
