// Buildkite's agent API: POST ${BUILDKITE_AGENT_ENDPOINT}/jobs/$BUILDKITE_JOB_ID/oidc/tokens with
// "Authorization: Token $BUILDKITE_AGENT_ACCESS_TOKEN", body {"audience": "X"} → 201 {"token": "<jwt>"}.
import { randomBytes, randomUUID } from 'node:crypto';
import { startProviderServer, type Mint, type ProviderServer } from './server.js';

export interface BuildkiteAgentApi extends ProviderServer {
  env: Record<string, string>;
}

export async function startBuildkiteAgentApi(mint: Mint): Promise<BuildkiteAgentApi> {
  const agentToken = randomBytes(20).toString('hex');
  const jobId = randomUUID();
  const srv = await startProviderServer(async (req) => {
    if (req.method !== 'POST' || req.path !== `/v3/jobs/${jobId}/oidc/tokens`) return { status: 404, body: { message: 'No job found' } };
    if (req.headers.authorization !== `Token ${agentToken}`) return { status: 401, body: { message: 'Unauthorized' } };
    let body: { audience?: unknown };
    try {
      body = JSON.parse(req.body) as { audience?: unknown };
    } catch {
      return { status: 400, body: { message: 'invalid JSON' } };
    }
    const audience = typeof body.audience === 'string' ? body.audience : undefined;
    return { status: 201, body: { token: await mint(audience) } };
  });
  return Object.assign(srv, {
    env: {
      BUILDKITE: 'true',
      BUILDKITE_AGENT_ENDPOINT: `${srv.origin}/v3`,
      BUILDKITE_JOB_ID: jobId,
      BUILDKITE_AGENT_ACCESS_TOKEN: agentToken,
    },
  });
}
