// Revocations: block an identity now, before its next exchange. A revocation matches by issuer
// plus claim conditions (same condition language as the policy), and/or by session name or
// source identity (globs), until it expires. Checked after the policy allowed, before STS.
import type { ConditionInput } from '../config/schema.js';
import { compileCondition, globToRegExp, matchCondition, type Condition } from './conditions.js';
import { expectedClaimType, type Preset } from './presets.js';

export interface Revocation {
  id: string;
  /** Issuer id; null matches every issuer. */
  issuer: string | null;
  claims: Record<string, ConditionInput> | null;
  session_name: string | null;
  source_identity: string | null;
  reason: string;
  created_by: string;
  created_at: string;
  expires_at: string;
}

export interface CompiledRevocation {
  revocation: Revocation;
  conditions: Array<{ claim: string; condition: Condition }>;
  sessionName: RegExp | undefined;
  sourceIdentity: RegExp | undefined;
  expiresAt: number;
}

/** Validates a revocation as given by an admin; returns problems (empty when valid). */
export function revocationProblems(r: Partial<Revocation>, knownIssuers: ReadonlySet<string>): string[] {
  const problems: string[] = [];
  const hasClaims = r.claims !== null && r.claims !== undefined && Object.keys(r.claims).length > 0;
  if (!hasClaims && !r.session_name && !r.source_identity) problems.push('give claims, session_name or source_identity (a revocation must say whom it blocks)');
  if (hasClaims && !r.issuer) problems.push('claim conditions need an issuer');
  if (r.issuer && !knownIssuers.has(r.issuer)) problems.push(`unknown issuer "${r.issuer}"`);
  if (!r.expires_at || Number.isNaN(Date.parse(r.expires_at))) problems.push('expires_at must be an ISO 8601 time');
  if (!r.reason) problems.push('reason is required');
  return problems;
}

export function compileRevocation(r: Revocation, preset: Preset | undefined): CompiledRevocation | { error: string } {
  const conditions: CompiledRevocation['conditions'] = [];
  for (const [claim, input] of Object.entries(r.claims ?? {})) {
    const c = compileCondition(input, expectedClaimType(preset, claim));
    if ('error' in c) return { error: `claims.${claim}: ${c.error}` };
    conditions.push({ claim, condition: c });
  }
  return {
    revocation: r,
    conditions,
    sessionName: r.session_name ? globToRegExp(r.session_name) : undefined,
    sourceIdentity: r.source_identity ? globToRegExp(r.source_identity) : undefined,
    expiresAt: Date.parse(r.expires_at),
  };
}

export interface RevocationSubject {
  issuer: string;
  claims: Readonly<Record<string, unknown>>;
  sessionName: string;
  sourceIdentity: string;
}

/** The first active revocation that matches; every given criterion of a revocation must hold. */
export function findRevocation(list: readonly CompiledRevocation[], s: RevocationSubject, now: Date): Revocation | undefined {
  const t = now.getTime();
  for (const c of list) {
    if (c.expiresAt <= t) continue;
    if (c.revocation.issuer !== null && c.revocation.issuer !== s.issuer) continue;
    if (!c.conditions.every(({ claim, condition }) => matchCondition(claim, condition, s.claims).matched)) continue;
    if (c.sessionName && !c.sessionName.test(s.sessionName)) continue;
    if (c.sourceIdentity && !c.sourceIdentity.test(s.sourceIdentity)) continue;
    return c.revocation;
  }
  return undefined;
}
