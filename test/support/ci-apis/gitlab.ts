// GitLab project CI/CD variables API stand-in (docs.gitlab.com/api/project_level_variables):
// PRIVATE-TOKEN auth; list, show (with filter[environment_scope]), create (400 when the key is
// taken in that scope), update (404 when absent). Masked values must follow GitLab's rules: at
// least 8 characters from the Base64 alphabet plus @ : . ~.
import { randomBytes } from 'node:crypto';
import { json, startStandIn, type ListenOptions, type StandIn } from './server.js';

export interface GitlabVariable {
  key: string;
  value: string;
  variable_type: string;
  protected: boolean;
  masked: boolean;
  raw: boolean;
  environment_scope: string;
}

export interface GitlabApi extends StandIn {
  token: string;
  /** project id or path → variables */
  projects: Map<string, GitlabVariable[]>;
  variable(project: string, key: string, scope?: string): GitlabVariable | undefined;
}

const MASKABLE = /^[A-Za-z0-9+/=@:.~]{8,}$/;

export async function startGitlabApi(opts: { token?: string } & ListenOptions = {}): Promise<GitlabApi> {
  const token = opts.token ?? `glpat-${randomBytes(10).toString('hex')}`;
  const projects = new Map<string, GitlabVariable[]>();
  const vars = (p: string) => {
    let v = projects.get(p);
    if (!v) projects.set(p, (v = []));
    return v;
  };
  const scopeOf = (req: { query: URLSearchParams; body: unknown }): string | undefined => {
    const q = req.query.get('filter[environment_scope]');
    if (q) return q;
    const b = req.body as { filter?: { environment_scope?: string } } | undefined;
    return b?.filter?.environment_scope;
  };

  const standIn = await startStandIn((req) => {
    if (req.headers['private-token'] !== token && req.headers.authorization !== `Bearer ${token}`) return json(401, { message: '401 Unauthorized' });
    const s = req.segments;
    if (s[0] !== 'api' || s[1] !== 'v4' || s[2] !== 'projects' || s[4] !== 'variables' || s[3] === undefined) return json(404, { message: '404 Not Found' });
    const list = vars(s[3]);
    const key = s[5];
    const body = (req.body ?? {}) as Partial<GitlabVariable>;
    if (key === undefined && req.method === 'GET') return json(200, list);
    if (key === undefined && req.method === 'POST') {
      if (typeof body.key !== 'string' || typeof body.value !== 'string') return json(400, { message: 'key is missing' });
      const scope = body.environment_scope ?? '*';
      if (body.masked && !MASKABLE.test(body.value)) return json(400, { message: { value: ['is invalid'] } });
      if (list.some((v) => v.key === body.key && v.environment_scope === scope)) return json(400, { message: { key: [`(${body.key}) has already been taken`] } });
      const v: GitlabVariable = {
        key: body.key,
        value: body.value,
        variable_type: body.variable_type ?? 'env_var',
        protected: body.protected ?? false,
        masked: body.masked ?? false,
        raw: body.raw ?? false,
        environment_scope: scope,
      };
      list.push(v);
      return json(201, v);
    }
    if (key === undefined) return json(404, { message: '404 Not Found' });
    const scope = scopeOf(req);
    const matches = list.filter((v) => v.key === key && (scope === undefined || v.environment_scope === scope));
    if (matches.length === 0) return json(404, { message: '404 Variable Not Found' });
    if (matches.length > 1) return json(409, { message: 'There are multiple variables with provided parameters. Please use filter[environment_scope]' });
    const v = matches[0]!;
    if (req.method === 'GET') return json(200, v);
    if (req.method === 'PUT') {
      if (typeof body.value !== 'string') return json(400, { message: 'value is missing' });
      const masked = body.masked ?? v.masked;
      if (masked && !MASKABLE.test(body.value)) return json(400, { message: { value: ['is invalid'] } });
      Object.assign(v, {
        value: body.value,
        masked,
        protected: body.protected ?? v.protected,
        raw: body.raw ?? v.raw,
        environment_scope: body.environment_scope ?? v.environment_scope,
      });
      return json(200, v);
    }
    return json(405, { message: '405 Method Not Allowed' });
  }, { ...(opts.tls ? { tls: opts.tls } : {}), ...(opts.host ? { host: opts.host } : {}) });

  return {
    ...standIn,
    token,
    projects,
    variable(project, key, scope = '*') {
      return projects.get(project)?.find((v) => v.key === key && v.environment_scope === scope);
    },
  };
}
