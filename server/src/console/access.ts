// Who may use the console, and as what: the person's groups (a claim of the ID token) and e-mail
// address against console.viewers and console.operators. Deny by default: someone matched by
// neither gets nothing. Evaluated again on every request with the config then in force, so
// removing a person from a list takes effect at their next click, not at their next sign-in.
import type { ConsoleSettings } from './settings.js';

export type ConsoleRole = 'viewer' | 'operator';

/** What the console keeps of a person after sign-in (never a token). */
export interface Person {
  /** Shown and recorded in the audit trail: the e-mail address, else subject@issuer. */
  id: string;
  email: string | undefined;
  name: string | undefined;
  groups: string[];
  /** Dev mode: the role picked on the dev login page (no SSO). */
  devRole?: ConsoleRole;
}

export type AccessDecision = { ok: true; role: ConsoleRole } | { ok: false; reason: 'not-allowed' };

const lower = (s: string) => s.trim().toLowerCase();

export function roleFor(person: Person, settings: Pick<ConsoleSettings, 'viewers' | 'operators'>): AccessDecision {
  if (person.devRole) return { ok: true, role: person.devRole };
  const email = person.email === undefined ? undefined : lower(person.email);
  const inList = (list: ConsoleSettings['viewers']) =>
    person.groups.some((g) => list.groups.includes(g)) || (email !== undefined && list.emails.some((e) => lower(e) === email));
  if (inList(settings.operators)) return { ok: true, role: 'operator' };
  if (inList(settings.viewers)) return { ok: true, role: 'viewer' };
  return { ok: false, reason: 'not-allowed' };
}

/** A person from ID token (and userinfo) claims. An unverified e-mail address is not used. */
export function personFromClaims(claims: Record<string, unknown>, opts: { emailClaim: string; groupsClaim: string }): Person {
  const raw = claims[opts.emailClaim];
  const verified = claims.email_verified;
  // Only the `email` claim carries email_verified; when a provider says false, ignore the address.
  const email = typeof raw === 'string' && raw.includes('@') && !(opts.emailClaim === 'email' && (verified === false || verified === 'false')) ? raw : undefined;
  const g = claims[opts.groupsClaim];
  const groups = Array.isArray(g) ? g.filter((x): x is string => typeof x === 'string') : typeof g === 'string' ? [g] : [];
  const sub = typeof claims.sub === 'string' ? claims.sub : '?';
  const iss = typeof claims.iss === 'string' ? claims.iss : '?';
  return {
    id: email ?? `${sub}@${iss}`,
    email,
    name: typeof claims.name === 'string' ? claims.name : undefined,
    groups: groups.slice(0, 500),
  };
}

/** The claims every person must carry (console.sso.required_claims): the first that does not hold, or undefined. */
export function missingRequiredClaim(claims: Record<string, unknown>, required: Record<string, string>): string | undefined {
  return Object.keys(required).find((k) => claims[k] !== required[k]);
}
