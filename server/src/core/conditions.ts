// Claim conditions: compiled once at load, matched by small pure functions.
// Globs are anchored (a pattern matches the whole value, never a substring). `*` and `?` stay
// inside one path segment (they do not cross "/"); `**` crosses "/".
import type { ConditionInput, Scalar } from '../config/schema.js';
import type { ClaimType } from './presets.js';

export type Condition =
  | { op: 'equals'; values: Scalar[] }
  | { op: 'glob'; patterns: string[]; regexes: RegExp[] }
  | { op: 'present'; present: boolean }
  | { op: 'contains'; values: Scalar[] };

export type Mismatch = 'missing' | 'type' | 'value' | 'present';

export interface ConditionResult {
  claim: string;
  op: Condition['op'];
  expected: string;
  actual: string;
  matched: boolean;
  mismatch?: Mismatch;
  /** Matched only as text (a deny rule's `true` against a token's "true"). */
  asText?: true;
}

export function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '*') {
      if (pattern[i + 1] === '*') {
        re += '.*';
        i++;
      } else {
        re += '[^/]*';
      }
    } else if (ch === '?') {
      re += '[^/]';
    } else {
      re += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    }
  }
  return new RegExp(`^${re}$`, 'su');
}

const typeOf = (v: unknown): ClaimType | 'object' | 'undefined' =>
  v === null ? 'null' : Array.isArray(v) ? 'array' : (typeof v as ClaimType | 'object' | 'undefined');

/**
 * Coerces configured scalars to the type the provider sends, when the preset knows it.
 * "true" is only the same as true when the provider sends strings (GitHub): then config `true`
 * becomes "true". A lossy or ambiguous conversion is a compile error, never a silent guess.
 */
function coerce(value: Scalar, expected: ClaimType | undefined): Scalar | { error: string } {
  if (expected === undefined || typeof value === expected) return value;
  if (expected === 'string') {
    if (typeof value === 'number' && (!Number.isFinite(value) || (Number.isInteger(value) && !Number.isSafeInteger(value)))) {
      return { error: `${value} cannot be written exactly as the string this provider sends: quote it` };
    }
    return String(value);
  }
  return { error: `this provider sends ${expected} values for this claim; got ${JSON.stringify(value)} (${typeof value})` };
}

export function compileCondition(input: ConditionInput, expected: ClaimType | undefined): Condition | { error: string } {
  const scalars = (list: Scalar[]): Scalar[] | { error: string } => {
    if (expected === 'array') return { error: 'this claim is an array: use { contains: … }' };
    const out: Scalar[] = [];
    for (const v of list) {
      const c = coerce(v, expected);
      if (typeof c === 'object') return c;
      out.push(c);
    }
    return out;
  };
  if (typeof input !== 'object') {
    const values = scalars([input]);
    return Array.isArray(values) ? { op: 'equals', values } : values;
  }
  if (Array.isArray(input)) {
    const values = scalars(input);
    return Array.isArray(values) ? { op: 'equals', values } : values;
  }
  if ('equals' in input) {
    const values = scalars([input.equals]);
    return Array.isArray(values) ? { op: 'equals', values } : values;
  }
  if ('one_of' in input) {
    const values = scalars(input.one_of);
    return Array.isArray(values) ? { op: 'equals', values } : values;
  }
  if ('glob' in input) {
    if (expected !== undefined && expected !== 'string') return { error: `glob needs a string claim; this provider sends ${expected}` };
    const patterns = Array.isArray(input.glob) ? input.glob : [input.glob];
    return { op: 'glob', patterns, regexes: patterns.map(globToRegExp) };
  }
  if ('present' in input) return { op: 'present', present: input.present };
  const list = Array.isArray(input.contains) ? input.contains : [input.contains];
  if (expected !== undefined && expected !== 'array') return { error: `contains needs an array claim; this provider sends ${expected}` };
  return { op: 'contains', values: list };
}

const show = (v: unknown): string => {
  if (v === undefined) return '(absent)';
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 200 ? `${s.slice(0, 197)}...` : s;
};

export function describeCondition(c: Condition): string {
  switch (c.op) {
    case 'equals':
      return c.values.length === 1 ? show(c.values[0]) : `one of ${show(c.values)}`;
    case 'glob':
      return `glob ${show(c.patterns.length === 1 ? c.patterns[0] : c.patterns)}`;
    case 'present':
      return c.present ? 'present' : 'absent';
    case 'contains':
      return `contains ${show(c.values.length === 1 ? c.values[0] : c.values)}`;
  }
}

const isScalar = (v: unknown): v is Scalar => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';

/**
 * Matches one condition. Allow bindings compare typed values strictly (a mismatch fails closed).
 * Deny rules pass `asText`: a scalar that differs only in type (`true` vs "true", 1 vs "1") still
 * matches, because a deny rule that silently never matches would fail open.
 */
export function matchCondition(claim: string, c: Condition, claims: Readonly<Record<string, unknown>>, opts: { asText?: boolean } = {}): ConditionResult {
  const value = Object.hasOwn(claims, claim) ? claims[claim] : undefined;
  const base = { claim, op: c.op, expected: describeCondition(c), actual: show(value) };
  const present = value !== undefined && value !== null;
  if (c.op === 'present') {
    return present === c.present ? { ...base, matched: true } : { ...base, matched: false, mismatch: 'present' };
  }
  if (!present) return { ...base, matched: false, mismatch: 'missing' };
  const textMatch = (v: Scalar, actual: unknown) => opts.asText === true && isScalar(actual) && String(v) === String(actual);
  switch (c.op) {
    case 'equals': {
      if (c.values.includes(value as Scalar)) return { ...base, matched: true };
      if (c.values.some((v) => textMatch(v, value))) return { ...base, matched: true, asText: true };
      if (!c.values.some((v) => typeOf(v) === typeOf(value))) return { ...base, matched: false, mismatch: 'type' };
      return { ...base, matched: false, mismatch: 'value' };
    }
    case 'glob': {
      const text = typeof value === 'string' ? value : opts.asText === true && isScalar(value) ? String(value) : undefined;
      if (text === undefined) return { ...base, matched: false, mismatch: 'type' };
      if (!c.regexes.some((r) => r.test(text))) return { ...base, matched: false, mismatch: 'value' };
      return typeof value === 'string' ? { ...base, matched: true } : { ...base, matched: true, asText: true };
    }
    case 'contains': {
      if (!Array.isArray(value)) return { ...base, matched: false, mismatch: 'type' };
      if (c.values.some((v) => value.includes(v))) return { ...base, matched: true };
      if (c.values.some((v) => value.some((el) => textMatch(v, el)))) return { ...base, matched: true, asText: true };
      return { ...base, matched: false, mismatch: 'value' };
    }
  }
}

/** Key used to index bindings by an exact-match claim value; typed so 1 and "1" differ. */
export const indexKey = (value: unknown): string | undefined =>
  typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? `${typeof value}:${String(value)}` : undefined;
