// GitLab CI/CD project variables (API v4): always masked, protected by default. Upsert: update the
// variable for its environment scope, create it when GitLab says 404. Plain fetch under the push
// fence, like the other HTTP sinks, so that a push can be stopped at its deadline.
import type { GitlabSinkConfig } from '../config-schema.js';
import type { NewAccessKey } from '../secret.js';
import { fencedFetch, httpError, requireToken, trimSlash } from './http.js';
import type { PushFence, Sink, SinkContext } from './types.js';

export function gitlabSinkId(cfg: GitlabSinkConfig): string {
  return `gitlab:${String(cfg.project)}:${cfg.environment_scope}`;
}

export function createGitlabSink(cfg: GitlabSinkConfig, ctx: SinkContext, id = gitlabSinkId(cfg)): Sink {
  const variables = `${trimSlash(cfg.base_url)}/api/v4/projects/${encodeURIComponent(String(cfg.project))}/variables`;
  const headers = () => ({
    'private-token': requireToken(id, ctx.env, cfg.token_env),
    accept: 'application/json',
    'content-type': 'application/json',
    'user-agent': 'credbroker-rotation',
  });

  const upsert = async (name: string, value: string, fence: PushFence) => {
    const what = `set variable ${name}`;
    const options = { masked: true, protected: cfg.protected, environment_scope: cfg.environment_scope, raw: true };
    const scope = `filter[environment_scope]=${encodeURIComponent(cfg.environment_scope)}`;
    const res = await fencedFetch(id, what, `${variables}/${encodeURIComponent(name)}?${scope}`, { method: 'PUT', headers: headers(), body: JSON.stringify({ value, ...options }) }, ctx, fence);
    await res.body?.cancel();
    if (res.ok) return;
    if (res.status !== 404) throw httpError(id, what, res.status);
    const created = await fencedFetch(id, what, variables, { method: 'POST', headers: headers(), body: JSON.stringify({ key: name, value, ...options }) }, ctx, fence);
    await created.body?.cancel();
    if (!created.ok) throw httpError(id, what, created.status);
  };

  return {
    id,
    type: 'gitlab',
    async preflight(signal) {
      const res = await fencedFetch(id, 'list variables', `${variables}?per_page=1`, { headers: headers() }, ctx, signal ? { signal } : {});
      await res.body?.cancel();
      if (!res.ok) throw httpError(id, 'list variables', res.status);
    },
    async deliver(key: NewAccessKey, fence = {}) {
      await upsert(cfg.secret_access_key_name, key.secretAccessKey.reveal(), fence);
      await upsert(cfg.access_key_id_name, key.accessKeyId, fence);
    },
  };
}
