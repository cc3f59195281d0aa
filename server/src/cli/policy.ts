// `credbroker policy explain` (a verdict per rule and per condition) and `credbroker policy test`
// (a table of claim sets → expected decision, for the security team's own CI).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { decodeJwt } from 'jose';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { Config } from '../config/compile.js';
import { explain, evaluate, type Decision, type RuleVerdict } from '../core/policy.js';
import { loadOrReport, parseCommand } from './args.js';
import { spawnSync } from 'node:child_process';
import { ConfigError, parseConfigText } from '../config/load.js';
import { diffMarkdown, diffPolicies } from '../core/policy-diff.js';
import type { Problem } from '../core/problems.js';
import { unknownClaimProblem } from '../core/lint.js';

/** A file the command was pointed at cannot be used: one line naming it, exit 2. */
class InputError extends Error {
  override readonly name = 'InputError';
}

/** Reads claims from a JSON/YAML file or a raw JWT in the file; `what` names it in errors. */
async function readClaims(file: string, what = file): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = (await readFile(file, 'utf8')).trim();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new InputError(`${what}: ${code === 'ENOENT' ? `no such file: ${file}` : `cannot read ${file}: ${code ?? String(err)}`}`);
  }
  let data: unknown;
  try {
    if (/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(text)) return decodeJwt(text) as Record<string, unknown>;
    data = parseYaml(text);
  } catch (err) {
    throw new InputError(`${what}: not a claim set (JSON or YAML) or a JWT: ${(err as Error).message.split('\n')[0]}`);
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) throw new InputError(`${what}: expected an object of claims (JSON or YAML) or a JWT`);
  return data as Record<string, unknown>;
}

/** The issuer id: given, or the one whose URL equals the claims' `iss`, or the only one. */
function issuerFor(config: Config, claims: Record<string, unknown>, given: string | undefined): string {
  if (given !== undefined) {
    if (!config.issuers.has(given)) throw new InputError(`unknown issuer "${given}" (known: ${[...config.issuers.keys()].join(', ')})`);
    return given;
  }
  const byIss = [...config.issuers.values()].find((i) => i.url === claims.iss);
  if (byIss) return byIss.id;
  if (config.issuers.size === 1) return [...config.issuers.keys()][0]!;
  throw new InputError(`cannot tell the issuer from iss ${JSON.stringify(claims.iss)}: pass --issuer (one of ${[...config.issuers.keys()].join(', ')})`);
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
  const args = parseCommand('policy explain', argv);
  const claimsFile = args.string('claims')!;
  const roleName = args.string('role')!;
  const loaded = await loadOrReport(args.string('config'));
  if (!loaded) return 2;
  const claims = await readClaims(claimsFile, `--claims ${claimsFile}`);
  const issuer = issuerFor(loaded.config, claims, args.string('issuer'));
  const result = explain(loaded.config.policy, evaluationInput(loaded.config, issuer, roleName, claims));
  if (args.flag('json')) {
    process.stdout.write(`${JSON.stringify({ issuer, role: roleName, ...result }, null, 2)}\n`);
  } else {
    const role = loaded.config.policy.roles.get(roleName);
    const lines = [
      `role ${roleName}${role ? ` (${role.arn})` : ' (unknown role)'}, issuer ${issuer}`,
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

interface CaseResult {
  name: string;
  ok: boolean;
  problems: string[];
  decision: string;
}

async function testCommand(argv: string[]): Promise<number> {
  const args = parseCommand('policy test', argv);
  const file = args.positionals[0]!;
  const json = args.flag('json');
  const loaded = await loadOrReport(args.string('config'), { printWarnings: !json });
  if (!loaded) return 2;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new InputError(code === 'ENOENT' ? `no such file: ${file}` : `cannot read ${file}: ${code ?? String(err)}`);
  }
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (err) {
    throw new InputError(`${file}: not YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  const parsed = casesSchema.safeParse(data);
  if (!parsed.success) {
    throw new InputError(`${file}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  const results: CaseResult[] = [];
  const warnings: string[] = [];
  for (const [n, c] of parsed.data.cases.entries()) {
    const what = `${file}: case ${n + 1} "${c.name}"`;
    // claims_file gives a base claim set (e.g. a real token's), claims overrides single claims.
    const base = c.claims_file ? await readClaims(path.resolve(path.dirname(file), c.claims_file), `${what}: claims_file ${c.claims_file}`) : {};
    const claims = { ...base, ...c.claims };
    let issuer: string;
    try {
      issuer = issuerFor(loaded.config, claims, c.issuer);
    } catch (err) {
      throw new InputError(`${what}: ${(err as Error).message}`);
    }
    // A claim the case sets by hand that its issuer never sends: a typo that makes the case pass for the wrong reason.
    for (const claim of Object.keys(c.claims ?? {})) {
      const problem = unknownClaimProblem([loaded.config.issuers.get(issuer)!], claim);
      if (problem) warnings.push(`${what}: claims.${claim}: ${problem}`);
    }
    const d = evaluate(loaded.config.policy, evaluationInput(loaded.config, issuer, c.role, claims));
    const problems: string[] = [];
    if (d.effect !== c.expect) problems.push(`expected ${c.expect}, got ${describeDecision(d)}`);
    if (c.reason && (d.effect !== 'deny' || d.reason !== c.reason)) problems.push(`expected reason ${c.reason}`);
    if (d.effect === 'allow') {
      if (c.binding && d.binding !== c.binding) problems.push(`expected binding ${c.binding}, got ${d.binding}`);
      if (c.session_name && d.sessionName !== c.session_name) problems.push(`expected session name ${c.session_name}, got ${d.sessionName}`);
      if (c.source_identity && d.sourceIdentity !== c.source_identity) problems.push(`expected source identity ${c.source_identity}, got ${d.sourceIdentity}`);
    }
    results.push({ name: c.name, ok: problems.length === 0, problems, decision: describeDecision(d) });
  }
  const passed = results.filter((r) => r.ok).length;
  const failed = results.length - passed;
  if (json) {
    process.stdout.write(`${JSON.stringify({ file, config: loaded.path, passed, failed, cases: results, warnings: [...loaded.warnings.map((w) => `${w.path}: ${w.message}`), ...warnings] }, null, 2)}\n`);
  } else {
    for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
    const out = results.map((r, i) => (r.ok ? `ok ${i + 1} - ${r.name}` : `not ok ${i + 1} - ${r.name}: ${r.problems.join('; ')}`));
    out.push(`${passed} passed, ${failed} failed`);
    process.stdout.write(`${out.join('\n')}\n`);
  }
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
  return parseConfigText(text, source, process.env, { checkEnvProxies: false });
}

async function diffCommand(argv: string[]): Promise<number> {
  const args = parseCommand('policy diff', argv);
  const [oldSource, newSource] = args.positionals as [string, string];
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
  if (args.flag('json')) process.stdout.write(`${JSON.stringify({ old: oldSource, new: newSource, ...diff }, null, 2)}\n`);
  else process.stdout.write(diffMarkdown(diff, { old: oldSource, new: newSource }));
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    if (sub === 'explain') return await explainCommand(rest);
    if (sub === 'test') return await testCommand(rest);
    return await diffCommand(rest);
  } catch (err) {
    if (err instanceof InputError) {
      process.stderr.write(`credbroker policy ${sub}: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}
