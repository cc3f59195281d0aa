// GitHub Actions secrets (repository, environment or organization) through @octokit/rest. Values are
// sealed with the target's public key (libsodium sealed box), as GitHub requires. Octokit's requests
// go through fencedFetch: a timeout per request (Octokit has none of its own) and the push fence.
import { Octokit } from '@octokit/rest';
import sodium from 'libsodium-wrappers';
import type { GithubSinkConfig } from '../config-schema.js';
import { RotationError } from '../errors.js';
import type { NewAccessKey } from '../secret.js';
import { fencedFetch, httpError, networkError, requireToken } from './http.js';
import type { PushFence, Sink, SinkContext } from './types.js';

export function githubSinkId(cfg: GithubSinkConfig): string {
  const target = cfg.org !== undefined ? `org:${cfg.org}` : cfg.environment !== undefined ? `env:${cfg.owner}/${cfg.repo}/${cfg.environment}` : `repo:${cfg.owner}/${cfg.repo}`;
  return `github:${target}`;
}

/** Seals `value` for a GitHub public key (base64), returning base64 as the API expects. */
export async function sealForGithub(publicKeyB64: string, value: string): Promise<string> {
  await sodium.ready;
  const key = sodium.from_base64(publicKeyB64, sodium.base64_variants.ORIGINAL);
  return sodium.to_base64(sodium.crypto_box_seal(sodium.from_string(value), key), sodium.base64_variants.ORIGINAL);
}

const silentLog = { debug() {}, info() {}, warn() {}, error() {} };

export function createGithubSink(cfg: GithubSinkConfig, ctx: SinkContext, id = githubSinkId(cfg)): Sink {
  const client = (fence: PushFence): Octokit =>
    new Octokit({
      auth: requireToken(id, ctx.env, cfg.token_env),
      baseUrl: cfg.base_url.replace(/\/+$/, ''),
      userAgent: 'credbroker-rotation',
      log: silentLog,
      request: { fetch: (url: string, init: RequestInit) => fencedFetch(id, `${init.method ?? 'GET'} ${new URL(url).pathname}`, url, init, ctx, fence) },
    });

  const wrap = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof RotationError) throw err;
      // Octokit wraps what fencedFetch threw (deadline, network) as a RequestError with status 500.
      const cause = (err as { cause?: unknown }).cause;
      if (cause instanceof RotationError) throw cause;
      const status = (err as { status?: unknown }).status;
      if (typeof status === 'number' && status > 0) throw httpError(id, what, status);
      throw networkError(id, what, err);
    }
  };

  const publicKey = (gh: Octokit) =>
    wrap('get public key', async () => {
      if (cfg.org !== undefined) return (await gh.rest.actions.getOrgPublicKey({ org: cfg.org })).data;
      if (cfg.environment !== undefined) {
        return (await gh.rest.actions.getEnvironmentPublicKey({ owner: cfg.owner!, repo: cfg.repo!, environment_name: cfg.environment })).data;
      }
      return (await gh.rest.actions.getRepoPublicKey({ owner: cfg.owner!, repo: cfg.repo! })).data;
    });

  const put = (gh: Octokit, name: string, encrypted_value: string, key_id: string) =>
    wrap(`put secret ${name}`, async () => {
      if (cfg.org !== undefined) {
        await gh.rest.actions.createOrUpdateOrgSecret({
          org: cfg.org,
          secret_name: name,
          encrypted_value,
          key_id,
          visibility: cfg.visibility,
          ...(cfg.selected_repository_ids ? { selected_repository_ids: cfg.selected_repository_ids } : {}),
        });
      } else if (cfg.environment !== undefined) {
        await gh.rest.actions.createOrUpdateEnvironmentSecret({
          owner: cfg.owner!,
          repo: cfg.repo!,
          environment_name: cfg.environment,
          secret_name: name,
          encrypted_value,
          key_id,
        });
      } else {
        await gh.rest.actions.createOrUpdateRepoSecret({ owner: cfg.owner!, repo: cfg.repo!, secret_name: name, encrypted_value, key_id });
      }
    });

  return {
    id,
    type: 'github',
    async preflight(signal) {
      await publicKey(client(signal ? { signal } : {}));
    },
    async deliver(key: NewAccessKey, fence = {}) {
      const gh = client(fence);
      const pk = await publicKey(gh);
      // Two separate writes: a job that starts between them sees a mismatched pair (docs/rotation.md, "Invariants").
      await put(gh, cfg.secret_access_key_name, await sealForGithub(pk.key, key.secretAccessKey.reveal()), pk.key_id);
      await put(gh, cfg.access_key_id_name, await sealForGithub(pk.key, key.accessKeyId), pk.key_id);
    },
  };
}
