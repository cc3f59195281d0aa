// Azure Pipelines' OIDC endpoint: POST "$SYSTEM_OIDCREQUESTURI?api-version=7.1&serviceConnectionId=<id>"
// with "Authorization: Bearer $SYSTEM_ACCESSTOKEN" → {"oidcToken": "<jwt>"}. The audience is fixed by
// Azure (api://AzureADTokenExchange); the job cannot choose it.
import { randomBytes, randomUUID } from 'node:crypto';
import { startProviderServer, type Mint, type ProviderServer } from './server.js';

export interface AzureOidcEndpoint extends ProviderServer {
  env: Record<string, string>;
  serviceConnectionId: string;
}

export async function startAzureOidcEndpoint(mint: Mint): Promise<AzureOidcEndpoint> {
  const accessToken = randomBytes(24).toString('hex');
  const serviceConnectionId = randomUUID();
  const oidcPath = `/${randomUUID()}/${randomUUID()}/_apis/distributedtask/hubs/build/plans/${randomUUID()}/jobs/${randomUUID()}/oidctoken`;
  const srv = await startProviderServer(async (req) => {
    if (req.method !== 'POST' || req.path !== oidcPath) return { status: 404, body: { message: 'not found' } };
    if (req.query.get('api-version') !== '7.1') return { status: 400, body: { message: 'api-version missing' } };
    if (req.query.get('serviceConnectionId') !== serviceConnectionId) return { status: 404, body: { message: 'service connection not found' } };
    if (req.headers.authorization !== `Bearer ${accessToken}`) return { status: 401, body: { message: 'unauthorized' } };
    return { status: 200, body: { oidcToken: await mint('api://AzureADTokenExchange') } };
  });
  return Object.assign(srv, {
    serviceConnectionId,
    env: {
      TF_BUILD: 'True',
      SYSTEM_OIDCREQUESTURI: `${srv.origin}${oidcPath}`,
      SYSTEM_ACCESSTOKEN: accessToken,
    },
  });
}
