// GitLab CI/CD project variables through @gitbeaker/rest: always masked, protected by default.
// Upsert: update the variable for its environment scope, create it when GitLab says 404.
import { Gitlab } from '@gitbeaker/rest';
import type { GitlabSinkConfig } from '../config-schema.js';
import { RotationError } from '../errors.js';
import type { NewAccessKey } from '../secret.js';
import { httpError, networkError, requireToken } from './http.js';
import type { Sink, SinkContext } from './types.js';

export function gitlabSinkId(cfg: GitlabSinkConfig): string {
  return `gitlab:${String(cfg.project)}:${cfg.environment_scope}`;
}

/** Status of a gitbeaker error. The error's cause holds the request (with the value): never kept. */
function statusOf(err: unknown): number | undefined {
  const cause = (err as { cause?: { response?: { status?: unknown } } }).cause;
  const status = cause?.response?.status;
  if (typeof status === 'number') return status;
  // GitbeakerRetryError: gave up after retrying 429/502.
  if (err instanceof Error && err.name === 'GitbeakerRetryError') return 503;
  return undefined;
}

export function createGitlabSink(cfg: GitlabSinkConfig, ctx: SinkContext, id = gitlabSinkId(cfg)): Sink {
  const api = () =>
    new Gitlab({
      host: cfg.base_url.replace(/\/+$/, ''),
      token: requireToken(id, ctx.env, cfg.token_env),
      queryTimeout: ctx.timeoutMs,
    });

  const wrap = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof RotationError) throw err;
      const status = statusOf(err);
      if (status !== undefined) throw httpError(id, what, status);
      throw networkError(id, what, err);
    }
  };

  const upsert = async (gl: InstanceType<typeof Gitlab>, name: string, value: string) => {
    const options = { masked: true, protected: cfg.protected, environmentScope: cfg.environment_scope, raw: true };
    try {
      await gl.ProjectVariables.edit(cfg.project, name, value, { ...options, filter: { environment_scope: cfg.environment_scope } });
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
      await gl.ProjectVariables.create(cfg.project, name, value, options);
    }
  };

  return {
    id,
    type: 'gitlab',
    async preflight() {
      const gl = api();
      await wrap('list variables', () => gl.ProjectVariables.all(cfg.project, { perPage: 1, maxPages: 1 }));
    },
    async deliver(key: NewAccessKey) {
      const gl = api();
      await wrap(`set variable ${cfg.secret_access_key_name}`, () => upsert(gl, cfg.secret_access_key_name, key.secretAccessKey.reveal()));
      await wrap(`set variable ${cfg.access_key_id_name}`, () => upsert(gl, cfg.access_key_id_name, key.accessKeyId));
    },
  };
}
