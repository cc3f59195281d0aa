// Warnings for policies that are valid but risky, from the providers' docs and public incidents.
import type { CompiledPolicy, CompiledBinding } from './policy.js';
import { immutableFor } from './presets.js';
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
  // Without an issuer there is no preset to type values: `false` never equals GitHub's "false".
  const untyped = [...policy.globalDeny, ...[...policy.roles.values()].flatMap((r) => r.deny)].filter((d) => d.issuer === undefined);
  for (const rule of untyped) {
    for (const { claim, condition } of rule.conditions) {
      if (condition.op === 'equals' && condition.values.some((v) => typeof v !== 'string')) {
        warnings.push({ path: `${rule.path}.claims.${claim}`, message: 'non-string value in a deny rule without issuer: compared strictly by type, so it may never match a provider that sends strings; set issuer' });
      }
    }
  }
  return warnings;
}
