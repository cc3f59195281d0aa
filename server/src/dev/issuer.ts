// The dev issuer: a real OIDC issuer on loopback for `credbroker dev`, so the whole exchange runs
// on a laptop. It serves discovery and JWKS like a CI provider, and mints CI-shaped tokens:
// - GitHub Actions' token-request protocol: GET <ACTIONS_ID_TOKEN_REQUEST_URL>&audience=AUD with
//   `Authorization: bearer <ACTIONS_ID_TOKEN_REQUEST_TOKEN>` → {"value": "<jwt>"}, so the real
//   client works against it unchanged;
// - GET /token?audience=AUD&<claim>=<value>…: a token with those claims changed (same bearer).
// It exists only in this module, started only by `credbroker dev`; no config key can enable it.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair, type JWK } from 'jose';

/** The demo repository the dev tokens come from (GitHub Actions claim shapes, made-up ids). */
export const DEV_REPOSITORY = { owner: 'credbroker-dev', name: 'demo', ownerId: '100000001', id: '100000002' } as const;

export interface DevIssuer {
  url: string;
  /** The value for ACTIONS_ID_TOKEN_REQUEST_URL. */
  tokenRequestUrl: string;
  /** The value for ACTIONS_ID_TOKEN_REQUEST_TOKEN (required by every token endpoint). */
  requestToken: string;
  close(): Promise<void>;
}

function githubClaims(issuer: string, audience: string, run: number, overrides: Record<string, string>): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000);
  const repo = `${DEV_REPOSITORY.owner}/${DEV_REPOSITORY.name}`;
  const ref = overrides.ref ?? 'refs/heads/main';
  return {
    iss: issuer,
    aud: audience,
    jti: randomUUID(),
    iat: now,
    nbf: now - 5,
    exp: now + 300,
    sub: `repo:${repo}:ref:${ref}`,
    repository: repo,
    repository_id: DEV_REPOSITORY.id,
    repository_owner: DEV_REPOSITORY.owner,
    repository_owner_id: DEV_REPOSITORY.ownerId,
    repository_visibility: 'private',
    ref,
    ref_type: 'branch',
    ref_protected: 'true',
    event_name: 'push',
    workflow: 'Deploy',
    workflow_ref: `${repo}/.github/workflows/deploy.yml@${ref}`,
    job_workflow_ref: `${repo}/.github/workflows/deploy.yml@${ref}`,
    run_id: String(4_000_000 + run),
    run_number: String(run),
    run_attempt: '1',
    actor: 'dev-user',
    actor_id: '100000003',
    runner_environment: 'github-hosted',
    ...overrides,
  };
}

export async function startDevIssuer(host = '127.0.0.1'): Promise<DevIssuer> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const kid = `dev-${randomBytes(4).toString('hex')}`;
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
  const requestToken = `dev-${randomBytes(24).toString('base64url')}`;
  let url = '';
  let runs = 0;

  const authorized = (header: string | undefined): boolean => {
    const presented = Buffer.from(/^bearer\s+(\S+)$/i.exec(header ?? '')?.[1] ?? '');
    const expected = Buffer.from(requestToken);
    return presented.length === expected.length && timingSafeEqual(presented, expected);
  };

  const server = http.createServer((req, res) => {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify(body));
    };
    const u = new URL(req.url ?? '/', url);
    if (req.method !== 'GET') return send(405, { error: 'method not allowed' });
    if (u.pathname === '/.well-known/openid-configuration') {
      return send(200, {
        issuer: url,
        jwks_uri: `${url}/.well-known/jwks`,
        response_types_supported: ['id_token'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['ES256'],
      });
    }
    if (u.pathname === '/.well-known/jwks') return send(200, { keys: [jwk] });
    if (u.pathname === '/github/token' || u.pathname === '/token') {
      if (!authorized(req.headers.authorization)) return send(401, { message: 'dev issuer: bearer ACTIONS_ID_TOKEN_REQUEST_TOKEN required' });
      const audience = u.searchParams.get('audience');
      if (!audience) return send(400, { message: 'dev issuer: audience is required' });
      const overrides: Record<string, string> = {};
      if (u.pathname === '/token') {
        for (const [k, v] of u.searchParams) if (!['audience', 'iss', 'aud', 'iat', 'nbf', 'exp', 'jti'].includes(k)) overrides[k] = v;
      }
      runs += 1;
      new SignJWT(githubClaims(url, audience, runs, overrides))
        .setProtectedHeader({ alg: 'ES256', kid, typ: 'JWT' })
        .sign(privateKey)
        .then((value) => send(200, { count: value.length, value }), () => send(500, { message: 'dev issuer: signing failed' }));
      return;
    }
    send(404, { message: 'not found' });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  return {
    url,
    tokenRequestUrl: `${url}/github/token?dev=1`,
    requestToken,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
