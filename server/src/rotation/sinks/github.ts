// GitHub Actions secrets (repository, environment or organization) through @octokit/rest. Values are
// sealed with the target's public key (libsodium sealed box), as GitHub requires.
import { Octokit } from '@octokit/rest';
import sodium from 'libsodium-wrappers';
import type { GithubSinkConfig } from '../config-schema.js';
import { RotationError } from '../errors.js';
import type { NewAccessKey } from '../secret.js';
import { httpError, networkError, requireToken } from './http.js';
import type { Sink, SinkContext } from './types.js';

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
  const client = (): Octokit =>
    new Octokit({
      auth: requireToken(id, ctx.env, cfg.token_env),
      baseUrl: cfg.base_url.replace(/\/+$/, ''),
      userAgent: 'credbroker-rotation',
      log: silentLog,
      request: { timeout: ctx.timeoutMs },
    });

  const wrap = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof RotationError) throw err;
      const status = (err as { status?: unknown }).status;
      if (typeof status === 'number' && status > 0) throw httpError(id, what, status);
      throw networkError(id, what, err);
    }
  };

  const publicKey = (gh: Octokit, signal?: AbortSignal) =>
    wrap('get public key', async () => {
      const request = signal ? { signal } : {};
      if (cfg.org !== undefined) return (await gh.rest.actions.getOrgPublicKey({ org: cfg.org, request })).data;
      if (cfg.environment !== undefined) {
        return (await gh.rest.actions.getEnvironmentPublicKey({ owner: cfg.owner!, repo: cfg.repo!, environment_name: cfg.environment, request })).data;
      }
      return (await gh.rest.actions.getRepoPublicKey({ owner: cfg.owner!, repo: cfg.repo!, request })).data;
    });

  const put = (gh: Octokit, name: string, encrypted_value: string, key_id: string, signal?: AbortSignal) =>
    wrap(`put secret ${name}`, async () => {
      const request = signal ? { signal } : {};
      if (cfg.org !== undefined) {
        await gh.rest.actions.createOrUpdateOrgSecret({
          org: cfg.org,
          secret_name: name,
          encrypted_value,
          key_id,
          visibility: cfg.visibility,
          ...(cfg.selected_repository_ids ? { selected_repository_ids: cfg.selected_repository_ids } : {}),
          request,
        });
      } else if (cfg.environment !== undefined) {
        await gh.rest.actions.createOrUpdateEnvironmentSecret({
          owner: cfg.owner!,
          repo: cfg.repo!,
          environment_name: cfg.environment,
          secret_name: name,
          encrypted_value,
          key_id,
          request,
        });
      } else {
        await gh.rest.actions.createOrUpdateRepoSecret({ owner: cfg.owner!, repo: cfg.repo!, secret_name: name, encrypted_value, key_id, request });
      }
    });

  return {
    id,
    type: 'github',
    async preflight(signal) {
      await publicKey(client(), signal);
    },
    async deliver(key: NewAccessKey, signal) {
      const gh = client();
      const pk = await publicKey(gh, signal);
      // Two separate writes: a job that starts between them sees a mismatched pair (README, "Static keys: rotation").
      await put(gh, cfg.secret_access_key_name, await sealForGithub(pk.key, key.secretAccessKey.reveal()), pk.key_id, signal);
      await put(gh, cfg.access_key_id_name, await sealForGithub(pk.key, key.accessKeyId), pk.key_id, signal);
    },
  };
}
