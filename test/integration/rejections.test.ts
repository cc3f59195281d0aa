// Every way a request is refused: exact public code, exact internal reason (audit), no
// credentials in the answer, and STS never called.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SignJWT, UnsecuredJWT, exportSPKI } from 'jose';
import { createPublicKey } from 'node:crypto';
import { startMoto, type Moto } from '../support/moto.js';
import { startIssuer, type TestIssuer } from '../support/oidc-issuer.js';
import { startTestBroker, requestCredentials, TEST_AUDIENCE, DEPLOY_ROLE_ARN, type TestBroker } from '../support/broker.js';
import { providerClaims } from '../support/fixtures.js';
import { CountingIssuer } from '../support/sts-spy.js';
import { assertMatchesOpenApi } from '../support/openapi.js';
import { withSpareBits } from '../support/respell.js';

let moto: Moto;
let issuer: TestIssuer;
let other: TestIssuer;
let tb: TestBroker;
let sts: CountingIssuer;
let stsCallsBefore = 0;

const claims = (extra: Record<string, unknown> = {}) => ({ ...providerClaims('github-actions'), aud: TEST_AUDIENCE, ...extra });

beforeAll(async () => {
  [moto, issuer, other] = await Promise.all([startMoto(), startIssuer(), startIssuer()]);
  tb = await startTestBroker({
    moto,
    issuer,
    issuerSettings: { test: { preset: 'github-actions', max_token_age_seconds: 600 } },
    wrapSts: (inner) => (sts = new CountingIssuer(inner)),
    config: { deny: [{ issuer: 'test', claims: { actor: 'mallory' } }] },
    roles: {
      deploy: {
        arn: DEPLOY_ROLE_ARN,
        allow: [{ issuer: 'test', claims: { repository_owner_id: '9919', repository_id: '487920697' } }],
        deny: [{ claims: { event_name: 'pull_request_target' } }],
      },
    },
  });
});

afterAll(async () => {
  await tb?.close();
  await Promise.all([issuer?.close(), other?.close(), moto?.stop()]);
});

beforeEach(() => {
  stsCallsBefore = sts.calls.length;
});

/** Asserts the refusal: status, public code, audit reason, no credentials, STS untouched. */
function expectRefused(
  res: Awaited<ReturnType<typeof requestCredentials>>,
  status: number,
  code: string,
  reason?: string,
): void {
  expect(res.status).toBe(status);
  expect(res.body?.error?.code).toBe(code);
  expect(res.body.error.request_id).toBe(res.headers.get('x-request-id'));
  assertMatchesOpenApi('/v1/credentials', 'post', status, res.headers.get('content-type')!, res.body);
  expect(res.text).not.toMatch(/AccessKeyId|SecretAccessKey|SessionToken/);
  expect(sts.calls.length).toBe(stsCallsBefore);
  if (reason) {
    const record = tb.audit.find((r) => r.request_id === res.body.error.request_id);
    expect(record, 'an audit record for the refusal').toBeDefined();
    expect(record).toMatchObject({ decision: 'deny', code, reason });
    expect(record!.access_key_id).toBeUndefined();
  }
}

describe('token verification failures are 401 with a coarse public code and a precise audited reason', () => {
  it('refuses a token whose signature does not verify', async () => {
    const token = await issuer.sign(claims());
    const [h, p, s] = token.split('.') as [string, string, string];
    const forged = Buffer.from(JSON.stringify({ ...claims(), iss: issuer.url, exp: Math.floor(Date.now() / 1000) + 300, iat: Math.floor(Date.now() / 1000), repository_id: '1' })).toString('base64url');
    expect(p).not.toBe(forged);
    expectRefused(await requestCredentials(tb.url, `${h}.${forged}.${s}`), 401, 'ERR_TOKEN_INVALID', 'ERR_TOKEN_SIGNATURE');
  });

  it('refuses a token signed by a key of another issuer', async () => {
    const foreign = await other.sign(claims({ iss: issuer.url }));
    expectRefused(await requestCredentials(tb.url, foreign), 401, 'ERR_TOKEN_INVALID', 'ERR_TOKEN_KID_UNKNOWN');
  });

  it('refuses a token signed by another key that reuses a published kid', async () => {
    const impostor = await issuer.unpublishedKey();
    const token = await issuer.sign(claims(), { key: impostor, kid: issuer.keys[0]!.kid });
    expectRefused(await requestCredentials(tb.url, token), 401, 'ERR_TOKEN_INVALID', 'ERR_TOKEN_SIGNATURE');
  });

  it('refuses an unsigned token (alg: none)', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = new UnsecuredJWT({ ...claims(), iss: issuer.url, iat: now, exp: now + 300 }).encode();
    expectRefused(await requestCredentials(tb.url, token), 401, 'ERR_TOKEN_INVALID', 'ERR_TOKEN_ALGORITHM');
  });

  it('refuses HS256 signed with the issuer public key as the HMAC secret', async () => {
    const now = Math.floor(Date.now() / 1000);
    const pem = await exportSPKI(createPublicKey({ key: issuer.keys[0]!.publicJwk as never, format: 'jwk' }) as never);
    const token = await new SignJWT({ ...claims(), iss: issuer.url, iat: now, exp: now + 300 })
      .setProtectedHeader({ alg: 'HS256', kid: issuer.keys[0]!.kid })
      .sign(new TextEncoder().encode(pem));
    expectRefused(await requestCredentials(tb.url, token), 401, 'ERR_TOKEN_INVALID', 'ERR_TOKEN_ALGORITHM');
  });

  it('refuses an expired token with ERR_TOKEN_EXPIRED', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await issuer.sign(claims({ iat: now - 400, nbf: now - 400, exp: now - 100 }));
    expectRefused(await requestCredentials(tb.url, token), 401, 'ERR_TOKEN_EXPIRED', 'ERR_TOKEN_EXPIRED');
  });

  it('refuses a token whose nbf is in the future', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await issuer.sign(claims({ nbf: now + 600, exp: now + 900 }));
    expectRefused(await requestCredentials(tb.url, token), 401, 'ERR_TOKEN_INVALID', 'ERR_TOKEN_NOT_YET_VALID');
  });

  it('refuses a token issued longer ago than max_token_age even though exp is later', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await issuer.sign(claims({ iat: now - 3600, nbf: now - 3600, exp: now + 3600 }));
    expectRefused(await requestCredentials(tb.url, token), 401, 'ERR_TOKEN_EXPIRED', 'ERR_TOKEN_TOO_OLD');
  });

  it('refuses a token without iat (the age cannot be enforced)', async () => {
    const token = await issuer.sign(claims({ iat: null }));
    expectRefused(await requestCredentials(tb.url, token), 401, 'ERR_TOKEN_INVALID', 'ERR_TOKEN_CLAIMS_MISSING');
  });

  it('refuses a token for another audience (e.g. GitHub default audience)', async () => {
    const token = await issuer.sign(claims({ aud: 'https://github.com/octo-org' }));
    expectRefused(await requestCredentials(tb.url, token), 401, 'ERR_TOKEN_INVALID', 'ERR_TOKEN_AUDIENCE');
  });

  it('refuses a token typed as something other than a JWT identity token (at+jwt)', async () => {
    const token = await issuer.sign(claims(), { typ: 'at+jwt' });
    expectRefused(await requestCredentials(tb.url, token), 401, 'ERR_TOKEN_INVALID', 'ERR_TOKEN_TYPE');
  });

  it('accepts a token without typ, and with typ "JWT" in any case', async () => {
    expect((await requestCredentials(tb.url, await issuer.sign(claims(), { typ: null }))).status).toBe(200);
    expect((await requestCredentials(tb.url, await issuer.sign(claims(), { typ: 'jwt' }))).status).toBe(200);
    stsCallsBefore = sts.calls.length;
  });

  it('refuses a token minted for several audiences (the issuer does not allow it)', async () => {
    const token = await issuer.sign(claims({ aud: [TEST_AUDIENCE, 'https://another-service.example.com'] }));
    expectRefused(await requestCredentials(tb.url, token), 401, 'ERR_TOKEN_INVALID', 'ERR_TOKEN_AUDIENCE');
  });

  it('refuses a token whose sub is not a string', async () => {
    expectRefused(await requestCredentials(tb.url, await issuer.sign(claims({ sub: 487920697 }))), 401, 'ERR_TOKEN_INVALID', 'ERR_TOKEN_CLAIM_TYPE');
    expectRefused(await requestCredentials(tb.url, await issuer.sign(claims({ sub: ['a', 'b'] }))), 401, 'ERR_TOKEN_INVALID', 'ERR_TOKEN_CLAIM_TYPE');
  });

  it('refuses a token without sub', async () => {
    expectRefused(await requestCredentials(tb.url, await issuer.sign(claims({ sub: null }))), 401, 'ERR_TOKEN_INVALID', 'ERR_TOKEN_CLAIMS_MISSING');
  });

  it('refuses a token that is not in canonical base64url (padding, or spare bits set)', async () => {
    const token = await issuer.sign(claims());
    const [h, p, s] = token.split('.') as [string, string, string];
    expectRefused(await requestCredentials(tb.url, `${h}.${p}.${s}==`), 401, 'ERR_TOKEN_INVALID', 'ERR_TOKEN_MALFORMED');
    expectRefused(await requestCredentials(tb.url, `${h}=.${p}.${s}`), 401, 'ERR_TOKEN_INVALID', 'ERR_TOKEN_MALFORMED');
    expectRefused(await requestCredentials(tb.url, withSpareBits(token)), 401, 'ERR_TOKEN_INVALID', 'ERR_TOKEN_MALFORMED');
    expectRefused(await requestCredentials(tb.url, `${h}.${p}.${s}+`), 401, 'ERR_TOKEN_INVALID', 'ERR_TOKEN_MALFORMED');
  });

  it('refuses a token from an issuer that is not on the allowlist', async () => {
    const token = await other.sign(claims());
    expectRefused(await requestCredentials(tb.url, token), 401, 'ERR_TOKEN_INVALID', 'ERR_TOKEN_ISSUER_UNKNOWN');
  });

  it('refuses an unknown kid after exactly one refetch of the JWKS', async () => {
    await new Promise((r) => setTimeout(r, 1100)); // let the 1 s cooldown of the test config pass
    const fetches = issuer.jwksFetches;
    const stranger = await issuer.unpublishedKey();
    const res = await requestCredentials(tb.url, await issuer.sign(claims(), { key: stranger }));
    expectRefused(res, 401, 'ERR_TOKEN_INVALID', 'ERR_TOKEN_KID_UNKNOWN');
    expect(issuer.jwksFetches).toBe(fetches + 1);
  });

  it('refuses garbage that is not a JWT', async () => {
    expectRefused(await requestCredentials(tb.url, 'not-a-jwt'), 401, 'ERR_TOKEN_INVALID', 'ERR_TOKEN_MALFORMED');
  });

  it('refuses a replayed token: accepted once, then ERR_TOKEN_REPLAYED', async () => {
    const token = await issuer.sign(claims());
    const first = await requestCredentials(tb.url, token);
    expect(first.status).toBe(200);
    stsCallsBefore = sts.calls.length;
    expectRefused(await requestCredentials(tb.url, token), 401, 'ERR_TOKEN_REPLAYED', 'ERR_TOKEN_REPLAYED');
  });

  it('treats a token without jti as one-time too (by its signed content)', async () => {
    const token = await issuer.sign(claims({ jti: null }));
    expect((await requestCredentials(tb.url, token)).status).toBe(200);
    stsCallsBefore = sts.calls.length;
    expectRefused(await requestCredentials(tb.url, token), 401, 'ERR_TOKEN_REPLAYED', 'ERR_TOKEN_REPLAYED');
  });
});

describe('policy refusals are 403 ERR_POLICY_DENIED; the audit says why', () => {
  it('denies a repository that no binding allows, with per-condition detail in the audit', async () => {
    const res = await requestCredentials(tb.url, await issuer.sign(claims({ repository_id: '1' })));
    expectRefused(res, 403, 'ERR_POLICY_DENIED', 'ERR_POLICY_NO_MATCH');
    const record = tb.audit.find((r) => r.request_id === res.body.error.request_id)!;
    expect(JSON.stringify(record.detail)).toContain('"mismatch":"value"');
    expect(res.text).not.toContain('repository_id'); // the caller learns nothing about the policy
  });

  it('denies by a role deny rule even when a binding allows', async () => {
    const res = await requestCredentials(tb.url, await issuer.sign(claims({ event_name: 'pull_request_target' })));
    expectRefused(res, 403, 'ERR_POLICY_DENIED', 'ERR_POLICY_DENY_RULE');
  });

  it('denies by a global deny rule even when a binding allows', async () => {
    const res = await requestCredentials(tb.url, await issuer.sign(claims({ actor: 'mallory' })));
    expectRefused(res, 403, 'ERR_POLICY_DENIED', 'ERR_POLICY_DENY_RULE');
  });

  it('denies an unknown role without revealing that it does not exist', async () => {
    const res = await requestCredentials(tb.url, await issuer.sign(claims()), { role: 'admin' });
    expectRefused(res, 403, 'ERR_POLICY_DENIED', 'ERR_POLICY_UNKNOWN_ROLE');
  });

  it('burns the token on a denial: the same token cannot probe another role', async () => {
    const token = await issuer.sign(claims());
    expectRefused(await requestCredentials(tb.url, token, { role: 'admin' }), 403, 'ERR_POLICY_DENIED');
    expectRefused(await requestCredentials(tb.url, token), 401, 'ERR_TOKEN_REPLAYED');
  });
});

describe('malformed requests', () => {
  it('refuses a missing Authorization header', async () => {
    expectRefused(await requestCredentials(tb.url, undefined), 401, 'ERR_TOKEN_MISSING');
  });

  it('refuses an Authorization header that is not Bearer', async () => {
    const res = await fetch(`${tb.url}/v1/credentials`, {
      method: 'POST',
      headers: { authorization: 'Basic dXNlcjpwYXNz', 'content-type': 'application/json' },
      body: '{"role":"deploy"}',
    });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('ERR_TOKEN_MISSING');
  });

  it('refuses malformed JSON with 400', async () => {
    expectRefused(await requestCredentials(tb.url, await issuer.sign(claims()), undefined, { rawBody: '{"role":' }), 400, 'ERR_BAD_REQUEST');
  });

  it('refuses a body that is not JSON with 415', async () => {
    expectRefused(await requestCredentials(tb.url, await issuer.sign(claims()), undefined, { contentType: 'text/plain', rawBody: 'role=deploy' }), 415, 'ERR_UNSUPPORTED_MEDIA_TYPE');
  });

  it('refuses an oversized body with 413', async () => {
    const big = JSON.stringify({ role: 'deploy', pad: 'x'.repeat(64 * 1024) });
    expectRefused(await requestCredentials(tb.url, await issuer.sign(claims()), undefined, { rawBody: big }), 413, 'ERR_PAYLOAD_TOO_LARGE');
  });

  it('refuses unknown body fields, a bad role name and an out-of-range duration', async () => {
    for (const body of [{ role: 'deploy', admin: true }, { role: '../etc' }, { role: 'deploy', duration_seconds: 60 }, {}, []]) {
      expectRefused(await requestCredentials(tb.url, await issuer.sign(claims()), body), 400, 'ERR_BAD_REQUEST');
    }
  });

  it('refuses an unknown output format', async () => {
    expectRefused(await requestCredentials(tb.url, await issuer.sign(claims()), { role: 'deploy' }, { format: 'yaml' }), 400, 'ERR_BAD_REQUEST');
  });
});
