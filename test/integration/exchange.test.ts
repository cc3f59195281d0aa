// The credential exchange over real sockets: a local OIDC issuer (discovery + JWKS over HTTP),
// the broker's HTTP API, and moto as STS. Success means the credentials work against moto.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callerArn, startMoto, type Moto } from '../support/moto.js';
import { startIssuer, type TestIssuer } from '../support/oidc-issuer.js';
import { startTestBroker, requestCredentials, TEST_AUDIENCE, DEPLOY_ROLE_ARN, type TestBroker } from '../support/broker.js';
import { providerClaims } from '../support/fixtures.js';
import { CountingIssuer } from '../support/sts-spy.js';
import { assertMatchesOpenApi } from '../support/openapi.js';

let moto: Moto;
let github: TestIssuer;
let gitlab: TestIssuer;
let tb: TestBroker;
let sts: CountingIssuer;

const githubClaims = () => ({ ...providerClaims('github-actions'), aud: TEST_AUDIENCE });
const gitlabClaims = () => ({ ...providerClaims('gitlab'), aud: TEST_AUDIENCE });

beforeAll(async () => {
  [moto, github, gitlab] = await Promise.all([startMoto(), startIssuer(), startIssuer()]);
  tb = await startTestBroker({
    moto,
    issuer: { github, gitlab },
    issuerSettings: { github: { preset: 'github-actions' }, gitlab: { preset: 'gitlab', max_token_age_seconds: 3600 } },
    wrapSts: (inner) => (sts = new CountingIssuer(inner)),
    roles: {
      deploy: {
        arn: DEPLOY_ROLE_ARN,
        max_duration_seconds: 7200,
        transitive_tag_keys: ['repository_id'],
        allow: [
          { issuer: 'github', claims: { repository_owner_id: '9919', repository_id: '487920697', ref: 'refs/heads/main', ref_protected: true } },
          { issuer: 'gitlab', claims: { project_id: '20', ref_protected: 'true' } },
        ],
        deny: [{ issuer: 'github', claims: { event_name: 'pull_request_target' } }],
      },
    },
  });
});

afterAll(async () => {
  await tb?.close();
  await Promise.all([github?.close(), gitlab?.close(), moto?.stop()]);
});


describe('a successful exchange', () => {
  it('returns credentials that work against STS as the assumed role, with a session name that traces to the job', async () => {
    const token = await github.sign(githubClaims());
    const res = await requestCredentials(tb.url, token);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    assertMatchesOpenApi('/v1/credentials', 'post', 200, res.headers.get('content-type')!, res.body);
    expect(res.body.RoleSessionName).toBe('gh-487920697-16055869479-1');
    expect(res.body.SourceIdentity).toBe('gh-487920697-583231');
    expect(res.body.RoleArn).toBe(DEPLOY_ROLE_ARN);
    expect(res.body.RequestId).toBe(res.headers.get('x-request-id'));
    const arn = await callerArn(moto, res.body);
    expect(arn).toBe('arn:aws:sts::123456789012:assumed-role/deploy/gh-487920697-16055869479-1');
  });

  it('sends STS the session tags, transitive keys, source identity and duration from the policy', async () => {
    const before = sts.calls.length;
    const token = await github.sign(githubClaims());
    const res = await requestCredentials(tb.url, token, { role: 'deploy', duration_seconds: 1800 });
    expect(res.status).toBe(200);
    const call = sts.calls[before]!;
    expect(call.durationSeconds).toBe(1800);
    expect(call.sourceIdentity).toBe('gh-487920697-583231');
    expect(call.transitiveTagKeys).toEqual(['repository_id']);
    expect(call.tags).toEqual(
      expect.arrayContaining([
        { Key: 'provider', Value: 'github-actions' },
        { Key: 'repository_id', Value: '487920697' },
        { Key: 'ref', Value: 'refs/heads/main' },
      ]),
    );
    const expiresIn = (Date.parse(res.body.Expiration) - Date.now()) / 1000;
    expect(expiresIn).toBeGreaterThan(1700);
    expect(expiresIn).toBeLessThanOrEqual(1800);
  });

  it('serves a GitLab job by project id with its own naming', async () => {
    const res = await requestCredentials(tb.url, await gitlab.sign(gitlabClaims()));
    expect(res.status).toBe(200);
    expect(res.body.RoleSessionName).toBe('gl-20-302');
    expect(await callerArn(moto, res.body)).toBe('arn:aws:sts::123456789012:assumed-role/deploy/gl-20-302');
  });

  it('answers in the AWS credential_process format (Version 1)', async () => {
    const res = await requestCredentials(tb.url, await github.sign(githubClaims()), { role: 'deploy' }, { format: 'credential-process' });
    expect(res.status).toBe(200);
    assertMatchesOpenApi('/v1/credentials', 'post', 200, res.headers.get('content-type')!, res.body);
    expect(Object.keys(res.body).sort()).toEqual(['AccessKeyId', 'Expiration', 'SecretAccessKey', 'SessionToken', 'Version']);
    expect(res.body.Version).toBe(1);
    expect(await callerArn(moto, res.body)).toMatch(/assumed-role\/deploy\//);
  });

  it('answers in shell env format that sh can eval', async () => {
    const res = await requestCredentials(tb.url, await github.sign(githubClaims()), { role: 'deploy' }, { format: 'env' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const { execFileSync } = await import('node:child_process');
    const out = execFileSync('sh', ['-c', `${res.text}\nprintf '%s\\n%s\\n%s' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" "$AWS_SESSION_TOKEN"`], { encoding: 'utf8' });
    const [AccessKeyId, SecretAccessKey, SessionToken] = out.split('\n') as [string, string, string];
    expect(await callerArn(moto, { AccessKeyId, SecretAccessKey, SessionToken })).toMatch(/assumed-role\/deploy\//);
  });

  it('writes one audit record with the decision, never the token or the secret', async () => {
    const token = await github.sign(githubClaims());
    const res = await requestCredentials(tb.url, token);
    const record = tb.audit.find((r) => r.request_id === res.body.RequestId)!;
    expect(record).toMatchObject({
      event: 'exchange',
      decision: 'allow',
      issuer: 'github',
      subject: 'repo:octo-org/octo-repo:environment:production',
      role: 'deploy',
      role_arn: DEPLOY_ROLE_ARN,
      binding: 'roles.deploy.allow[0]',
      session_name: 'gh-487920697-16055869479-1',
      source_identity: 'gh-487920697-583231',
      access_key_id: res.body.AccessKeyId,
    });
    expect(record.claims).toMatchObject({ repository_id: '487920697', repository_owner_id: '9919', ref: 'refs/heads/main', run_id: '16055869479' });
    expect(record.token_sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(typeof record.latency_ms).toBe('number');
    const text = JSON.stringify(record);
    expect(text).not.toContain(token);
    expect(text).not.toContain(res.body.SecretAccessKey);
    expect(text).not.toContain(res.body.SessionToken);
  });
});

describe('operational endpoints', () => {
  it('reports health, readiness with every issuer loaded, metrics and the OpenAPI document', async () => {
    const health = await fetch(`${tb.url}/healthz`);
    expect(health.status).toBe(200);
    assertMatchesOpenApi('/healthz', 'get', 200, 'application/json', await health.json());
    const ready = await fetch(`${tb.url}/readyz`);
    const readyBody = await ready.json();
    expect(ready.status).toBe(200);
    expect(readyBody).toEqual({ status: 'ready', issuers: { github: true, gitlab: true } });
    assertMatchesOpenApi('/readyz', 'get', 200, 'application/json', readyBody);
    const metrics = await (await fetch(tb.metricsUrl)).text();
    expect(metrics).toMatch(/credbroker_exchanges_total\{outcome="issued",code="OK"\} \d+/);
    expect(metrics).toMatch(/credbroker_sts_assume_role_seconds_count\{outcome="success"\} \d+/);
    expect(metrics).toMatch(/credbroker_jwks_refresh_total\{issuer="github",outcome="success",trigger="start"\} 1/);
    const doc = (await (await fetch(`${tb.url}/openapi.json`)).json()) as { openapi: string };
    expect(doc.openapi).toBe('3.1.0');
  });

  it('answers unknown paths with a coded 404', async () => {
    const res = await fetch(`${tb.url}/nope`);
    expect(res.status).toBe(404);
    const body = (await res.json()) as { error: { code: string } };
    expect(body.error.code).toBe('ERR_NOT_FOUND');
    assertMatchesOpenApi('/v1/credentials', 'post', 404, 'application/json', body);
  });
});

describe('methods', () => {
  it('answers an unsupported method on a known path with 405 and Allow', async () => {
    for (const [method, path, allowed] of [
      ['DELETE', '/healthz', 'GET, HEAD'],
      ['POST', '/openapi.json', 'GET, HEAD'],
      ['GET', '/v1/credentials', 'POST'],
      ['PUT', '/v1/credentials', 'POST'],
    ] as const) {
      const res = await fetch(`${tb.url}${path}`, { method });
      expect(res.status).toBe(405);
      expect(res.headers.get('allow')).toBe(allowed);
      const body = (await res.json()) as { error: { code: string } };
      expect(body.error.code).toBe('ERR_METHOD_NOT_ALLOWED');
      assertMatchesOpenApi('/v1/credentials', 'post', 405, 'application/json', body);
    }
  });
});
