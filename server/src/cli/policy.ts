// `credbroker policy explain` (a verdict per rule and per condition) and `credbroker policy test`
// (a table of claim sets → expected decision, for the security team's own CI).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { decodeJwt } from 'jose';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { Config } from '../config/compile.js';
import { explain, evaluate, type Decision, type RuleVerdict } from '../core/policy.js';
import { loadOrReport, parse } from './args.js';
import { spawnSync } from 'node:child_process';
import { ConfigError, expandEnv, parseConfig } from '../config/load.js';
import { diffMarkdown, diffPolicies } from '../core/policy-diff.js';
import type { Problem } from '../core/problems.js';

const USAGE = `usage:
  credbroker policy explain --claims FILE --role NAME [--issuer ID] [--config FILE] [--json]
  credbroker policy test CASES.yaml [--config FILE]
  credbroker policy diff OLD NEW [--json]

explain: FILE holds a claim set (JSON or YAML) or a JWT (decoded, not verified). Exit 0 allow, 1 deny.
test:    exit 0 when every case gets its expected decision, 1 otherwise.
diff:    what changing the config from OLD to NEW does to access, as markdown for a pull request
         (or JSON). OLD and NEW are files or git revisions REV:PATH (e.g. origin/main:credbroker.yaml).
         Exit 0; 2 when either config does not load.
`;

/** Reads claims from a JSON/YAML file or a raw JWT in the file. */
async function readClaims(file: string): Promise<Record<string, unknown>> {
  const text = (await readFile(file, 'utf8')).trim();
  if (/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(text)) return decodeJwt(text) as Record<string, unknown>;
  const data: unknown = parseYaml(text);
  if (data === null || typeof data !== 'object' || Array.isArray(data)) throw new Error(`${file}: expected an object of claims`);
  return data as Record<string, unknown>;
}

/** The issuer id: given, or the one whose URL equals the claims' `iss`, or the only one. */
function issuerFor(config: Config, claims: Record<string, unknown>, given: string | undefined): string {
  if (given !== undefined) {
    if (!config.issuers.has(given)) throw new Error(`unknown issuer "${given}" (known: ${[...config.issuers.keys()].join(', ')})`);
    return given;
  }
  const byIss = [...config.issuers.values()].find((i) => i.url === claims.iss);
  if (byIss) return byIss.id;
  if (config.issuers.size === 1) return [...config.issuers.keys()][0]!;
  throw new Error(`cannot tell the issuer from iss ${JSON.stringify(claims.iss)}: pass --issuer (one of ${[...config.issuers.keys()].join(', ')})`);
}

const evaluationInput = (config: Config, issuer: string, role: string, claims: Record<string, unknown>) => ({
  issuer,
  role,
  claims,
  requestedDuration: undefined,
  tokenHash: '0'.repeat(64),
  roleChaining: config.aws.role_chaining === 'always',
  now: new Date(),
});

function printRules(title: string, verdicts: RuleVerdict[]): string[] {
  const lines = [`${title}:`];
  if (verdicts.length === 0) lines.push('  (none)');
  for (const v of verdicts) {
    lines.push(`  ${v.path}  ${v.matched ? 'MATCH' : v.conditions.length === 0 ? 'other issuer' : 'no match'}`);
    for (const c of v.conditions) {
      lines.push(`    ${c.matched ? '✓' : '✗'} ${c.claim}: expected ${c.expected}, got ${c.actual}${c.mismatch ? ` (${c.mismatch})` : ''}`);
    }
  }
  return lines;
}

function describeDecision(d: Decision): string {
  return d.effect === 'allow'
    ? `ALLOW by ${d.binding}: session ${d.sessionName}, source identity ${d.sourceIdentity}, ${d.durationSeconds}s, tags ${d.tags.map((t) => `${t.Key}=${t.Value}`).join(' ')}`
    : `DENY ${d.reason}`;
}

async function explainCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    config: { type: 'string', short: 'c' },
    claims: { type: 'string' },
    role: { type: 'string' },
    issuer: { type: 'string' },
    json: { type: 'boolean' },
  });
  if (!values.claims || !values.role) {
    process.stderr.write(USAGE);
    return 2;
  }
  const loaded = await loadOrReport(values.config);
  if (!loaded) return 2;
  const claims = await readClaims(values.claims);
  const issuer = issuerFor(loaded.config, claims, values.issuer);
  const result = explain(loaded.config.policy, evaluationInput(loaded.config, issuer, values.role, claims));
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ issuer, role: values.role, ...result }, null, 2)}\n`);
  } else {
    const role = loaded.config.policy.roles.get(values.role);
    const lines = [
      `role ${values.role}${role ? ` (${role.arn})` : ' (unknown role)'}, issuer ${issuer}`,
      describeDecision(result.decision),
      ...printRules('deny rules', result.deny),
      ...printRules('allow bindings', result.allow),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  return result.decision.effect === 'allow' ? 0 : 1;
}

const casesSchema = z.strictObject({
  cases: z
    .array(
      z.strictObject({
        name: z.string(),
        role: z.string(),
        issuer: z.string().optional(),
        claims: z.record(z.string(), z.unknown()).optional(),
        claims_file: z.string().optional(),
        expect: z.enum(['allow', 'deny']),
        reason: z.enum(['ERR_POLICY_NO_MATCH', 'ERR_POLICY_DENY_RULE', 'ERR_POLICY_UNKNOWN_ROLE']).optional(),
        binding: z.string().optional(),
        session_name: z.string().optional(),
        source_identity: z.string().optional(),
      }),
    )
    .min(1),
});

async function testCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { config: { type: 'string', short: 'c' } }, true);
  const file = positionals[0];
  if (!file) {
    process.stderr.write(USAGE);
    return 2;
  }
  const loaded = await loadOrReport(values.config);
  if (!loaded) return 2;
  const parsed = casesSchema.safeParse(parseYaml(await readFile(file, 'utf8')));
  if (!parsed.success) {
    process.stderr.write(`${file}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}\n`);
    return 2;
  }
  let passed = 0;
  let failed = 0;
  const out: string[] = [];
  for (const [n, c] of parsed.data.cases.entries()) {
    // claims_file gives a base claim set (e.g. a real token's), claims overrides single claims.
    const base = c.claims_file ? await readClaims(path.resolve(path.dirname(file), c.claims_file)) : {};
    const claims = { ...base, ...c.claims };
    const issuer = issuerFor(loaded.config, claims, c.issuer);
    const d = evaluate(loaded.config.policy, evaluationInput(loaded.config, issuer, c.role, claims));
    const problems: string[] = [];
    if (d.effect !== c.expect) problems.push(`expected ${c.expect}, got ${describeDecision(d)}`);
    if (c.reason && (d.effect !== 'deny' || d.reason !== c.reason)) problems.push(`expected reason ${c.reason}`);
    if (d.effect === 'allow') {
      if (c.binding && d.binding !== c.binding) problems.push(`expected binding ${c.binding}, got ${d.binding}`);
      if (c.session_name && d.sessionName !== c.session_name) problems.push(`expected session name ${c.session_name}, got ${d.sessionName}`);
      if (c.source_identity && d.sourceIdentity !== c.source_identity) problems.push(`expected source identity ${c.source_identity}, got ${d.sourceIdentity}`);
    }
    if (problems.length === 0) {
      passed++;
      out.push(`ok ${n + 1} - ${c.name}`);
    } else {
      failed++;
      out.push(`not ok ${n + 1} - ${c.name}: ${problems.join('; ')}`);
    }
  }
  out.push(`${passed} passed, ${failed} failed`);
  process.stdout.write(`${out.join('\n')}\n`);
  return failed === 0 ? 0 : 1;
}

/** A config from a file, or from git (`REV:PATH`) when no such file exists. */
async function readConfigSource(source: string): Promise<{ config: Config; warnings: Problem[] }> {
  let text: string;
  try {
    text = await readFile(source, 'utf8');
  } catch (err) {
    const colon = source.indexOf(':');
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || colon <= 0) throw err;
    const git = spawnSync('git', ['show', source], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    if (git.status !== 0) throw new Error(`${source}: no such file, and git show failed: ${git.stderr.trim() || git.error?.message}`);
    text = git.stdout;
  }
  const { text: expanded, missing } = expandEnv(text);
  if (missing.length > 0) throw new ConfigError(missing.map((m) => ({ path: `\${${m}}`, message: 'environment variable is not set' })), source);
  return parseConfig(expanded, source);
}

async function diffCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' } }, true);
  if (positionals.length !== 2) {
    process.stderr.write(USAGE);
    return 2;
  }
  const [oldSource, newSource] = positionals as [string, string];
  const sides = [];
  for (const source of [oldSource, newSource]) {
    try {
      sides.push(await readConfigSource(source));
    } catch (err) {
      process.stderr.write(`${err instanceof ConfigError ? err.message : `credbroker: ${(err as Error).message}`}\n`);
      return 2;
    }
  }
  const [a, b] = sides as [{ config: Config; warnings: Problem[] }, { config: Config; warnings: Problem[] }];
  const diff = diffPolicies({ policy: a.config.policy, warnings: a.warnings }, { policy: b.config.policy, warnings: b.warnings });
  if (values.json) process.stdout.write(`${JSON.stringify({ old: oldSource, new: newSource, ...diff }, null, 2)}\n`);
  else process.stdout.write(diffMarkdown(diff, { old: oldSource, new: newSource }));
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'explain') return explainCommand(rest);
  if (sub === 'test') return testCommand(rest);
  if (sub === 'diff') return diffCommand(rest);
  process.stderr.write(USAGE);
  return 2;
}
