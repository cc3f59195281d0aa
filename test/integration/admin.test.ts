// The admin API on its own listener: authentication on every route, revocation enforced on the
// next exchange, "revoke active sessions" through IAM (moto), audit query and tamper detection.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { IAMClient, CreateRoleCommand, GetRolePolicyCommand } from '@aws-sdk/client-iam';
import { startMoto, type Moto } from '../support/moto.js';
import { startIssuer, type TestIssuer } from '../support/oidc-issuer.js';
import { startTestBroker, requestCredentials, TEST_AUDIENCE, type TestBroker } from '../support/broker.js';
import { providerClaims } from '../support/fixtures.js';
import { CountingIssuer } from '../support/sts-spy.js';
import { MemoryStore } from '../../server/src/store/memory.js';
import { hashAdminToken } from '../../server/src/admin/auth.js';

let moto: Moto;
let issuer: TestIssuer;
let tb: TestBroker;
let adminUrl: string;
let sts: CountingIssuer;
const ops = new MemoryStore();
const adminToken = randomBytes(24).toString('base64url');
const claims = (extra: Record<string, unknown> = {}) => ({ ...providerClaims('github-actions'), aud: TEST_AUDIENCE, ...extra });

const admin = async (method: string, path: string, body?: unknown, token: string | null = adminToken) => {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${adminUrl}${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as any) : undefined };
};

beforeAll(async () => {
  [moto, issuer] = await Promise.all([startMoto(), startIssuer()]);
  const iam = new IAMClient({ region: 'us-east-1', endpoint: moto.endpoint, credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'x' } });
  await iam.send(new CreateRoleCommand({ RoleName: 'deploy', Path: '/credbroker/', AssumeRolePolicyDocument: '{"Version":"2012-10-17","Statement":[]}' }));
  iam.destroy();
  tb = await startTestBroker({
    moto,
    issuer,
    issuerSettings: { test: { preset: 'github-actions' } },
    wrapSts: (inner) => (sts = new CountingIssuer(inner)),
    config: {
      audit: { sink: 'store' },
      revocation: { poll_ms: 100 },
      admin: { enabled: true, tokens: [{ name: 'alice', sha256: hashAdminToken(adminToken) }] },
    },
    brokerOptions: { ops },
  });
  process.env.AWS_ACCESS_KEY_ID ??= 'AKIDTEST';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'x';
  adminUrl = (await tb.broker.listenAdmin(0, '127.0.0.1')).url;
});
afterAll(async () => {
  await tb?.close();
  await Promise.all([issuer?.close(), moto?.stop()]);
});

const ROUTES: Array<[string, string]> = [
  ['GET', '/v1/admin/revocations'],
  ['POST', '/v1/admin/revocations'],
  ['DELETE', '/v1/admin/revocations/x'],
  ['POST', '/v1/admin/roles/deploy/revoke-sessions'],
  ['POST', '/v1/admin/policy/explain'],
  ['POST', '/v1/admin/token/decode'],
  ['GET', '/v1/admin/audit'],
  ['GET', '/v1/admin/audit/verify'],
  ['GET', '/v1/admin/config/validate'],
  ['GET', '/v1/admin/keys'],
  ['POST', '/v1/admin/rotate'],
  ['GET', '/nothing-here'],
];

describe('admin authentication', () => {
  it.each(ROUTES)('%s %s answers 401 without credentials, with a wrong token, and with a non-Bearer scheme', async (method, path) => {
    for (const token of [null, 'wrong-token', `${adminToken}x`]) {
      const r = await admin(method, path, method === 'GET' ? undefined : {}, token);
      expect(r.status).toBe(401);
      expect(r.body.error.code).toBe('ERR_UNAUTHORIZED');
    }
    const basic = await fetch(`${adminUrl}${path}`, { method, headers: { authorization: `Basic ${Buffer.from(`alice:${adminToken}`).toString('base64')}` } });
    expect(basic.status).toBe(401);
  });

  it('is never reachable on the public port', async () => {
    for (const [method, path] of ROUTES.slice(0, 4)) {
      const res = await fetch(`${tb.url}${path}`, { method, headers: { authorization: `Bearer ${adminToken}` } });
      expect(res.status).toBe(404);
    }
  });
});

describe('revocation', () => {
  it('blocks an identity by claims on its next exchange (403 ERR_REVOKED, STS not called), and unrevoke lifts it', async () => {
    expect((await requestCredentials(tb.url, await issuer.sign(claims()))).status).toBe(200);
    const created = await admin('POST', '/v1/admin/revocations', {
      issuer: 'test',
      claims: { repository_id: '487920697' },
      reason: 'leaked workflow',
      expires_in_seconds: 3600,
    });
    expect(created.status).toBe(201);
    const id = created.body.revocation.id as string;
    expect(created.body.revocation).toMatchObject({ created_by: 'alice', reason: 'leaked workflow', issuer: 'test' });
    await new Promise((r) => setTimeout(r, 300));
    const before = sts.calls.length;
    const refused = await requestCredentials(tb.url, await issuer.sign(claims()));
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('ERR_REVOKED');
    expect(sts.calls.length).toBe(before);
    expect(tb.audit.length).toBe(0); // audit goes to the store in this setup
    const [record] = await ops.queryAudit({ decision: 'deny', limit: 1 });
    expect(record!.record).toMatchObject({ code: 'ERR_REVOKED', detail: { revocation_id: id } });
    // Another repository is not affected.
    expect((await requestCredentials(tb.url, await issuer.sign(claims({ repository_id: '5' })))).status).toBe(403); // no binding
    expect((await admin('GET', '/v1/admin/revocations')).body.revocations.map((r: { id: string }) => r.id)).toEqual([id]);
    expect((await admin('DELETE', `/v1/admin/revocations/${id}`)).status).toBe(204);
    await new Promise((r) => setTimeout(r, 300));
    expect((await requestCredentials(tb.url, await issuer.sign(claims()))).status).toBe(200);
    expect((await admin('DELETE', `/v1/admin/revocations/${id}`)).status).toBe(404);
  });

  it('blocks by session name or source identity pattern', async () => {
    const created = await admin('POST', '/v1/admin/revocations', { source_identity: 'gh-487920697-*', reason: 'actor compromised' });
    expect(created.status).toBe(201);
    await new Promise((r) => setTimeout(r, 300));
    expect((await requestCredentials(tb.url, await issuer.sign(claims()))).body.error.code).toBe('ERR_REVOKED');
    await admin('DELETE', `/v1/admin/revocations/${created.body.revocation.id}`);
  });

  it('refuses a revocation that says nothing about whom it blocks, or names an unknown issuer', async () => {
    const empty = await admin('POST', '/v1/admin/revocations', { reason: 'oops' });
    expect(empty.status).toBe(400);
    expect(empty.body.error.message).toMatch(/claims, session_name or source_identity/);
    const unknown = await admin('POST', '/v1/admin/revocations', { issuer: 'nope', claims: { a: 'b' }, reason: 'x' });
    expect(unknown.status).toBe(400);
  });

  it('revokes the active sessions of a role by attaching AWSRevokeOlderSessions through IAM', async () => {
    const r = await admin('POST', '/v1/admin/roles/deploy/revoke-sessions');
    expect(r.status).toBe(200);
    const iam = new IAMClient({ region: 'us-east-1', endpoint: moto.endpoint, credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'x' } });
    const policy = await iam.send(new GetRolePolicyCommand({ RoleName: 'deploy', PolicyName: 'AWSRevokeOlderSessions' }));
    iam.destroy();
    const doc = JSON.parse(decodeURIComponent(policy.PolicyDocument!)) as { Statement: Array<{ Effect: string; Condition: { DateLessThan: Record<string, string> } }> };
    expect(doc.Statement[0]!.Effect).toBe('Deny');
    const before = Date.parse(doc.Statement[0]!.Condition.DateLessThan['aws:TokenIssueTime']!);
    expect(Math.abs(before - Date.now())).toBeLessThan(10_000);
    expect((await admin('POST', '/v1/admin/roles/nope/revoke-sessions')).status).toBe(404);
  });
});

describe('audit trail', () => {
  it('answers queries by subject, role and decision', async () => {
    const r = await admin('GET', `/v1/admin/audit?decision=allow&role=deploy&subject=${encodeURIComponent('repo:octo-org/octo-repo:environment:production')}`);
    expect(r.status).toBe(200);
    expect(r.body.records.length).toBeGreaterThanOrEqual(2);
    for (const rec of r.body.records) expect(rec).toMatchObject({ decision: 'allow', role: 'deploy', event: 'exchange' });
    const adminEvents = await admin('GET', '/v1/admin/audit?event=admin.revoke');
    expect(adminEvents.body.records[0]).toMatchObject({ admin: 'alice', event: 'admin.revoke' });
  });

  it('verifies the chain, and detects a modified, a deleted and an inserted record', async () => {
    const ok = await admin('GET', '/v1/admin/audit/verify');
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ ok: true, problems: [] });
    expect(ok.body.checked).toBe(ops.auditRows.length);

    const rows = ops.auditRows;
    const original = structuredClone(rows[1]!);
    rows[1]!.record.decision = 'allow';
    let r = await admin('GET', '/v1/admin/audit/verify');
    expect(r.status).toBe(409);
    expect(r.body.problems).toContainEqual({ kind: 'modified', seq: 2 });
    rows[1] = original;

    const removed = rows.splice(2, 1)[0]!;
    r = await admin('GET', '/v1/admin/audit/verify');
    expect(r.body.problems).toContainEqual({ kind: 'gap', afterSeq: 2, nextSeq: 4 });
    rows.splice(2, 0, removed);

    const forged = { ...structuredClone(rows[3]!), seq: 4 };
    rows.splice(3, 0, forged);
    r = await admin('GET', '/v1/admin/audit/verify');
    expect(r.body.ok).toBe(false);
    rows.splice(3, 1);
    expect((await admin('GET', '/v1/admin/audit/verify')).body.ok).toBe(true);

    const head = ops.auditRows.at(-1)!.hash;
    ops.auditRows.pop();
    r = await admin('GET', `/v1/admin/audit/verify?head=${head}`);
    expect(r.body.problems).toContainEqual(expect.objectContaining({ kind: 'head-mismatch', expected: head }));
  });
});

describe('policy tools over the API', () => {
  it('explains a decision per binding and per condition', async () => {
    const r = await admin('POST', '/v1/admin/policy/explain', { issuer: 'test', role: 'deploy', claims: claims({ repository_id: '1' }) });
    expect(r.status).toBe(200);
    expect(r.body.decision).toMatchObject({ effect: 'deny', reason: 'ERR_POLICY_NO_MATCH' });
    expect(r.body.allow[0].conditions[0]).toMatchObject({ claim: 'repository_id', matched: false, actual: '"1"' });
  });

  it('decodes a token without verifying it', async () => {
    const r = await admin('POST', '/v1/admin/token/decode', { token: await issuer.sign(claims()) });
    expect(r.body).toMatchObject({ verified: false, header: { alg: 'RS256' }, claims: { repository_id: '487920697' } });
  });
});
