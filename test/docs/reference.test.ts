// The reference pages against their sources of truth, so they cannot drift: the HTTP API page
// against the OpenAPI document, the admin app's routes and the public error codes; the client page
// against the client's --help; the configuration pages against the config schema; metric names
// against the code.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type express from 'express';
import { PUBLIC_CODES } from '../../server/src/errors.js';
import { configJsonSchema } from '../../server/src/config/schema.js';
import { createAdminApp, type AdminDeps } from '../../server/src/admin/app.js';
import { rotationRoutes } from '../../server/src/cli/serve.js';
import { allCommands, commandHelp } from '../../server/src/cli/commands.js';
import { ROOT, docFiles, fences, proseLines, read } from './markdown.js';

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];

/** Every OpenAPI document under server/ (today server/openapi.json). */
function openapiDocuments(): Array<{ file: string; doc: { paths: Record<string, Record<string, unknown>> } }> {
  const walk = (dir: string): string[] =>
    readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(path.join(dir, e.name)) : e.name.endsWith('.json') ? [path.join(dir, e.name)] : [],
    );
  return walk('server')
    .map((file) => ({ file, doc: JSON.parse(readFileSync(path.join(ROOT, file), 'utf8')) as { openapi?: string; paths: Record<string, Record<string, unknown>> } }))
    .filter(({ doc }) => typeof doc.openapi === 'string');
}

/** Does the page name the operation, as `METHOD /path` (a query or `[…]` may follow)? */
function names(page: string, method: string, route: string): boolean {
  const escaped = route.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`\`${method.toUpperCase()} ${escaped}(?:[\`?\\[])`).test(page);
}

/** Routes of the admin app as Express holds them: mount path + route path, `:id` as `{id}`. */
function adminRoutes(): string[] {
  const deps = { config: () => ({ admin: { tokens: [] } }), extraRoutes: rotationRoutes({} as Parameters<typeof rotationRoutes>[0]) };
  const app = createAdminApp(deps as unknown as AdminDeps) as express.Express & { router: { stack: Layer[] } };
  interface Layer {
    rawPath?: string;
    route?: { path: string; methods: Record<string, boolean> };
    handle: { stack?: Layer[] };
  }
  const out: string[] = [];
  const visit = (stack: Layer[], prefix: string) => {
    for (const layer of stack) {
      if (layer.route) {
        for (const m of Object.keys(layer.route.methods).filter((x) => METHODS.includes(x) && x !== 'head')) {
          out.push(`${m.toUpperCase()} ${prefix}${layer.route.path.replace(/:(\w+)/g, '{$1}')}`);
        }
      } else if (layer.handle.stack) visit(layer.handle.stack, `${prefix}${layer.rawPath ?? ''}`);
    }
  };
  visit(app.router.stack, '');
  return out;
}

/** Words in a page's code spans and code blocks: where keys and options are named. */
function codeWords(...pages: string[]): Set<string> {
  const words = new Set<string>();
  const add = (s: string) => s.split(/[^A-Za-z0-9_-]+/).forEach((w) => w && words.add(w));
  for (const page of pages) {
    const text = read(page);
    for (const f of fences(page, text)) add(f.body);
    for (const { text: l } of proseLines(text)) for (const m of l.matchAll(/`([^`]+)`/g)) add(m[1]!);
  }
  return words;
}

/** Property names of the config schema, by dotted path (records as <name>, arrays as []). */
function schemaKeys(): Map<string, string> {
  const keys = new Map<string, string>();
  const walk = (s: unknown, at: string) => {
    if (s === null || typeof s !== 'object') return;
    const node = s as { properties?: Record<string, unknown>; additionalProperties?: unknown; items?: unknown; anyOf?: unknown[]; oneOf?: unknown[]; allOf?: unknown[] };
    for (const [k, v] of Object.entries(node.properties ?? {})) {
      const p = at ? `${at}.${k}` : k;
      keys.set(p, k);
      walk(v, p);
    }
    if (typeof node.additionalProperties === 'object') walk(node.additionalProperties, `${at}.<name>`);
    walk(node.items, `${at}[]`);
    for (const u of [...(node.anyOf ?? []), ...(node.oneOf ?? []), ...(node.allOf ?? [])]) walk(u, at);
  };
  walk(configJsonSchema(), '');
  return keys;
}

describe('docs/api.md', () => {
  const page = read('docs/api.md');

  it('names every operation of every OpenAPI document', () => {
    const docs = openapiDocuments();
    expect(docs.map((d) => d.file)).toContain('server/openapi.json');
    const missing = docs.flatMap(({ file, doc }) =>
      Object.entries(doc.paths).flatMap(([route, ops]) =>
        Object.keys(ops)
          .filter((m) => METHODS.includes(m))
          .filter((m) => !names(page, m, route))
          .map((m) => `${file}: ${m.toUpperCase()} ${route}`),
      ),
    );
    expect(missing).toEqual([]);
  });

  it('names every route of the admin API', () => {
    const routes = adminRoutes();
    expect(routes).toEqual(expect.arrayContaining(['GET /v1/admin/revocations', 'DELETE /v1/admin/revocations/{id}', 'POST /v1/admin/rotate']));
    const missing = routes.filter((r) => {
      const [method, route] = r.split(' ') as [string, string];
      return !names(page, method, route);
    });
    expect(missing).toEqual([]);
  });

  it('lists every public error code with its HTTP status, and no other', () => {
    const documented: Record<string, number> = {};
    for (const m of page.matchAll(/^\|\s*(\d{3})\s*\|\s*`(ERR_[A-Z_]+)`\s*\|/gm)) documented[m[2]!] = Number(m[1]);
    expect(documented).toEqual({ ...PUBLIC_CODES });
  });
});

describe('docs/client.md', () => {
  it('names every option and environment variable of the client', () => {
    const help = spawnSync(process.execPath, ['client/credbroker-client.mjs', '--help'], { cwd: ROOT, encoding: 'utf8' });
    expect(help.status).toBe(0);
    const options = new Set([...help.stdout.matchAll(/(?<![\w-])--[a-z][a-z-]*/g)].map((m) => m[0]));
    const variables = new Set([...help.stdout.matchAll(/\bCREDBROKER_[A-Z_]+/g)].map((m) => m[0]));
    expect(options.size).toBeGreaterThan(15);
    const page = read('docs/client.md');
    const missing = [...options, ...variables].filter((name) => !page.includes(`\`${name}`));
    expect(missing).toEqual([]);
  });
});

describe('docs/cli.md', () => {
  it("holds every command's --help, as the CLI prints it (from the same declarations)", () => {
    const page = read('docs/cli.md');
    const commands = allCommands();
    expect(commands.length).toBeGreaterThan(15);
    const stale = commands.filter((spec) => !page.includes(`\n\`\`\`text\n${commandHelp(spec)}\`\`\`\n`)).map((spec) => `${spec.path}:\n${commandHelp(spec)}`);
    expect(stale, 'update the ```text block of each command in docs/cli.md to its `credbroker <cmd> --help`').toEqual([]);
  });
});

describe('the configuration pages', () => {
  const keys = schemaKeys();

  it('name every key of the config schema (rotation: in docs/rotation.md)', () => {
    expect(keys.size).toBeGreaterThan(60);
    const main = codeWords('docs/configuration.md', 'docs/policy.md');
    const rotation = codeWords('docs/rotation.md');
    const missing = [...keys].filter(([p, name]) => !(p.startsWith('rotation') ? rotation : main).has(name)).map(([p]) => p);
    expect(missing).toEqual([]);
  });
});

describe('metrics', () => {
  it('every metric the broker registers is named in the docs', () => {
    const sources = (dir: string): string[] =>
      readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? sources(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : [],
      );
    const metrics = new Set(sources('server/src').flatMap((f) => [...read(f).matchAll(/['"`](credbroker_[a-z_]+)['"`]/g)].map((m) => m[1]!)));
    expect(metrics.size).toBeGreaterThan(10);
    const docs = docFiles().map(read).join('\n');
    expect([...metrics].filter((m) => !docs.includes(m))).toEqual([]);
  });
});
