// Travis CI repository environment variables, API v3: always private (`public: false`). Upsert:
// list the repository's variables, PATCH the one with the name (and branch), else POST a new one.
import type { TravisSinkConfig } from '../config-schema.js';
import { RotationError } from '../errors.js';
import type { NewAccessKey } from '../secret.js';
import { fencedFetch, httpError, requireToken, trimSlash } from './http.js';
import type { PushFence, Sink, SinkContext } from './types.js';

export function travisSinkId(cfg: TravisSinkConfig): string {
  return `travis:${cfg.repo}${cfg.branch ? `@${cfg.branch}` : ''}`;
}

interface TravisEnvVar {
  id: string;
  name: string;
  branch: string | null;
}

export function createTravisSink(cfg: TravisSinkConfig, ctx: SinkContext, id = travisSinkId(cfg)): Sink {
  const repoUrl = `${trimSlash(cfg.base_url)}/repo/${encodeURIComponent(cfg.repo)}`;
  const headers = () => ({
    'Travis-API-Version': '3',
    authorization: `token ${requireToken(id, ctx.env, cfg.token_env)}`,
    accept: 'application/json',
    'content-type': 'application/json',
    'user-agent': 'credbroker-rotation',
  });

  const list = async (fence: PushFence): Promise<TravisEnvVar[]> => {
    const res = await fencedFetch(id, 'list env vars', `${repoUrl}/env_vars`, { headers: headers() }, ctx, fence);
    if (!res.ok) {
      await res.body?.cancel();
      throw httpError(id, 'list env vars', res.status);
    }
    const body = (await res.json().catch(() => undefined)) as { env_vars?: TravisEnvVar[] } | undefined;
    if (!body || !Array.isArray(body.env_vars)) throw new RotationError('ERR_SINK_HTTP', `sink ${id}: unexpected env_vars response`, { retryable: true });
    return body.env_vars;
  };

  const setVar = async (existing: TravisEnvVar[], name: string, value: string, fence: PushFence) => {
    const branch = cfg.branch ?? null;
    const found = existing.find((v) => v.name === name && (v.branch ?? null) === branch);
    const res = found
      ? await fencedFetch(
          id,
          `update ${name}`,
          `${repoUrl}/env_var/${encodeURIComponent(found.id)}`,
          { method: 'PATCH', headers: headers(), body: JSON.stringify({ 'env_var.value': value, 'env_var.public': false }) },
          ctx,
          fence,
        )
      : await fencedFetch(
          id,
          `create ${name}`,
          `${repoUrl}/env_vars`,
          {
            method: 'POST',
            headers: headers(),
            body: JSON.stringify({ 'env_var.name': name, 'env_var.value': value, 'env_var.public': false, 'env_var.branch': branch }),
          },
          ctx,
          fence,
        );
    await res.body?.cancel();
    if (!res.ok) throw httpError(id, `${found ? 'update' : 'create'} ${name}`, res.status);
  };

  return {
    id,
    type: 'travis',
    async preflight(signal) {
      await list(signal ? { signal } : {});
    },
    async deliver(key: NewAccessKey, fence = {}) {
      const existing = await list(fence);
      await setVar(existing, cfg.secret_access_key_name, key.secretAccessKey.reveal(), fence);
      await setVar(existing, cfg.access_key_id_name, key.accessKeyId, fence);
    },
  };
}
