// Load a YAML config file: parse, validate against the schema, compile. Every problem is
// reported at once with its path; nothing partial is ever returned.
import { readFile } from 'node:fs/promises';
import { LineCounter, isCollection, parseDocument, type Document } from 'yaml';
import { bindingSchema, configSchema, denyRuleSchema, issuerSchema, roleSchema, type RawConfig } from './schema.js';
import { compileConfig, type Config } from './compile.js';
import { formatProblem, type Problem } from '../core/problems.js';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly problems: Problem[],
    readonly source: string,
  ) {
    super(`invalid configuration (${source}):\n${problems.map((p) => `  - ${formatProblem(p)}`).join('\n')}`);
  }
}

const pathOf = (segments: ReadonlyArray<PropertyKey>): string =>
  segments.reduce<string>((acc, s) => (typeof s === 'number' ? `${acc}[${s}]` : acc ? `${acc}.${String(s)}` : String(s)), '');

/**
 * Validates config text (YAML or JSON); returns the config or all problems. With `env`, the proxy
 * variables the broker would read from it (HTTPS_PROXY…) are checked too.
 */
export function parseConfig(text: string, source = 'config', env?: NodeJS.ProcessEnv): { config: Config; warnings: Problem[] } {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => ({ path: `line ${e.linePos?.[0]?.line ?? '?'}`, message: e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '') })),
      source,
    );
  }
  const data: unknown = doc.toJS() ?? {};
  // A key named __proto__ would silently vanish in validation (and a binding would lose a
  // condition): refuse it outright.
  const reserved = reservedKeyPaths(data);
  if (reserved.length > 0) {
    throw new ConfigError(reserved.map((path) => ({ path, message: 'the key "__proto__" is not allowed' })), source);
  }
  const parsed = configSchema.safeParse(data);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => ({ path: pathOf(i.path), message: i.message }));
    // Every problem at once: also run the cross-field checks over the parts that are well formed.
    for (const p of crossFieldProblems(data)) if (!problems.some((q) => q.path === p.path)) problems.push(p);
    throw new ConfigError(problems, source);
  }
  const { config, problems, warnings } = compileConfig(parsed.data, env ? { env } : {});
  if (!config) throw new ConfigError(problems, source);
  return { config, warnings };
}

function reservedKeyPaths(value: unknown, path = ''): string[] {
  if (value === null || typeof value !== 'object') return [];
  if (Array.isArray(value)) return value.flatMap((v, i) => reservedKeyPaths(v, `${path}[${i}]`));
  return Object.keys(value).flatMap((k) => {
    const p = path ? `${path}.${k}` : k;
    return k === '__proto__' ? [p] : reservedKeyPaths((value as Record<string, unknown>)[k], p);
  });
}

// Stands in for a malformed issuer reference; its own problems are dropped, and it is no issuer
// anyone could configure (ids are [A-Za-z0-9_-]), so it never shows up in a "known:" list.
const PLACEHOLDER_ISSUER = '(placeholder)';
const PLACEHOLDER_RULE = { issuer: PLACEHOLDER_ISSUER, claims: { placeholder: 'x' } };
const PLACEHOLDER_ARN = 'arn:aws:iam::000000000000:role/placeholder';

/**
 * A role that fails the schema is still checked for cross-field problems: its malformed fields
 * are dropped (or replaced by placeholders whose own problems are not reported), so that a bad
 * duration does not hide an unknown issuer in the same role.
 */
function salvageRole(id: string, value: unknown, placeholders: string[]): RawConfig['roles'][string] | undefined {
  const first = roleSchema.safeParse(value);
  if (first.success) return first.data;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
  const bad = new Set(first.error.issues.map((i) => String(i.path[0])));
  for (const key of bad) if (key !== 'arn' && key !== 'allow' && key !== 'deny') delete copy[key];
  if (bad.has('arn')) {
    copy.arn = PLACEHOLDER_ARN;
    placeholders.push(`roles.${id}.arn`);
  }
  for (const list of ['allow', 'deny'] as const) {
    const schema = list === 'allow' ? bindingSchema : denyRuleSchema;
    if (!Array.isArray(copy[list])) {
      if (list === 'deny') delete copy.deny;
      else {
        copy.allow = [PLACEHOLDER_RULE];
        placeholders.push(`roles.${id}.allow[0]`);
      }
      continue;
    }
    copy[list] = (copy[list] as unknown[]).map((rule, i) => {
      if (schema.safeParse(rule).success) return rule;
      placeholders.push(`roles.${id}.${list}[${i}]`);
      return PLACEHOLDER_RULE;
    });
    if ((copy[list] as unknown[]).length === 0 && list === 'allow') {
      copy.allow = [PLACEHOLDER_RULE];
      placeholders.push(`roles.${id}.allow[0]`);
    }
  }
  const second = roleSchema.safeParse(copy);
  return second.success ? second.data : undefined;
}

/** Cross-field problems of the well-formed issuers, roles and deny rules of an otherwise invalid file. */
function crossFieldProblems(data: unknown): Problem[] {
  if (data === null || typeof data !== 'object') return [];
  const input = data as Record<string, unknown>;
  const entries = (v: unknown) => (v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.entries(v) : []);
  const issuers: RawConfig['issuers'] = {};
  const unparsedIssuerIds: string[] = [];
  for (const [id, v] of entries(input.issuers)) {
    const r = issuerSchema.safeParse(v);
    if (r.success) issuers[id] = r.data;
    else unparsedIssuerIds.push(id);
  }
  const roles: RawConfig['roles'] = {};
  const placeholders: string[] = [];
  for (const [id, v] of entries(input.roles)) {
    const role = salvageRole(id, v, placeholders);
    if (role) roles[id] = role;
  }
  // Deny rules are reported by index: check them only when all are well formed, so paths stay right.
  const denyParsed = Array.isArray(input.deny) ? input.deny.map((d) => denyRuleSchema.safeParse(d)) : [];
  const deny = denyParsed.every((r) => r.success) ? denyParsed.map((r) => r.data!) : [];
  // The other sections too: each well-formed one is kept, so that audit.path missing for the file
  // sink is reported together with a typo in a role, not after it is fixed.
  const sections: Record<string, unknown> = {};
  const shape = configSchema.shape as Record<string, { safeParse(v: unknown): { success: boolean } }>;
  for (const [key, value] of Object.entries(input)) {
    if (key === 'issuers' || key === 'roles' || key === 'deny' || !Object.hasOwn(shape, key)) continue;
    if (shape[key]!.safeParse(value).success) sections[key] = value;
  }
  let base = configSchema.safeParse({ ...sections, issuers: {}, roles: {} });
  if (!base.success) base = configSchema.safeParse({ issuers: {}, roles: {} });
  if (!base.success) return [];
  const fromPlaceholder = (path: string) => placeholders.some((p) => path === p || path.startsWith(`${p}.`) || path.startsWith(`${p}[`));
  return compileConfig({ ...base.data, issuers, roles, deny }, { unparsedIssuerIds }).problems.filter(
    (p) => !fromPlaceholder(p.path),
  );
}

/** An unset ${VAR} reference, with its line (1-based). */
export interface MissingVariable {
  name: string;
  line: number;
}

/** Expands ${ENV_VAR} references so secrets and per-environment values can stay out of the file. */
export function expandEnv(text: string, env: NodeJS.ProcessEnv = process.env): { text: string; missing: MissingVariable[] } {
  const missing: MissingVariable[] = [];
  const expandLine = (line: string, index: number) =>
    line.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, name: string) => {
      const v = env[name];
      if (v === undefined) {
        missing.push({ name, line: index + 1 });
        return '';
      }
      return v;
    });
  // Comment lines are left alone so documentation can mention the syntax.
  const out = text
    .split('\n')
    .map((line, i) => (/^\s*#/.test(line) ? line : expandLine(line, i)))
    .join('\n');
  return { text: out, missing };
}

/** Splits a problem path (`roles.deploy.allow[0].claims.ref`) into keys and indexes. */
const segmentsOf = (path: string): Array<string | number> =>
  [...path.matchAll(/([^.[\]]+)|\[(\d+)\]/g)].map((m) => (m[2] !== undefined ? Number(m[2]) : m[1]!));

/** The line (1-based) of the value at a problem's path, if the document has it. */
function lineOf(doc: Document, counter: LineCounter, path: string): number | undefined {
  const segments = segmentsOf(path);
  let node: unknown = doc.contents;
  for (let i = 0; i < segments.length; i++) {
    if (!isCollection(node)) return undefined;
    const collection = node;
    // A key may hold dots (a claim named oidc.circleci.com/project-id): try the longest first.
    let found = false;
    for (let j = segments.length; j > i && !found; j--) {
      const key = typeof segments[i] === 'number' && j === i + 1 ? segments[i]! : segments.slice(i, j).join('.');
      const next: unknown = collection.get(key, true);
      if (next !== undefined) {
        node = next;
        i = j - 1;
        found = true;
      }
    }
    if (!found) return undefined;
  }
  const range = (node as { range?: [number, number, number] } | null)?.range;
  return range ? counter.linePos(range[0]).line : undefined;
}

/**
 * Config text → config, with every problem at once: an unset ${VAR} is reported with its line,
 * together with the file's other problems — except those at a value on that same line, which only
 * say that the value is empty.
 */
export function parseConfigText(raw: string, source: string, env: NodeJS.ProcessEnv = process.env, opts: { checkEnvProxies?: boolean } = {}): { config: Config; warnings: Problem[] } {
  const { text, missing } = expandEnv(raw, env);
  const proxyEnv = opts.checkEnvProxies === false ? undefined : env;
  if (missing.length === 0) return parseConfig(text, source, proxyEnv);
  const unset: Problem[] = missing.map((m) => ({ path: `line ${m.line}`, message: `\${${m.name}}: the environment variable ${m.name} is not set` }));
  const lines = new Set(missing.map((m) => m.line));
  let others: Problem[] = [];
  try {
    parseConfig(text, source, proxyEnv);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const counter = new LineCounter();
    const doc = parseDocument(text, { lineCounter: counter, uniqueKeys: false });
    others = err.problems.filter((p) => {
      const line = /^line (\d+)$/.exec(p.path)?.[1];
      const at = line !== undefined ? Number(line) : lineOf(doc, counter, p.path);
      return at === undefined || !lines.has(at);
    });
  }
  throw new ConfigError([...unset, ...others], source);
}

export async function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): Promise<{ config: Config; warnings: Problem[] }> {
  return parseConfigText(await readFile(file, 'utf8'), file, env);
}

/** The config path: --config flag, else CREDBROKER_CONFIG, else ./credbroker.yaml. */
export function configPathFrom(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return flag ?? env.CREDBROKER_CONFIG ?? 'credbroker.yaml';
}
