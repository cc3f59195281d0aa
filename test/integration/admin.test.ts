// The admin API on its own listener: authentication on every route (failed attempts audited,
// never the token), scopes (a read token gets 403 on every route that changes state), every
// request audited with the admin's name, reads included; revocation enforced on the next
// exchange, "revoke active sessions" through IAM (moto), config validation of the file on disk,
// the audit trail and its keyed chain with checkpoints. Every response is checked against the
// admin OpenAPI document (server/admin-openapi.json).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { IAMClient, CreateRoleCommand, GetRolePolicyCommand } from '@aws-sdk/client-iam';
import { startMoto, type Moto } from '../support/moto.js';
import { startIssuer, type TestIssuer } from '../support/oidc-issuer.js';
import { defaultRoles, startTestBroker, requestCredentials, TEST_AUDIENCE, type TestBroker } from '../support/broker.js';
import { providerClaims } from '../support/fixtures.js';
import { CountingIssuer } from '../support/sts-spy.js';
import { adminOpenapi, assertMatchesAdminOpenApi } from '../support/openapi.js';
import { MemoryStore } from '../../server/src/store/memory.js';
import { hashAdminToken } from '../../server/src/admin/auth.js';
import { FAILED_AUTH_AUDITS_PER_MINUTE, listAdminRoutes, openApiPath } from '../../server/src/admin/app.js';
import { configFileValidator, rotationRoutes } from '../../server/src/cli/serve.js';
import { chainHash } from '../../server/src/core/audit-chain.js';

let moto: Moto;
let issuer: TestIssuer;
let tb: TestBroker;
let adminUrl: string;
let sts: CountingIssuer;
const ops = new MemoryStore();
const dir = mkdtempSync(path.join(tmpdir(), 'credbroker-admin-'));
const configFile = path.join(dir, 'credbroker.yaml');
const checkpointFile = path.join(dir, 'checkpoints.jsonl');
const tokens = { alice: randomBytes(24).toString('base64url'), bob: randomBytes(24).toString('base64url'), carol: randomBytes(24).toString('base64url') };
const claims = (extra: Record<string, unknown> = {}) => ({ ...providerClaims('github-actions'), aud: TEST_AUDIENCE, ...extra });

/** Concrete path → the OpenAPI path template it belongs to. */
function templateOf(p: string): string | undefined {
  return Object.keys(adminOpenapi.paths).find((t) => new RegExp(`^${t.replace(/\{[^}]+\}/g, '[^/]+')}$`).test(p));
}

interface AdminResponse {
  status: number;
  body: any;
  requestId: string;
  headers: Headers;
}

/** Calls the admin API; every documented response is checked against the admin OpenAPI document. */
const admin = async (method: string, p: string, body?: unknown, token: string | null = tokens.alice): Promise<AdminResponse> => {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${adminUrl}${p}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const text = await res.text();
  const parsed = text ? (JSON.parse(text) as unknown) : undefined;
  const template = templateOf(p.split('?')[0]!);
  if (template && adminOpenapi.paths[template]![method.toLowerCase()]) {
    assertMatchesAdminOpenApi(template, method.toLowerCase(), res.status, res.headers.get('content-type') ?? '', parsed);
  }
  return { status: res.status, body: parsed, requestId: res.headers.get('x-request-id')!, headers: res.headers };
};

const records = (event?: string) => ops.auditRows.map((r) => r.record).filter((r) => event === undefined || r.event === event);

beforeAll(async () => {
  [moto, issuer] = await Promise.all([startMoto(), startIssuer()]);
  const iam = new IAMClient({ region: 'us-east-1', endpoint: moto.endpoint, credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'x' } });
  await iam.send(new CreateRoleCommand({ RoleName: 'deploy', Path: '/credbroker/', AssumeRolePolicyDocument: '{"Version":"2012-10-17","Statement":[]}' }));
  iam.destroy();
  process.env.CREDBROKER_ADMIN_TEST_AUDIT_KEY = randomBytes(32).toString('base64');
  writeFileSync(configFile, `issuers: { gh: { preset: github-actions, audiences: [${TEST_AUDIENCE}] } }\nroles: { r: { arn: "arn:aws:iam::123456789012:role/r", allow: [{ issuer: gh, claims: { repository_id: "1" } }] } }\n`);
  tb = await startTestBroker({
    moto,
    issuer,
    issuerSettings: { test: { preset: 'github-actions' } },
    wrapSts: (inner) => (sts = new CountingIssuer(inner)),
    // `ghost` is in the policy but not in IAM (moto): revoking its sessions is refused by IAM.
    roles: { ...defaultRoles(), ghost: { arn: 'arn:aws:iam::123456789012:role/credbroker/ghost', allow: [{ issuer: 'test', claims: { repository_id: '2' } }] } },
    config: {
      audit: { sink: 'store', hmac_key_env: 'CREDBROKER_ADMIN_TEST_AUDIT_KEY', checkpoints: { sink: 'file', path: checkpointFile } },
      revocation: { poll_ms: 100 },
      admin: {
        enabled: true,
        tokens: [
          { name: 'alice', sha256: hashAdminToken(tokens.alice), scopes: ['operate'] },
          { name: 'bob', sha256: hashAdminToken(tokens.bob), scopes: ['read'] },
          { name: 'carol', sha256: hashAdminToken(tokens.carol) }, // no scopes: read only
        ],
      },
    },
    brokerOptions: {
      ops,
      admin: {
        validateConfigFile: configFileValidator(configFile),
        // The rotation routes as `serve` mounts them (this config has no rotation: section).
        extraRoutes: rotationRoutes({
          get config() {
            return tb.broker.config();
          },
          store: ops,
          broker: () => tb.broker,
        }),
      },
    },
  });
  process.env.AWS_ACCESS_KEY_ID ??= 'AKIDTEST';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'x';
  adminUrl = (await tb.broker.listenAdmin(0, '127.0.0.1')).url;
});
afterAll(async () => {
  await tb?.close();
  await Promise.all([issuer?.close(), moto?.stop()]);
});

const ROUTES = () =>
  listAdminRoutes({
    config: tb.broker.config,
    store: ops,
    audit: tb.broker.audit,
    logger: tb.broker.logger,
    now: () => new Date(),
    revokeSessions: async () => ({ roleName: '', before: '' }),
    extraRoutes: rotationRoutes({ config: tb.broker.config(), store: ops, broker: () => tb.broker }),
  });
const concrete = (p: string) => `/v1/admin${p.replace(/:name/, 'deploy').replace(/:id/, 'x')}`;

describe('admin authentication', () => {
  it('audits failed attempts with the reason and never the presented token, and caps how many one address can write', async () => {
    const wrong = `wrong-${randomBytes(8).toString('hex')}`;
    const before = records('admin.auth_failed').length;
    expect((await admin('GET', '/v1/admin/revocations', undefined, null)).status).toBe(401);
    expect((await admin('GET', '/v1/admin/revocations', undefined, wrong)).status).toBe(401);
    const basic = await fetch(`${adminUrl}/v1/admin/audit`, { headers: { authorization: `Basic ${Buffer.from(`alice:${tokens.alice}`).toString('base64')}` } });
    expect(basic.status).toBe(401);
    const failed = records('admin.auth_failed').slice(before);
    expect(failed.map((r) => r.reason)).toEqual(['missing', 'unknown-token', 'not-bearer']);
    expect(failed[0]).toMatchObject({ method: 'GET', path: '/v1/admin/revocations', client_ip: expect.stringMatching(/127\.0\.0\.1/) });
    expect(failed[0]!.admin).toBeUndefined();
    const trail = JSON.stringify(ops.auditRows);
    for (const secret of [wrong, tokens.alice, Buffer.from(`alice:${tokens.alice}`).toString('base64')]) expect(trail).not.toContain(secret);
    // Beyond the cap, failures are still refused but no longer written one by one (the audit
    // chain is shared with every exchange: a flood must not slow it down).
    for (let i = 0; i < FAILED_AUTH_AUDITS_PER_MINUTE + 10; i++) expect((await admin('GET', '/v1/admin/audit', undefined, wrong)).status).toBe(401);
    expect(records('admin.auth_failed').length - before).toBe(FAILED_AUTH_AUDITS_PER_MINUTE);
  });

  it('answers 401 on every route without credentials, with a wrong token, and with a non-Bearer scheme', async () => {
    for (const route of [...ROUTES(), { method: 'GET' as const, path: '/nothing-here' }]) {
      const p = concrete(route.path);
      for (const token of [null, 'wrong-token', `${tokens.alice}x`]) {
        const r = await admin(route.method, p, route.method === 'GET' ? undefined : {}, token);
        expect(r.status, `${route.method} ${p}`).toBe(401);
        expect(r.body.error.code).toBe('ERR_UNAUTHORIZED');
      }
    }
  });

  it('is never reachable on the public port', async () => {
    for (const route of ROUTES()) {
      const res = await fetch(`${tb.url}${concrete(route.path)}`, { method: route.method, headers: { authorization: `Bearer ${tokens.alice}` } });
      expect(res.status).toBe(404);
    }
  });
});

describe('scopes', () => {
  it('refuses every state-changing route to a read token and to a token without scopes (403), and changes nothing', async () => {
    const operate = ROUTES().filter((r) => r.access === 'operate');
    expect(operate.map((r) => `${r.method} ${r.path}`).sort()).toEqual(['DELETE /revocations/:id', 'POST /revocations', 'POST /roles/:name/revoke-sessions', 'POST /rotate'].sort());
    const revocationsBefore = await ops.listRevocations(new Date(), { includeExpired: true });
    for (const token of [tokens.bob, tokens.carol]) {
      for (const route of operate) {
        const body = route.path === '/revocations' ? { issuer: 'test', claims: { repository_id: '487920697' }, reason: 'should not happen' } : route.path === '/rotate' ? { all: true } : {};
        const r = await admin(route.method, concrete(route.path), body, token);
        expect(r.status, `${route.method} ${route.path}`).toBe(403);
        expect(r.body.error.code).toBe('ERR_FORBIDDEN');
        const [denied] = records('admin.forbidden').filter((x) => x.request_id === r.requestId);
        expect(denied).toMatchObject({ admin: token === tokens.bob ? 'bob' : 'carol', route: openApiPath(route.path), required_scope: 'operate', scopes: ['read'] });
      }
    }
    expect(await ops.listRevocations(new Date(), { includeExpired: true })).toEqual(revocationsBefore);
    expect(records('admin.revoke_sessions')).toEqual([]);
  });

  it('lets a read token use every read route', async () => {
    const statuses: Record<string, number> = {};
    for (const route of ROUTES().filter((r) => r.access === 'read')) {
      const body = route.path === '/policy/explain' ? { issuer: 'test', role: 'deploy', claims: claims() } : route.path === '/token/decode' ? { token: await issuer.sign(claims()) } : undefined;
      statuses[`${route.method} ${route.path}`] = (await admin(route.method, concrete(route.path), body, tokens.bob)).status;
    }
    expect(statuses).toEqual({
      'GET /openapi.json': 200,
      'GET /revocations': 200,
      'POST /policy/explain': 200,
      'POST /token/decode': 200,
      'GET /audit': 200,
      'GET /audit/verify': 200,
      'GET /config/validate': 200,
      'GET /keys': 404, // this config has no rotation: section
    });
  });

  it('documents every route with its scope in the admin OpenAPI document, and nothing else', async () => {
    const documented = Object.entries(adminOpenapi.paths).flatMap(([p, ops]) => Object.entries(ops).map(([m, op]) => `${m.toUpperCase()} ${p} ${op['x-credbroker-scope']}`));
    expect(ROUTES().map((r) => `${r.method} ${openApiPath(r.path)} ${r.access}`).sort()).toEqual(documented.sort());
    const served = await admin('GET', '/v1/admin/openapi.json', undefined, tokens.bob);
    expect(served.body).toEqual(adminOpenapi);
  });
});

describe('every admin request is audited with the admin name, before it runs', () => {
  it('records reads and actions, with the route, and never the body of a token decode', async () => {
    const jwt = await issuer.sign(claims());
    const calls = [
      await admin('GET', '/v1/admin/revocations?all=true', undefined, tokens.bob),
      await admin('POST', '/v1/admin/token/decode', { token: jwt }, tokens.carol),
      await admin('GET', '/v1/admin/audit?event=exchange&limit=5', undefined, tokens.bob),
      await admin('DELETE', '/v1/admin/revocations/no-such-id', undefined, tokens.alice),
    ];
    const [list, decode, query, missing] = calls;
    const byRequest = (r: AdminResponse) => records().filter((x) => x.request_id === r.requestId);
    expect(byRequest(list!)).toEqual([
      expect.objectContaining({ event: 'admin.request', admin: 'bob', access: 'read', route: '/v1/admin/revocations', method: 'GET', query: { all: 'true' } }),
    ]);
    expect(byRequest(decode!)).toEqual([expect.objectContaining({ event: 'admin.request', admin: 'carol', route: '/v1/admin/token/decode' })]);
    expect(byRequest(query!)[0]).toMatchObject({ admin: 'bob', query: { event: 'exchange', limit: '5' } });
    // A failed action: the request, then its failure.
    expect(byRequest(missing!).map((x) => [x.event, x.admin])).toEqual([
      ['admin.request', 'alice'],
      ['admin.failed', 'alice'],
    ]);
    expect(byRequest(missing!)[1]).toMatchObject({ code: 'ERR_NOT_FOUND', status: 404, route: '/v1/admin/revocations/{id}' });
    expect(JSON.stringify(ops.auditRows)).not.toContain(jwt);
  });

  it('answers a malformed body with 400 and an unknown method on a known path with 405, both audited', async () => {
    const res = await fetch(`${adminUrl}/v1/admin/policy/explain`, { method: 'POST', headers: { authorization: `Bearer ${tokens.bob}`, 'content-type': 'application/json' }, body: '{"claims":' });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('ERR_BAD_REQUEST');
    const put = await admin('PUT', '/v1/admin/revocations', {}, tokens.alice);
    expect(put.status).toBe(405);
    expect(put.headers.get('allow')).toBe('GET, HEAD, POST');
    expect(records().filter((x) => x.request_id === put.requestId)).toEqual([expect.objectContaining({ event: 'admin.failed', admin: 'alice', code: 'ERR_METHOD_NOT_ALLOWED' })]);
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
    expect(records().filter((x) => x.request_id === created.requestId).map((x) => x.event)).toEqual(['admin.request', 'admin.revoke']);
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
    expect(records('admin.revoke_sessions').at(-1)).toMatchObject({ admin: 'alice', role: 'deploy' });
    expect((await admin('POST', '/v1/admin/roles/nope/revoke-sessions')).status).toBe(404);
  });

  it('answers 502 ERR_IAM_REJECTED, with nothing of IAM\'s message, when IAM refuses to revoke a role\'s sessions', async () => {
    const r = await admin('POST', '/v1/admin/roles/ghost/revoke-sessions');
    expect([r.status, r.body.error.code]).toEqual([502, 'ERR_IAM_REJECTED']);
    expect(r.body.error.message).toBe('AWS IAM refused the request.');
    expect(records().filter((x) => x.request_id === r.requestId).map((x) => x.event)).toEqual(['admin.request', 'admin.failed']);
  });

  it('lets an operate token reach rotation, which answers 404 when the config has no rotation: section', async () => {
    const r = await admin('POST', '/v1/admin/rotate', { all: true });
    expect(r.status).toBe(404);
    expect(records().filter((x) => x.request_id === r.requestId).map((x) => x.event)).toEqual(['admin.request', 'admin.failed']);
  });
});

describe('config validation', () => {
  it('validates the config file on disk as a reload would, without applying it', async () => {
    const ok = await admin('GET', '/v1/admin/config/validate', undefined, tokens.bob);
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ ok: true, file: configFile, problems: [] });
    writeFileSync(
      configFile,
      [
        `issuers: { gh: { preset: github-actions, audiences: [${TEST_AUDIENCE}] } }`,
        'roles: { r: { arn: "arn:aws:iam::123456789012:role/r", allow: [{ issuer: nope, claims: { repository_id: "1" } }] } }',
        `admin: { enabled: true, host: 0.0.0.0, tokens: [{ name: x, sha256: ${'a'.repeat(64)} }] }`,
      ].join('\n'),
    );
    const bad = await admin('GET', '/v1/admin/config/validate', undefined, tokens.bob);
    expect(bad.status).toBe(200);
    expect(bad.body.ok).toBe(false);
    expect(bad.body.problems).toEqual([expect.stringMatching(/^roles\.r\.allow\[0\]\.issuer: /), expect.stringMatching(/^admin\.host: "0\.0\.0\.0" is not a loopback address/)]);
    expect(tb.broker.config().policy.roles.has('deploy')).toBe(true); // nothing applied
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

  it('keys every record, and verifies them against the checkpoints', async () => {
    const key = tb.broker.auditKeys.current!;
    expect(ops.auditRows.every((r) => r.keyId === key.id)).toBe(true);
    await tb.broker.checkpoints!.checkpoint(true);
    const ok = await admin('GET', '/v1/admin/audit/verify');
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ ok: true, problems: [], legacy: null, keyed: { from: 1, keyIds: [key.id] } });
    expect(ok.body.checked).toBe(ops.auditRows.length);
    // The checkpoints this broker wrote, in memory and in its checkpoint file.
    expect(ok.body.checkpoints.valid).toBeGreaterThanOrEqual(4);
    expect(ok.body.checkpoints.read).toBe(ok.body.checkpoints.valid);
  });

  it('detects a modified, a deleted and an inserted record, and a tail rechained without the key', async () => {
    const rows = ops.auditRows;
    const original = structuredClone(rows[1]!);
    rows[1]!.record.decision = 'allow';
    let r = await admin('GET', '/v1/admin/audit/verify');
    expect(r.status).toBe(409);
    expect(r.body.problems).toContainEqual(expect.objectContaining({ kind: 'modified', seq: 2, message: 'record 2: content does not match the stored hash (modified, or rewritten with another key)' }));
    rows[1] = original;

    const removed = rows.splice(2, 1)[0]!;
    r = await admin('GET', '/v1/admin/audit/verify');
    expect(r.body.problems).toContainEqual(expect.objectContaining({ kind: 'gap', afterSeq: 2, nextSeq: 4 }));
    rows.splice(2, 0, removed);

    const forged = { ...structuredClone(rows[3]!), seq: 4 };
    rows.splice(3, 0, forged);
    r = await admin('GET', '/v1/admin/audit/verify');
    expect(r.body.ok).toBe(false);
    rows.splice(3, 1);
    expect((await admin('GET', '/v1/admin/audit/verify')).body.ok).toBe(true);

    // Rechain everything from record 5 as legacy SHA-256: what a writer without the key can do.
    const snapshot = structuredClone(rows);
    for (let i = 4; i < rows.length; i++) {
      rows[i]!.prevHash = rows[i - 1]!.hash;
      rows[i]!.keyId = null;
      rows[i]!.hash = chainHash(rows[i]!.seq, rows[i]!.prevHash, rows[i]!.record);
    }
    r = await admin('GET', '/v1/admin/audit/verify');
    expect(r.status).toBe(409);
    expect(r.body.problems).toContainEqual(expect.objectContaining({ kind: 'unkeyed-after-keyed', seq: 5 }));
    rows.splice(0, rows.length, ...snapshot);
    expect((await admin('GET', '/v1/admin/audit/verify')).body.ok).toBe(true);
  });

  it('detects the deletion of the newest records with the last checkpoint, and a head hash noted elsewhere', async () => {
    await tb.broker.checkpoints!.checkpoint(true);
    const head = ops.auditRows.at(-1)!;
    ops.auditRows.splice(-3, 3);
    const r = await admin('GET', `/v1/admin/audit/verify?head=${head.hash}`);
    expect(r.status).toBe(409);
    // The verify request itself is recorded first, so the chain regrew by one: head.seq - 2.
    expect(r.body.problems).toContainEqual(expect.objectContaining({ kind: 'head-behind-checkpoint', headSeq: head.seq - 2, checkpointSeq: head.seq }));
    expect(r.body.problems).toContainEqual(expect.objectContaining({ kind: 'head-mismatch', expected: head.hash }));
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
