// Travis CI API v3 repository env vars stand-in (developer.travis-ci.com/resource/env_vars,
// /resource/env_var): `Travis-API-Version: 3` and `Authorization: token …` required; the repo is
// addressed by its slug URL-encoded in one segment (owner%2Fname); private values never come back.
import { randomBytes, randomUUID } from 'node:crypto';
import { json, startStandIn, type StandIn } from './server.js';

export interface TravisEnvVar {
  id: string;
  name: string;
  value: string;
  public: boolean;
  branch: string | null;
}

export interface TravisApi extends StandIn {
  token: string;
  repos: Map<string, TravisEnvVar[]>;
  value(repo: string, name: string, branch?: string | null): string | undefined;
}

export async function startTravisApi(opts: { token?: string } = {}): Promise<TravisApi> {
  const token = opts.token ?? randomBytes(11).toString('base64url');
  const repos = new Map<string, TravisEnvVar[]>();
  const view = (v: TravisEnvVar) => ({
    '@type': 'env_var',
    '@representation': 'standard',
    id: v.id,
    name: v.name,
    public: v.public,
    branch: v.branch,
    ...(v.public ? { value: v.value } : {}),
  });
  const standIn = await startStandIn((req) => {
    if (req.headers['travis-api-version'] !== '3') return json(400, { '@type': 'error', error_type: 'wrong_params', error_message: 'Travis-API-Version: 3 required' });
    if (req.headers.authorization !== `token ${token}`) return json(403, { '@type': 'error', error_type: 'login_required', error_message: 'login required' });
    const [r, slugRaw, kind, id] = req.rawSegments;
    if (r !== 'repo' || slugRaw === undefined || !slugRaw.includes('%2F')) return json(404, { '@type': 'error', error_type: 'not_found', error_message: 'repository not found' });
    const slug = decodeURIComponent(slugRaw);
    let list = repos.get(slug);
    if (!list) repos.set(slug, (list = []));
    const body = (req.body ?? {}) as Record<string, unknown>;
    if (kind === 'env_vars' && id === undefined && req.method === 'GET') {
      return json(200, { '@type': 'env_vars', '@href': `/repo/${slugRaw}/env_vars`, env_vars: list.map(view) });
    }
    if (kind === 'env_vars' && id === undefined && req.method === 'POST') {
      const name = body['env_var.name'];
      const value = body['env_var.value'];
      if (typeof name !== 'string' || typeof value !== 'string') return json(400, { '@type': 'error', error_type: 'wrong_params', error_message: 'name and value required' });
      const branch = (body['env_var.branch'] as string | null | undefined) ?? null;
      if (list.some((v) => v.name === name && v.branch === branch)) return json(409, { '@type': 'error', error_type: 'duplicate_resource', error_message: 'resource already exists' });
      const v: TravisEnvVar = { id: randomUUID(), name, value, public: body['env_var.public'] === true, branch };
      list.push(v);
      return json(201, view(v));
    }
    if (kind === 'env_var' && id !== undefined) {
      const v = list.find((x) => x.id === decodeURIComponent(id));
      if (!v) return json(404, { '@type': 'error', error_type: 'not_found', error_message: 'env_var not found' });
      if (req.method === 'GET') return json(200, view(v));
      if (req.method === 'PATCH') {
        if (typeof body['env_var.value'] === 'string') v.value = body['env_var.value'];
        if (typeof body['env_var.public'] === 'boolean') v.public = body['env_var.public'];
        return json(200, view(v));
      }
    }
    return json(404, { '@type': 'error', error_type: 'not_found', error_message: 'not found' });
  });
  return {
    ...standIn,
    token,
    repos,
    value(repo, name, branch = null) {
      return repos.get(repo)?.find((v) => v.name === name && v.branch === branch)?.value;
    },
  };
}
