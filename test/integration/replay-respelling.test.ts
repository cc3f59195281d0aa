// One-time tokens cannot be re-spelled into new credentials. CircleCI, Bitbucket, Jenkins and
// Azure DevOps tokens carry no jti, so the ledger must recognise a spent token in every form that
// still verifies: `=` padding, spare low bits in the last base64url character (both refused as
// non-canonical), and the second valid ECDSA signature (r, n − s), which is canonical and does
// verify — it is caught because the ledger keys on what the signature covers. Against moto, on one
// broker, concurrently, and across two brokers sharing one PostgreSQL store.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callerArn, startMoto, type Moto } from '../support/moto.js';
import { startIssuer, type TestIssuer } from '../support/oidc-issuer.js';
import { startTestBroker, requestCredentials, TEST_AUDIENCE, DEPLOY_ROLE_ARN, type TestBroker } from '../support/broker.js';
import { providerClaims } from '../support/fixtures.js';
import { CountingIssuer } from '../support/sts-spy.js';
import { ecdsaTwin, withPadding, withSpareBits } from '../support/respell.js';
import { createTestSchema, type TestSchema } from './store/pg.js';
import { PostgresStore } from '../../server/src/store/postgres.js';

let moto: Moto;
let issuer: TestIssuer;

// A CircleCI-shaped token: no jti, like the four providers above. Two such tokens signed in the
// same second with the same claims are the same token; each test token gets its own job claim.
let job = 0;
const claims = () => ({ ...providerClaims('circleci'), aud: TEST_AUDIENCE, jti: null, 'oidc.circleci.com/job-id': `job-${++job}` });
const roles = {
  deploy: { arn: DEPLOY_ROLE_ARN, allow: [{ issuer: 'test', claims: { 'oidc.circleci.com/project-id': 'dabad1c2-62eb-48a6-87ab-fc6ae6589281' } }] },
};
const settings = { test: { preset: 'circleci' as const, org_id: '00f45056-5918-4171-9222-b538c76ed3f8', max_token_age_seconds: 3600 } };

beforeAll(async () => {
  [moto, issuer] = await Promise.all([startMoto(), startIssuer()]);
  await issuer.rotate({ alg: 'ES256', retire: true });
});
afterAll(async () => {
  await Promise.all([issuer?.close(), moto?.stop()]);
});


describe('a spent token without jti, re-spelled', () => {
  let tb: TestBroker;
  let sts: CountingIssuer;
  beforeAll(async () => {
    tb = await startTestBroker({ moto, issuer, issuerSettings: settings, roles, wrapSts: (inner) => (sts = new CountingIssuer(inner)) });
  });
  afterAll(async () => tb?.close());

  it('gets credentials once, and nothing for any other spelling of the same token', async () => {
    const token = await issuer.sign(claims());
    expect(JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).jti).toBeUndefined();
    const first = await requestCredentials(tb.url, token);
    expect(first.status).toBe(200);
    expect(await callerArn(moto, first.body)).toMatch(/:assumed-role\/deploy\//);
    const calls = sts.calls.length;

    const spellings: Array<[string, string, string]> = [
      ['padding', withPadding(token), 'ERR_TOKEN_MALFORMED'],
      ['spare bits', withSpareBits(token), 'ERR_TOKEN_MALFORMED'],
      ['(r, n - s)', ecdsaTwin(token), 'ERR_TOKEN_REPLAYED'],
    ];
    for (const [name, spelling, reason] of spellings) {
      expect(spelling, name).not.toBe(token);
      const res = await requestCredentials(tb.url, spelling);
      expect([name, res.status, res.body?.error?.code]).toEqual([name, 401, reason === 'ERR_TOKEN_REPLAYED' ? 'ERR_TOKEN_REPLAYED' : 'ERR_TOKEN_INVALID']);
      expect(res.text).not.toMatch(/AccessKeyId|SecretAccessKey|SessionToken/);
      const record = tb.audit.find((r) => r.request_id === res.body.error.request_id);
      expect(record).toMatchObject({ decision: 'deny', reason });
      expect(record!.access_key_id).toBeUndefined();
    }
    expect(sts.calls.length).toBe(calls);
  });

  it('the ECDSA twin verifies on its own: used first, it spends the original', async () => {
    const token = await issuer.sign(claims());
    expect((await requestCredentials(tb.url, ecdsaTwin(token))).status).toBe(200);
    const res = await requestCredentials(tb.url, token);
    expect([res.status, res.body.error.code]).toEqual([401, 'ERR_TOKEN_REPLAYED']);
  });

  it('gives exactly one 200 to 24 concurrent requests mixing the token and its twin', async () => {
    const token = await issuer.sign(claims());
    const twin = ecdsaTwin(token);
    const calls = sts.calls.length;
    const results = await Promise.all(Array.from({ length: 24 }, (_, i) => requestCredentials(tb.url, i % 2 === 0 ? token : twin)));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(results.filter((r) => r.status !== 200).every((r) => r.status === 401 && r.body.error.code === 'ERR_TOKEN_REPLAYED')).toBe(true);
    expect(sts.calls.length).toBe(calls + 1);
  });
});

describe('across two brokers on one PostgreSQL store', () => {
  let db: TestSchema;
  let a: TestBroker;
  let b: TestBroker;
  const stores: PostgresStore[] = [];
  beforeAll(async () => {
    db = await createTestSchema('respell');
    const open = async () => {
      const s = await PostgresStore.open(db.url);
      stores.push(s);
      return s;
    };
    const config = { store: { driver: 'postgres' as const, postgres_url: db.url } };
    a = await startTestBroker({ moto, issuer, issuerSettings: settings, roles, config, brokerOptions: { ops: await open() } });
    b = await startTestBroker({ moto, issuer, issuerSettings: settings, roles, config, brokerOptions: { ops: await open() } });
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await Promise.all(stores.map((s) => s.close()));
    await db?.drop();
  });

  it('refuses at B the twin of a token spent at A', async () => {
    const token = await issuer.sign(claims());
    expect((await requestCredentials(a.url, token)).status).toBe(200);
    const res = await requestCredentials(b.url, ecdsaTwin(token));
    expect([res.status, res.body.error.code]).toEqual([401, 'ERR_TOKEN_REPLAYED']);
  });

  it('gives exactly one 200 when both spellings hit both brokers at once', async () => {
    const token = await issuer.sign(claims());
    const twin = ecdsaTwin(token);
    const results = await Promise.all(
      Array.from({ length: 16 }, (_, i) => requestCredentials(i % 2 === 0 ? a.url : b.url, i % 4 < 2 ? token : twin)),
    );
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    expect(results.filter((r) => r.status !== 200).every((r) => r.body.error.code === 'ERR_TOKEN_REPLAYED')).toBe(true);
  });
});
