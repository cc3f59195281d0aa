// What a policy change does to access, computed from the two compiled policies (never from a text
// diff): which (role, issuer, identity pattern) bindings gain or lose access, which deny rules
// change reach, what changes about the sessions a role issues, and which lint warnings appear or go.
//
// A binding of the new policy "gains access" unless a binding of the old policy for the same role
// and issuer provably accepts every token it accepts (and the other way round for "loses"). The
// proof is conservative: when it cannot be shown, the binding is reported. So every change in a
// decision is explained by an item of the diff (a property test checks exactly that); an item may
// occasionally be reported that changes no decision in practice, never the reverse.
import type { Scalar } from '../config/schema.js';
import { describeCondition, type Condition } from './conditions.js';
import type { CompiledBinding, CompiledPolicy, CompiledRole, CompiledRule } from './policy.js';
import type { Problem } from './problems.js';
import { formatProblem } from './problems.js';

export interface RuleSummary {
  /** Config path in its own policy (roles.deploy.allow[2], deny[0]…). */
  path: string;
  issuer: string | undefined;
  /** claim → condition, as `policy explain` prints it. */
  conditions: Record<string, string>;
}

export interface AccessChange extends RuleSummary {
  role: string;
  issuer: string;
}

export interface DenyChange extends RuleSummary {
  /** `*` for a top-level rule (every role). */
  role: string;
}

export interface RoleChange {
  role: string;
  change: 'added' | 'removed' | 'changed';
  /** For `changed`: field → [old, new]. */
  fields?: Record<string, [unknown, unknown]>;
}

export interface BindingChange extends AccessChange {
  /** What a session from this same binding gets now: field → [old, new]. */
  fields: Record<string, [unknown, unknown]>;
}

export interface PolicyDiff {
  gained: AccessChange[];
  lost: AccessChange[];
  /** Same identity pattern, different session (duration cap, session policy, managed policies). */
  sessions: BindingChange[];
  denyAdded: DenyChange[];
  denyRemoved: DenyChange[];
  roles: RoleChange[];
  warningsAdded: string[];
  warningsRemoved: string[];
}

const isEmpty = (d: PolicyDiff): boolean => Object.values(d).every((list) => (list as unknown[]).length === 0);
export { isEmpty as diffIsEmpty };

const sortedJson = (values: readonly unknown[]): string => JSON.stringify([...values].map((v) => JSON.stringify(v)).sort());

/** Identity of one condition: claim, operator and values, independent of order and config path. */
function conditionKey(claim: string, c: Condition): string {
  switch (c.op) {
    case 'equals':
    case 'contains':
      return `${JSON.stringify(claim)}:${c.op}:${sortedJson(c.values)}`;
    case 'glob':
      return `${JSON.stringify(claim)}:glob:${sortedJson(c.patterns)}`;
    case 'present':
      return `${JSON.stringify(claim)}:present:${c.present}`;
  }
}

const ruleKey = (r: CompiledRule): string => [`issuer=${r.issuer ?? '*'}`, ...r.conditions.map((c) => conditionKey(c.claim, c.condition)).sort()].join('\n');

const summary = (r: CompiledRule): RuleSummary => ({
  path: r.path,
  issuer: r.issuer,
  conditions: Object.fromEntries(r.conditions.map((c) => [c.claim, describeCondition(c.condition)])),
});

const matchesAll = (patterns: string[]): boolean => patterns.some((p) => /^\*\*$/.test(p));

/** Whether every claim value that satisfies `narrow` also satisfies `wide` (proved, or false). */
function implies(narrow: Condition, wide: Condition): boolean {
  if (wide.op === 'present') {
    if (wide.present) return narrow.op !== 'present' || narrow.present;
    return narrow.op === 'present' && !narrow.present;
  }
  switch (narrow.op) {
    case 'equals':
      if (wide.op === 'equals') return narrow.values.every((v) => wide.values.includes(v));
      if (wide.op === 'glob') return narrow.values.every((v) => typeof v === 'string' && wide.regexes.some((r) => r.test(v)));
      return false;
    case 'glob':
      return wide.op === 'glob' && (matchesAll(wide.patterns) || narrow.patterns.every((p) => wide.patterns.includes(p)));
    case 'contains':
      return wide.op === 'contains' && narrow.values.every((v) => wide.values.includes(v as Scalar));
    case 'present':
      return false;
  }
}

/** Whether `wide` accepts every token `narrow` accepts: each of wide's conditions is implied. */
function subsumes(wide: CompiledRule, narrow: CompiledRule): boolean {
  return wide.conditions.every((w) => narrow.conditions.some((n) => n.claim === w.claim && implies(n.condition, w.condition)));
}

const bindingsOf = (role: CompiledRole | undefined, issuer: string): CompiledBinding[] => (role?.bindings ?? []).filter((b) => b.issuer === issuer);

function sessionFields(a: CompiledBinding, b: CompiledBinding): Record<string, [unknown, unknown]> {
  const fields: Record<string, [unknown, unknown]> = {};
  if (a.maxDuration !== b.maxDuration) fields.max_duration_seconds = [a.maxDuration ?? null, b.maxDuration ?? null];
  if (a.sessionPolicy !== b.sessionPolicy) fields.session_policy = [a.sessionPolicy ?? null, b.sessionPolicy ?? null];
  if (JSON.stringify(a.policyArns) !== JSON.stringify(b.policyArns)) fields.policy_arns = [a.policyArns, b.policyArns];
  return fields;
}

function roleFields(a: CompiledRole, b: CompiledRole): Record<string, [unknown, unknown]> {
  const fields: Record<string, [unknown, unknown]> = {};
  const same = (x: unknown, y: unknown) => JSON.stringify(x) === JSON.stringify(y);
  const put = (name: string, x: unknown, y: unknown) => {
    if (!same(x, y)) fields[name] = [x ?? null, y ?? null];
  };
  put('arn', a.arn, b.arn);
  put('region', a.region, b.region);
  put('max_duration_seconds', a.maxDuration, b.maxDuration);
  put('default_duration_seconds', a.defaultDuration, b.defaultDuration);
  put('transitive_tag_keys', a.transitiveTagKeys, b.transitiveTagKeys);
  const naming = (r: CompiledRole) =>
    Object.fromEntries(
      [...r.naming]
        .sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))
        .map(([issuer, n]) => [issuer, { session_name: n.sessionName.source, source_identity: n.sourceIdentity.source, tags: Object.fromEntries(n.tags.map(([k, t]) => [k, t.source])) }]),
    );
  put('naming', naming(a), naming(b));
  return fields;
}

function accessChanges(from: CompiledPolicy, to: CompiledPolicy): AccessChange[] {
  const out: AccessChange[] = [];
  for (const role of to.roles.values()) {
    const before = from.roles.get(role.name);
    for (const b of role.bindings) {
      const covered = bindingsOf(before, b.issuer).some((old) => subsumes(old, b));
      if (!covered) out.push({ ...summary(b), role: role.name, issuer: b.issuer });
    }
  }
  return out;
}

function denyRules(p: CompiledPolicy): Array<{ role: string; rule: CompiledRule }> {
  return [...p.globalDeny.map((rule) => ({ role: '*', rule })), ...[...p.roles.values()].flatMap((r) => r.deny.map((rule) => ({ role: r.name, rule })))];
}

function denyChanges(from: CompiledPolicy, to: CompiledPolicy): DenyChange[] {
  const before = new Set(denyRules(from).map((d) => `${d.role}\n${ruleKey(d.rule)}`));
  return denyRules(to)
    .filter((d) => !before.has(`${d.role}\n${ruleKey(d.rule)}`))
    .map((d) => ({ ...summary(d.rule), role: d.role }));
}

export function diffPolicies(
  old: { policy: CompiledPolicy; warnings: Problem[] },
  next: { policy: CompiledPolicy; warnings: Problem[] },
): PolicyDiff {
  const roles: RoleChange[] = [];
  for (const name of new Set([...old.policy.roles.keys(), ...next.policy.roles.keys()])) {
    const a = old.policy.roles.get(name);
    const b = next.policy.roles.get(name);
    if (!a) roles.push({ role: name, change: 'added' });
    else if (!b) roles.push({ role: name, change: 'removed' });
    else {
      const fields = roleFields(a, b);
      if (Object.keys(fields).length > 0) roles.push({ role: name, change: 'changed', fields });
    }
  }
  // Same identity pattern in both, but a different session.
  const sessions: BindingChange[] = [];
  for (const role of next.policy.roles.values()) {
    const before = old.policy.roles.get(role.name);
    for (const b of role.bindings) {
      const twin = bindingsOf(before, b.issuer).find((o) => ruleKey(o) === ruleKey(b));
      const fields = twin ? sessionFields(twin, b) : {};
      if (Object.keys(fields).length > 0) sessions.push({ ...summary(b), role: role.name, issuer: b.issuer, fields });
    }
  }
  const text = (ws: Problem[]) => new Set(ws.map(formatProblem));
  const [wOld, wNew] = [text(old.warnings), text(next.warnings)];
  return {
    gained: accessChanges(old.policy, next.policy),
    lost: accessChanges(next.policy, old.policy),
    sessions,
    denyAdded: denyChanges(old.policy, next.policy),
    denyRemoved: denyChanges(next.policy, old.policy),
    roles,
    warningsAdded: [...wNew].filter((w) => !wOld.has(w)),
    warningsRemoved: [...wOld].filter((w) => !wNew.has(w)),
  };
}

// ---------------------------------------------------------------------------------------------
// Markdown, for a pull-request comment
// ---------------------------------------------------------------------------------------------
const cell = (s: string): string => s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ').replace(/`/g, 'ˋ');
const code = (s: string): string => `\`${cell(s)}\``;
const who = (c: Record<string, string>): string =>
  Object.entries(c)
    .map(([k, v]) => code(`${k}: ${v}`))
    .join(', ') || '(any token)';
const show = (v: unknown): string => (v === null || v === undefined ? '—' : code(typeof v === 'string' ? v : JSON.stringify(v)));

export function diffMarkdown(d: PolicyDiff, labels: { old: string; new: string }): string {
  const out: string[] = [`## Policy change: ${code(labels.old)} → ${code(labels.new)}`, ''];
  if (isEmpty(d)) {
    out.push('No change to who may assume which role, to deny rules, roles or lint warnings.');
    return `${out.join('\n')}\n`;
  }
  const access = (title: string, list: AccessChange[]) => {
    if (list.length === 0) return;
    out.push(`### ${title} (${list.length})`, '', '| role | issuer | who (every condition must hold) | binding |', '|---|---|---|---|');
    for (const a of list) out.push(`| ${code(a.role)} | ${code(a.issuer)} | ${who(a.conditions)} | ${code(a.path)} |`);
    out.push('');
  };
  access('Access gained', d.gained);
  access('Access lost', d.lost);
  if (d.sessions.length > 0) {
    out.push(`### Sessions changed (${d.sessions.length})`, '', '| role | issuer | who | change |', '|---|---|---|---|');
    for (const s of d.sessions) {
      const change = Object.entries(s.fields).map(([k, [a, b]]) => `${k}: ${show(a)} → ${show(b)}`).join('<br>');
      out.push(`| ${code(s.role)} | ${code(s.issuer)} | ${who(s.conditions)} | ${change} |`);
    }
    out.push('');
  }
  const deny = (title: string, list: DenyChange[]) => {
    if (list.length === 0) return;
    out.push(`### ${title} (${list.length})`, '', '| applies to role | issuer | matches | rule |', '|---|---|---|---|');
    for (const r of list) out.push(`| ${r.role === '*' ? 'every role' : code(r.role)} | ${r.issuer ? code(r.issuer) : 'every issuer'} | ${who(r.conditions)} | ${code(r.path)} |`);
    out.push('');
  };
  deny('Deny rules added (narrow access)', d.denyAdded);
  deny('Deny rules removed (may restore access)', d.denyRemoved);
  if (d.roles.length > 0) {
    out.push(`### Roles (${d.roles.length})`, '');
    for (const r of d.roles) {
      if (r.change !== 'changed') out.push(`- ${r.change} ${code(r.role)}`);
      else out.push(`- changed ${code(r.role)}: ${Object.entries(r.fields ?? {}).map(([k, [a, b]]) => `${k} ${show(a)} → ${show(b)}`).join('; ')}`);
    }
    out.push('');
  }
  if (d.warningsAdded.length + d.warningsRemoved.length > 0) {
    out.push('### Lint warnings', '');
    for (const w of d.warningsAdded) out.push(`- new: ${code(w)}`);
    for (const w of d.warningsRemoved) out.push(`- gone: ${code(w)}`);
    out.push('');
  }
  return `${out.join('\n').trimEnd()}\n`;
}
