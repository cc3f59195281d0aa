// Warnings for policies that are valid but risky, from the providers' docs and public incidents.
import type { CompiledPolicy, CompiledBinding } from './policy.js';
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
        const mutable = [...bound].filter((c) => c in preset.mutableClaims);
        if (mutable.length > 0) {
          const suggest = [...new Set(mutable.map((c) => preset.mutableClaims[c]))].join(', ');
          warnings.push({
            path: b.path,
            message: `binds on mutable name(s) ${mutable.join(', ')} only; names can be re-registered — bind on ${suggest}`,
          });
        }
      }
      if (preset.name === 'gitlab' && !exact.has('ref_protected')) {
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
  return warnings;
}
