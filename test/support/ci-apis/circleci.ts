// CircleCI API v2 project environment variables stand-in (circleci.com/docs/api/v2 —
// "Create an environment variable", "List all environment variables"): Circle-Token auth;
// POST /api/v2/project/{vcs}/{org}/{repo}/envvar creates or replaces and answers 201 with the
// value masked; GET lists names with masked values.
import { randomBytes } from 'node:crypto';
import { json, startStandIn, type StandIn } from './server.js';

export interface CircleciApi extends StandIn {
  token: string;
  /** 'gh/org/repo' → name → value (the stand-in keeps values so the test can check them). */
  projects: Map<string, Map<string, string>>;
}

const masked = (v: string) => `xxxx${v.slice(-4)}`;

export async function startCircleciApi(opts: { token?: string } = {}): Promise<CircleciApi> {
  const token = opts.token ?? `CCIPAT_${randomBytes(12).toString('hex')}`;
  const projects = new Map<string, Map<string, string>>();
  const standIn = await startStandIn((req) => {
    if (req.headers['circle-token'] !== token) return json(401, { message: 'You must log in first.' });
    const s = req.segments;
    if (s[0] !== 'api' || s[1] !== 'v2' || s[2] !== 'project' || s[6] !== 'envvar' || s.length < 7) return json(404, { message: 'Not found.' });
    const slug = `${s[3]}/${s[4]}/${s[5]}`;
    let vars = projects.get(slug);
    if (!vars) projects.set(slug, (vars = new Map()));
    if (s.length === 7 && req.method === 'GET') {
      return json(200, { items: [...vars].map(([name, value]) => ({ name, value: masked(value), 'created-at': new Date().toISOString() })), next_page_token: null });
    }
    if (s.length === 7 && req.method === 'POST') {
      const body = req.body as { name?: unknown; value?: unknown } | undefined;
      if (typeof body?.name !== 'string' || typeof body.value !== 'string') return json(400, { message: 'name and value are required' });
      vars.set(body.name, body.value);
      return json(201, { name: body.name, value: masked(body.value), 'created-at': new Date().toISOString() });
    }
    if (s.length === 8 && req.method === 'DELETE') {
      vars.delete(s[7]!);
      return json(200, { message: 'Environment variable deleted.' });
    }
    return json(404, { message: 'Not found.' });
  });
  return { ...standIn, token, projects };
}
