// CircleCI project environment variables, API v2 (POST /project/{slug}/envvar creates or replaces).
import type { CircleciSinkConfig } from '../config-schema.js';
import type { NewAccessKey } from '../secret.js';
import { fencedFetch, httpError, requireToken, trimSlash } from './http.js';
import type { PushFence, Sink, SinkContext } from './types.js';

export function circleciSinkId(cfg: CircleciSinkConfig): string {
  return `circleci:${cfg.project_slug}`;
}

export function createCircleciSink(cfg: CircleciSinkConfig, ctx: SinkContext, id = circleciSinkId(cfg)): Sink {
  // The slug's slashes are path separators in CircleCI's API (project/gh/org/repo/envvar).
  const base = `${trimSlash(cfg.base_url)}/project/${cfg.project_slug.split('/').map(encodeURIComponent).join('/')}`;
  const headers = () => ({
    'Circle-Token': requireToken(id, ctx.env, cfg.token_env),
    accept: 'application/json',
    'content-type': 'application/json',
  });

  const setVar = async (name: string, value: string, fence: PushFence) => {
    const res = await fencedFetch(id, `set ${name}`, `${base}/envvar`, { method: 'POST', headers: headers(), body: JSON.stringify({ name, value }) }, ctx, fence);
    await res.body?.cancel();
    if (res.status !== 201 && res.status !== 200) throw httpError(id, `set ${name}`, res.status);
  };

  return {
    id,
    type: 'circleci',
    async preflight(signal) {
      const res = await fencedFetch(id, 'list envvars', `${base}/envvar`, { headers: headers() }, ctx, signal ? { signal } : {});
      await res.body?.cancel();
      if (!res.ok) throw httpError(id, 'list envvars', res.status);
    },
    async deliver(key: NewAccessKey, fence = {}) {
      await setVar(cfg.secret_access_key_name, key.secretAccessKey.reveal(), fence);
      await setVar(cfg.access_key_id_name, key.accessKeyId, fence);
    },
  };
}
