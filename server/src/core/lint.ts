// Warnings for policies that are valid but risky, from the providers' docs and public incidents.
import type { CompiledPolicy, CompiledBinding } from './policy.js';
import { closestClaim, expectedClaimType, immutableFor, knowsClaim, type Preset } from './presets.js';
import type { CompiledRule } from './policy.js';
import type { Problem } from './problems.js';

const exactClaims = (b: CompiledBinding): Set<string> =>
  new Set(b.conditions.filter((c) => c.condition.op === 'equals').map((c) => c.claim));

export function lintPolicy(policy: CompiledPolicy): Problem[] {
  const warnings: Problem[] = [];
  for (const role of policy.roles.values()) {
    for (const b of role.bindings) {
      const preset = policy.issuers.get(b.issuer)?.preset;
      const exact = exactClaims(b);
      const bound = new Set(b.conditions.filter((c) => !(c.condition.op === 'present')).map((c) => c.claim));

      if (exact.size === 0) {
        warnings.push({ path: b.path, message: 'no exact-match condition: only patterns or presence decide; pin an immutable id' });
      }
      for (const { claim, condition } of b.conditions) {
        if (condition.op === 'glob' && condition.patterns.some((p) => /^[*?]*$/.test(p))) {
          warnings.push({ path: `${b.path}.claims.${claim}`, message: 'pattern matches any value' });
        }
        if (claim === 'sub' && condition.op === 'glob' && exact.size === 0) {
          warnings.push({ path: `${b.path}.claims.sub`, message: 'wildcard subject match: any branch, tag or pull request of the matched names gets in' });
        }
      }
      if (!preset) continue;
      if (preset.immutableClaims.length > 0 && !preset.immutableClaims.some((c) => exact.has(c))) {
        const mutable = [...bound].filter((c) => immutableFor(preset, c) !== undefined);
        if (mutable.length > 0) {
          const suggest = [...new Set(mutable.map((c) => immutableFor(preset, c)))].join(', ');
          warnings.push({
            path: b.path,
            message: `binds on mutable name(s) ${mutable.join(', ')} only; names can be re-registered — bind on ${suggest}`,
          });
        }
      }
      const protectedRef = b.conditions.find((c) => c.claim === 'ref_protected');
      const requiresProtected = protectedRef?.condition.op === 'equals' && protectedRef.condition.values.every((v) => v === 'true');
      if (preset.name === 'gitlab' && !requiresProtected) {
        warnings.push({ path: b.path, message: 'GitLab binding without ref_protected: "true": any Developer can push an unprotected branch and mint a token' });
      }
      if (preset.orgPinClaims && !preset.orgPinClaims.some((c) => exact.has(c))) {
        warnings.push({
          path: b.path,
          message: `shared issuer (${preset.name}): pin the organization with an exact condition on one of ${preset.orgPinClaims.join(', ')}`,
        });
      }
    }
  }
  for (const role of policy.roles.values()) {
    for (const [issuerId, naming] of role.naming) {
      const preset = policy.issuers.get(issuerId)?.preset;
      if (!preset || preset.immutableClaims.length === 0) continue;
      const mutable = naming.sourceIdentity.claims.filter((c) => immutableFor(preset, c) !== undefined);
      if (mutable.length > 0) {
        warnings.push({
          path: `roles.${role.name}.source_identity`,
          message: `source identity uses mutable name(s) ${mutable.join(', ')} for ${issuerId}: it should trace to immutable ids`,
        });
      }
    }
  }
  warnings.push(...denyTypeWarnings(policy), ...mutableTagWarnings(policy), ...unknownClaimWarnings(policy));
  return warnings;
}

/**
 * Why no token of these issuers would carry the claim (a typo, most often), or undefined when one
 * may: some issuer knows it, or cannot tell (no preset, or claims each installation chooses).
 */
export function unknownClaimProblem(issuers: ReadonlyArray<{ preset: Preset | undefined }>, claim: string): string | undefined {
  if (issuers.length === 0 || issuers.some((i) => knowsClaim(i.preset, claim) !== false)) return undefined;
  const providers = [...new Set(issuers.map((i) => i.preset!.name))].join(', ');
  const guess = closestClaim(issuers.map((i) => i.preset), claim);
  return `no ${providers} token is known to carry the claim "${claim}"${guess ? ` (did you mean "${guess}"?)` : ''}`;
}

/** A condition on a claim no token carries never holds: an allow binding never matches, a deny rule never denies. */
function unknownClaimWarnings(policy: CompiledPolicy): Problem[] {
  const warnings: Problem[] = [];
  const rules: Array<{ rule: CompiledRule; deny: boolean }> = [
    ...[...policy.roles.values()].flatMap((r) => [...r.bindings.map((rule) => ({ rule, deny: false })), ...r.deny.map((rule) => ({ rule, deny: true }))]),
    ...policy.globalDeny.map((rule) => ({ rule, deny: true })),
  ];
  for (const { rule, deny } of rules) {
    const issuers = (rule.issuer !== undefined ? [rule.issuer] : [...policy.issuers.keys()]).map((id) => policy.issuers.get(id)).filter((i) => i !== undefined);
    for (const { claim, condition } of rule.conditions) {
      if (condition.op === 'present' && !condition.present) continue; // "must be absent" holds either way
      const problem = unknownClaimProblem(issuers, claim);
      if (problem) warnings.push({ path: `${rule.path}.claims.${claim}`, message: `${problem}: this ${deny ? 'deny rule never denies' : 'binding never matches'}` });
    }
  }
  return warnings;
}

/**
 * Deny rules match a value that differs only in type as text (`true` matches "true"), so they
 * cannot fail open; but where the claim's type is unknown the author should still say what they
 * mean. Flags every non-string value in a deny rule that some applicable issuer's type cannot
 * confirm (no preset, a custom claim, or an issuer-less rule across several issuers).
 */
function denyTypeWarnings(policy: CompiledPolicy): Problem[] {
  const warnings: Problem[] = [];
  const rules: CompiledRule[] = [...policy.globalDeny, ...[...policy.roles.values()].flatMap((r) => r.deny)];
  for (const rule of rules) {
    const issuers = rule.issuer !== undefined ? [rule.issuer] : [...policy.issuers.keys()];
    for (const { claim, condition } of rule.conditions) {
      if (condition.op !== 'equals' && condition.op !== 'contains') continue;
      const nonString = condition.values.filter((v) => typeof v !== 'string');
      if (nonString.length === 0) continue;
      const unconfirmed = issuers.filter((id) => {
        const type = expectedClaimType(policy.issuers.get(id)?.preset, claim);
        const want = condition.op === 'contains' ? undefined : type;
        return want === undefined || nonString.some((v) => typeof v !== want);
      });
      if (unconfirmed.length === 0) continue;
      warnings.push({
        path: `${rule.path}.claims.${claim}`,
        message:
          `${JSON.stringify(nonString[0])} is a ${typeof nonString[0]}, but the type ${unconfirmed.join(', ')} sends for this claim is not known: ` +
          'this deny rule also matches its text form ("true" for true), allow bindings never do; quote the value to say what you mean',
      });
    }
  }
  return warnings;
}

/**
 * Session tags end up in IAM conditions (aws:PrincipalTag/…). A tag filled from a mutable name
 * (a repository or user name that can be renamed and re-registered) lets another identity meet
 * such a condition later. Flags explicitly configured tags; the presets' defaults are documented.
 */
function mutableTagWarnings(policy: CompiledPolicy): Problem[] {
  const warnings: Problem[] = [];
  for (const role of policy.roles.values()) {
    if (!role.explicitTags) continue;
    for (const [issuerId, naming] of role.naming) {
      const preset = policy.issuers.get(issuerId)?.preset;
      if (!preset) continue;
      for (const [key, template] of naming.tags) {
        const mutable = template.claims.filter((c) => immutableFor(preset, c) !== undefined);
        if (mutable.length === 0) continue;
        warnings.push({
          path: `roles.${role.name}.tags.${key}`,
          message: `filled from mutable name(s) ${mutable.join(', ')} for ${issuerId}: an IAM condition on aws:PrincipalTag/${key} can be met after a rename — tag ${[...new Set(mutable.map((c) => immutableFor(preset, c)))].join(', ')} for conditions`,
        });
      }
    }
  }
  return warnings;
}
