// GitHub Actions' ID-token endpoint: GET "$ACTIONS_ID_TOKEN_REQUEST_URL&audience=<aud>" with
// "Authorization: bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN" → {"value": "<jwt>"}. The request URL
// already carries a query string (api-version), so the audience is appended with '&'.
import { randomBytes } from 'node:crypto';
import { startProviderServer, type Mint, type ProviderServer } from './server.js';

export interface GithubTokenEndpoint extends ProviderServer {
  /** The environment a job with `permissions: id-token: write` sees. */
  env: Record<string, string>;
}

export async function startGithubTokenEndpoint(mint: Mint): Promise<GithubTokenEndpoint> {
  const requestToken = randomBytes(24).toString('hex');
  const tokenPath = '/_apis/distributedtask/hubs/build/plans/7f3c/jobs/9a1e/idtoken';
  const srv = await startProviderServer(async (req) => {
    if (req.method !== 'GET' || req.path !== tokenPath) return { status: 404, body: { message: 'not found' } };
    if (req.query.get('api-version') !== '2.0' || !req.rawQuery.startsWith('api-version=2.0&')) {
      return { status: 400, body: { message: 'api-version missing' } };
    }
    if ((req.headers.authorization ?? '').toLowerCase() !== `bearer ${requestToken}`) return { status: 401, body: { message: 'bad bearer' } };
    return { status: 200, body: { count: 1, value: await mint(req.query.get('audience') ?? undefined) } };
  });
  return Object.assign(srv, {
    env: {
      GITHUB_ACTIONS: 'true',
      ACTIONS_ID_TOKEN_REQUEST_URL: `${srv.origin}${tokenPath}?api-version=2.0`,
      ACTIONS_ID_TOKEN_REQUEST_TOKEN: requestToken,
    },
  });
}
