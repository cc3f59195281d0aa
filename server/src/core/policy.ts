// The policy: which identities may assume which role. Compiled once (every problem reported at
// once, with its path), then evaluated by a pure function. Deny by default; deny rules win.
import type { BindingInput, DenyRuleInput, RoleInput, Scalar } from '../config/schema.js';
import { compileCondition, indexKey, matchCondition, type Condition, type ConditionResult } from './conditions.js';
import { PrefixIndex, literalPrefix } from './prefix-index.js';
import type { Preset } from './presets.js';
import { GENERIC, expectedClaimType } from './presets.js';
import { parseTemplate, renderTemplate, type Template, type TemplateContext } from './template.js';
import {
  MAX_SESSION_TAGS,
  sanitizeSessionName,
  sanitizeSourceIdentity,
  tagValue,
  tagKeyProblem,
  type TagOmission,
} from './sanitize.js';
import type { Problem } from './problems.js';

export interface PolicyIssuer {
  id: string;
  provider: string;
  preset: Preset | undefined;
}

export interface CompiledRule {
  /** Config path, e.g. roles.deploy.allow[1] — shown in explain output and audit. */
  path: string;
  issuer: string | undefined;
  conditions: Array<{ claim: string; condition: Condition }>;
}

export interface CompiledBinding extends CompiledRule {
  issuer: string;
  index: number;
  sessionPolicy: string | undefined;
  policyArns: string[];
  maxDuration: number | undefined;
}

interface BindingIndex {
  /** claim → typed value → bindings with an exact condition on that claim (indexed on one claim each). */
  byClaim: Map<string, Map<string, CompiledBinding[]>>;
  /** claim → bindings with no exact condition, by the literal prefix of a glob on that claim. */
  byPrefix: Map<string, PrefixIndex<CompiledBinding>>;
  /** Bindings with neither: scanned. */
  residual: CompiledBinding[];
}

export interface CompiledRole {
  name: string;
  arn: string;
  region: string | undefined;
  maxDuration: number;
  defaultDuration: number | undefined;
  bindings: CompiledBinding[];
  byIssuer: Map<string, BindingIndex>;
  deny: CompiledRule[];
  /** Per issuer: naming templates (role override or preset default). */
  naming: Map<string, { sessionName: Template; sourceIdentity: Template; tags: Array<[string, Template]> }>;
  transitiveTagKeys: string[];
  /** Tags set in the role itself (not the presets' defaults). */
  explicitTags: boolean;
}

export interface CompiledPolicy {
  roles: Map<string, CompiledRole>;
  globalDeny: CompiledRule[];
  brokerMaxDuration: number;
  issuers: Map<string, PolicyIssuer>;
}

export interface EvaluationInput {
  issuer: string;
  claims: Readonly<Record<string, unknown>>;
  role: string;
  requestedDuration: number | undefined;
  /** SHA-256 (hex) of the token: for `{@token_hash}`, never the token itself. */
  tokenHash: string;
  /** The broker runs on role credentials: AssumeRole is role chaining, capped at 1 h by AWS. */
  roleChaining: boolean;
  now: Date;
}

export interface RuleVerdict {
  path: string;
  matched: boolean;
  conditions: ConditionResult[];
}

export type AllowDecision = Extract<Decision, { effect: 'allow' }>;

export type Decision =
  | {
      effect: 'allow';
      roleArn: string;
      region: string | undefined;
      binding: string;
      sessionName: string;
      sourceIdentity: string;
      tags: Array<{ Key: string; Value: string }>;
      /** Tags left out because the claim value is not a valid tag value as it is (never altered). */
      omittedTags: Array<{ key: string; reason: TagOmission }>;
      transitiveTagKeys: string[];
      durationSeconds: number;
      sessionPolicy: string | undefined;
      policyArns: string[];
      usedClaims: Record<string, unknown>;
      evaluatedAt: string;
    }
  | {
      effect: 'deny';
      reason: 'ERR_POLICY_NO_MATCH' | 'ERR_POLICY_DENY_RULE' | 'ERR_POLICY_UNKNOWN_ROLE';
      detail: RuleVerdict[];
      /** Candidate bindings left out of `detail` (it is bounded). */
      omitted?: number;
      usedClaims: Record<string, unknown>;
      evaluatedAt: string;
    };

export const ROLE_ARN_RE = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/;
const ROLE_CHAINING_CAP = 3600;
/** Deny rules also match a value that differs only in type: a deny rule must not fail open. */
const DENY_MATCHING = { asText: true } as const;
/** How many non-candidate bindings a denial still explains (bounded: denials must stay cheap). */
const DENY_DETAIL_EXTRA = 10;
/** At most this many candidate bindings are explained in a denial's detail. */
const DENY_DETAIL_MAX = 20;

function compileRule(
  rule: BindingInput | DenyRuleInput,
  path: string,
  issuers: Map<string, PolicyIssuer>,
  problems: Problem[],
): CompiledRule {
  const issuer = rule.issuer === undefined ? undefined : issuers.get(rule.issuer);
  if (rule.issuer !== undefined && issuer === undefined) {
    problems.push({ path: `${path}.issuer`, message: `unknown issuer "${rule.issuer}" (known: ${[...issuers.keys()].join(', ') || 'none'})` });
  }
  const conditions: CompiledRule['conditions'] = [];
  const entries = Object.entries(rule.claims);
  if (entries.length === 0) problems.push({ path: `${path}.claims`, message: 'at least one claim condition is required (deny by default)' });
  for (const [claim, input] of entries) {
    const compiled = compileCondition(input, expectedClaimType(issuer?.preset, claim));
    if ('error' in compiled) problems.push({ path: `${path}.claims.${claim}`, message: compiled.error });
    else conditions.push({ claim, condition: compiled });
  }
  return { path, issuer: rule.issuer, conditions };
}

function templateOrProblem(source: string, path: string, problems: Problem[]): Template {
  const t = parseTemplate(source);
  if ('error' in t) {
    problems.push({ path, message: `template: ${t.error}` });
    return { source, parts: [], claims: [] };
  }
  return t;
}

function sessionPolicyText(input: BindingInput['session_policy'], path: string, problems: Problem[]): string | undefined {
  if (input === undefined) return undefined;
  let text: string;
  if (typeof input === 'string') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(input);
    } catch {
      problems.push({ path, message: 'session_policy is not valid JSON' });
      return undefined;
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      problems.push({ path, message: 'session_policy must be a JSON object (an IAM policy document)' });
      return undefined;
    }
    text = JSON.stringify(parsed);
  } else {
    text = JSON.stringify(input);
  }
  if (text.length > 2048) problems.push({ path, message: `session_policy is ${text.length} characters; AWS allows 2048` });
  return text;
}

const POLICY_ARN_RE = /^arn:aws[a-z-]*:iam::(\d{12}|aws):policy\/[\w+=,.@/-]+$/;

function policyArnsOrProblems(arns: string[], path: string, problems: Problem[]): string[] {
  arns.forEach((arn, i) => {
    if (!POLICY_ARN_RE.test(arn)) problems.push({ path: `${path}[${i}]`, message: 'expected arn:aws:iam::<account|aws>:policy/<name>' });
  });
  return arns;
}

/**
 * Indexes each binding under its most selective exact condition: the claim with the most distinct
 * values across the role's bindings of that issuer. An organization pin shared by every binding
 * (one value) would put them all in one bucket; the repository id next to it spreads them out.
 */
function indexBindings(bindings: CompiledBinding[]): Map<string, BindingIndex> {
  const distinct = new Map<string, Set<string>>(); // issuer \0 claim → distinct values
  for (const b of bindings) {
    for (const c of b.conditions) {
      if (c.condition.op !== 'equals') continue;
      const k = `${b.issuer}\u0000${c.claim}`;
      let set = distinct.get(k);
      if (!set) distinct.set(k, (set = new Set()));
      for (const v of c.condition.values) set.add(indexKey(v)!);
    }
  }
  const selectivity = (b: CompiledBinding, claim: string) => distinct.get(`${b.issuer}\u0000${claim}`)?.size ?? 0;
  const byIssuer = new Map<string, BindingIndex>();
  for (const b of bindings) {
    let idx = byIssuer.get(b.issuer);
    if (!idx) byIssuer.set(b.issuer, (idx = { byClaim: new Map(), byPrefix: new Map(), residual: [] }));
    let exact: { claim: string; condition: Condition } | undefined;
    for (const c of b.conditions) {
      if (c.condition.op === 'equals' && (!exact || selectivity(b, c.claim) > selectivity(b, exact.claim))) exact = c;
    }
    if (!exact || exact.condition.op !== 'equals') {
      indexByGlobPrefix(idx, b);
      continue;
    }
    let byValue = idx.byClaim.get(exact.claim);
    if (!byValue) idx.byClaim.set(exact.claim, (byValue = new Map()));
    for (const v of exact.condition.values) {
      const key = indexKey(v)!;
      const list = byValue.get(key);
      if (list) list.push(b);
      else byValue.set(key, [b]);
    }
  }
  return byIssuer;
}

/**
 * A binding without an exact condition goes under the glob condition whose patterns have the
 * longest literal prefixes (the shortest of a condition's patterns counts): a value can only match
 * a pattern it starts with. A binding whose globs all start with a wildcard is scanned.
 */
function indexByGlobPrefix(idx: BindingIndex, b: CompiledBinding): void {
  let best: { claim: string; prefixes: string[]; length: number } | undefined;
  for (const c of b.conditions) {
    if (c.condition.op !== 'glob') continue;
    const prefixes = c.condition.patterns.map(literalPrefix);
    const length = Math.min(...prefixes.map((p) => p.length));
    if (length > 0 && (!best || length > best.length)) best = { claim: c.claim, prefixes, length };
  }
  if (!best) {
    idx.residual.push(b);
    return;
  }
  let trie = idx.byPrefix.get(best.claim);
  if (!trie) idx.byPrefix.set(best.claim, (trie = new PrefixIndex()));
  for (const prefix of new Set(best.prefixes)) trie.add(prefix, b);
}

function compileRole(
  name: string,
  input: RoleInput,
  issuers: Map<string, PolicyIssuer>,
  problems: Problem[],
): CompiledRole {
  const path = `roles.${name}`;
  if (!ROLE_ARN_RE.test(input.arn)) problems.push({ path: `${path}.arn`, message: 'expected arn:aws:iam::<12-digit account>:role/<path/name>' });
  if (input.default_duration_seconds !== undefined && input.default_duration_seconds > input.max_duration_seconds) {
    problems.push({ path: `${path}.default_duration_seconds`, message: 'exceeds max_duration_seconds' });
  }
  const bindings = input.allow.map((b, i): CompiledBinding => {
    const bpath = `${path}.allow[${i}]`;
    const rule = compileRule(b, bpath, issuers, problems);
    return {
      ...rule,
      issuer: b.issuer,
      index: i,
      sessionPolicy: sessionPolicyText(b.session_policy, `${bpath}.session_policy`, problems),
      policyArns: policyArnsOrProblems(b.policy_arns ?? [], `${bpath}.policy_arns`, problems),
      maxDuration: b.max_duration_seconds,
    };
  });
  const deny = input.deny.map((d, i) => compileRule(d, `${path}.deny[${i}]`, issuers, problems));

  // Naming per issuer used by this role: explicit templates win over preset defaults.
  const naming: CompiledRole['naming'] = new Map();
  const tagSources = input.tags;
  if (tagSources) checkTagKeys(Object.keys(tagSources), `${path}.tags`, problems);
  for (const issuerId of new Set(bindings.map((b) => b.issuer))) {
    const issuer = issuers.get(issuerId);
    const defaults = issuer?.preset ?? GENERIC;
    const tags = Object.entries(tagSources ?? defaults.tags).map(
      ([k, v]): [string, Template] => [k, templateOrProblem(v, `${path}.tags.${k}`, problems)],
    );
    naming.set(issuerId, {
      sessionName: templateOrProblem(input.session_name ?? defaults.sessionName, `${path}.session_name`, problems),
      sourceIdentity: templateOrProblem(input.source_identity ?? defaults.sourceIdentity, `${path}.source_identity`, problems),
      tags,
    });
  }
  const transitive = input.transitive_tag_keys ?? [];
  const allTagKeys = new Set([...naming.values()].flatMap((n) => n.tags.map(([k]) => k)));
  transitive.forEach((k, i) => {
    if (!allTagKeys.has(k)) problems.push({ path: `${path}.transitive_tag_keys[${i}]`, message: `"${k}" is not a session tag of this role` });
  });

  return {
    name,
    arn: input.arn,
    region: input.region,
    maxDuration: input.max_duration_seconds,
    defaultDuration: input.default_duration_seconds,
    bindings,
    byIssuer: indexBindings(bindings),
    deny,
    naming,
    transitiveTagKeys: transitive,
    explicitTags: tagSources !== undefined,
  };
}

function checkTagKeys(keys: string[], path: string, problems: Problem[]): void {
  if (keys.length > MAX_SESSION_TAGS) problems.push({ path, message: `${keys.length} tags; AWS allows ${MAX_SESSION_TAGS}` });
  const seen = new Map<string, string>();
  for (const key of keys) {
    const p = tagKeyProblem(key);
    if (p) problems.push({ path: `${path}.${key}`, message: p });
    const folded = key.toLowerCase();
    const prior = seen.get(folded);
    if (prior !== undefined) problems.push({ path: `${path}.${key}`, message: `collides with "${prior}" (AWS tag keys are case-insensitive)` });
    else seen.set(folded, key);
  }
}

export function compilePolicy(
  input: { roles: Record<string, RoleInput>; deny: DenyRuleInput[]; brokerMaxDuration: number },
  issuers: Map<string, PolicyIssuer>,
  problems: Problem[],
): CompiledPolicy {
  const roles = new Map<string, CompiledRole>();
  for (const [name, role] of Object.entries(input.roles)) roles.set(name, compileRole(name, role, issuers, problems));
  const globalDeny = input.deny.map((d, i) => compileRule(d, `deny[${i}]`, issuers, problems));
  return { roles, globalDeny, brokerMaxDuration: input.brokerMaxDuration, issuers };
}

function verdict(rule: CompiledRule, claims: Readonly<Record<string, unknown>>, opts: { asText?: boolean } = {}): RuleVerdict {
  const conditions = rule.conditions.map(({ claim, condition }) => matchCondition(claim, condition, claims, opts));
  return { path: rule.path, matched: conditions.every((c) => c.matched), conditions };
}

/** Bindings of this role and issuer that could match: index buckets plus the unindexed rest. */
function candidates(role: CompiledRole, issuer: string, claims: Readonly<Record<string, unknown>>): CompiledBinding[] {
  const idx = role.byIssuer.get(issuer);
  if (!idx) return [];
  const out = new Set(idx.residual);
  for (const [claim, trie] of idx.byPrefix) {
    const value = Object.hasOwn(claims, claim) ? claims[claim] : undefined;
    if (typeof value === 'string') trie.collect(value, out); // a glob in a binding needs a string
  }
  for (const [claim, byValue] of idx.byClaim) {
    const key = Object.hasOwn(claims, claim) ? indexKey(claims[claim]) : undefined;
    const bucket = key === undefined ? undefined : byValue.get(key);
    if (bucket) for (const b of bucket) out.add(b);
  }
  return [...out].sort((a, b) => a.index - b.index);
}

function usedClaimsOf(rules: CompiledRule[], templates: Template[], claims: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const used: Record<string, unknown> = {};
  const add = (name: string) => {
    if (Object.hasOwn(claims, name)) used[name] = claims[name];
  };
  for (const r of rules) for (const c of r.conditions) add(c.claim);
  for (const t of templates) for (const c of t.claims) add(c);
  return used;
}

export function clampDuration(
  requested: number | undefined,
  role: Pick<CompiledRole, 'maxDuration' | 'defaultDuration'>,
  bindingMax: number | undefined,
  brokerMax: number,
  roleChaining: boolean,
): number {
  const caps = [role.maxDuration, brokerMax];
  if (bindingMax !== undefined) caps.push(bindingMax);
  if (roleChaining) caps.push(ROLE_CHAINING_CAP);
  const cap = Math.min(...caps);
  const want = requested ?? role.defaultDuration ?? cap;
  return Math.max(900, Math.min(want, cap));
}

/** Pure: (claims, requested role, now) → allow with everything STS needs, or deny with reasons. */
export function evaluate(policy: CompiledPolicy, input: EvaluationInput): Decision {
  const evaluatedAt = input.now.toISOString();
  const role = policy.roles.get(input.role);
  if (!role) return { effect: 'deny', reason: 'ERR_POLICY_UNKNOWN_ROLE', detail: [], usedClaims: {}, evaluatedAt };

  const denyRules = [...policy.globalDeny, ...role.deny].filter((d) => d.issuer === undefined || d.issuer === input.issuer);
  const denyVerdicts = denyRules.map((d) => verdict(d, input.claims, DENY_MATCHING));
  const hit = denyVerdicts.find((v) => v.matched);
  if (hit) {
    return { effect: 'deny', reason: 'ERR_POLICY_DENY_RULE', detail: [hit], usedClaims: usedClaimsOf(denyRules, [], input.claims), evaluatedAt };
  }

  const considered = candidates(role, input.issuer, input.claims);
  const verdicts: Array<{ index: number; verdict: RuleVerdict }> = [];
  for (const binding of considered) {
    const v = verdict(binding, input.claims);
    if (verdicts.length < DENY_DETAIL_MAX) verdicts.push({ index: binding.index, verdict: v });
    if (!v.matched) continue;
    const naming = role.naming.get(input.issuer)!;
    const issuer = policy.issuers.get(input.issuer);
    const ctx: TemplateContext = {
      claims: input.claims,
      issuer: input.issuer,
      provider: issuer?.provider ?? 'oidc',
      role: role.name,
      tokenHash: input.tokenHash,
    };
    const templates = [naming.sessionName, naming.sourceIdentity, ...naming.tags.map(([, t]) => t)];
    const tags: Array<{ Key: string; Value: string }> = [];
    const omittedTags: Array<{ key: string; reason: TagOmission }> = [];
    for (const [Key, t] of naming.tags) {
      const v = tagValue(renderTemplate(t, ctx));
      if ('value' in v) tags.push({ Key, Value: v.value });
      else omittedTags.push({ key: Key, reason: v.omitted });
    }
    // A transitive key whose tag was left out must not be named to STS either.
    const present = new Set(tags.map((t) => t.Key));
    return {
      effect: 'allow',
      roleArn: role.arn,
      region: role.region,
      binding: binding.path,
      sessionName: sanitizeSessionName(renderTemplate(naming.sessionName, ctx)),
      sourceIdentity: sanitizeSourceIdentity(renderTemplate(naming.sourceIdentity, ctx)),
      tags,
      omittedTags,
      transitiveTagKeys: role.transitiveTagKeys.filter((k) => present.has(k)),
      durationSeconds: clampDuration(input.requestedDuration, role, binding.maxDuration, policy.brokerMaxDuration, input.roleChaining),
      sessionPolicy: binding.sessionPolicy,
      policyArns: binding.policyArns,
      usedClaims: usedClaimsOf([...denyRules, binding], templates, input.claims),
      evaluatedAt,
    };
  }
  // The index skipped bindings whose indexed claim differs; name a few of them in the detail so the
  // audit shows *why* (e.g. "repository_id: expected …, got …") without scanning every binding.
  // Both lists are bounded: a denial must stay cheap and its audit record small.
  const consideredSet = new Set(considered);
  const skipped: CompiledBinding[] = [];
  for (const b of role.bindings) {
    if (skipped.length >= DENY_DETAIL_EXTRA) break;
    if (b.issuer === input.issuer && !consideredSet.has(b)) skipped.push(b);
  }
  for (const b of skipped) verdicts.push({ index: b.index, verdict: verdict(b, input.claims) });
  verdicts.sort((a, b) => a.index - b.index);
  const explained = [...considered.slice(0, DENY_DETAIL_MAX), ...skipped];
  return {
    effect: 'deny',
    reason: 'ERR_POLICY_NO_MATCH',
    detail: verdicts.map((v) => v.verdict),
    omitted: Math.max(0, considered.length - DENY_DETAIL_MAX),
    usedClaims: usedClaimsOf([...denyRules, ...explained], [], input.claims),
    evaluatedAt,
  };
}

/** Every rule of a role judged against the claims, without the index: for `policy explain`. */
export function explain(policy: CompiledPolicy, input: EvaluationInput): { decision: Decision; deny: RuleVerdict[]; allow: RuleVerdict[] } {
  const decision = evaluate(policy, input);
  const role = policy.roles.get(input.role);
  const deny = [...policy.globalDeny, ...(role?.deny ?? [])]
    .filter((d) => d.issuer === undefined || d.issuer === input.issuer)
    .map((d) => verdict(d, input.claims, DENY_MATCHING));
  const allow = (role?.bindings ?? []).map((b) =>
    b.issuer === input.issuer ? verdict(b, input.claims) : { path: b.path, matched: false, conditions: [] },
  );
  return { decision, deny, allow };
}

export type { Scalar };
