// Admin authentication: bearer tokens configured only as SHA-256 hashes, compared in constant
// time against every configured hash (no early exit, so timing says nothing about which matched).
// Each token carries scopes: `read` (every read-only route) and `operate` (also the routes that
// change state). A token configured without scopes can only read: the safe default for configs
// written before scopes existed.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { AdminScope } from '../config/schema.js';

export interface AdminTokenConfig {
  name: string;
  sha256: string;
  scopes?: AdminScope[] | undefined;
}

export type AdminAuthentication =
  | { ok: true; name: string; scopes: ReadonlySet<AdminScope> }
  | { ok: false; reason: 'missing' | 'not-bearer' | 'unknown-token' };

export const DEFAULT_ADMIN_SCOPES: readonly AdminScope[] = ['read'];

/** The scopes a token holds: `operate` includes `read`. */
export function effectiveScopes(scopes: readonly AdminScope[] | undefined): ReadonlySet<AdminScope> {
  const set = new Set<AdminScope>(scopes ?? DEFAULT_ADMIN_SCOPES);
  if (set.has('operate')) set.add('read');
  return set;
}

export function authenticateAdmin(authorization: string | undefined, tokens: ReadonlyArray<AdminTokenConfig>): AdminAuthentication {
  if (!authorization) return { ok: false, reason: 'missing' };
  const m = /^Bearer[ ]+(\S+)\s*$/i.exec(authorization);
  if (!m) return { ok: false, reason: 'not-bearer' };
  const presented = createHash('sha256').update(m[1]!).digest();
  let match: AdminTokenConfig | undefined;
  for (const t of tokens) {
    const expected = Buffer.from(t.sha256, 'hex');
    if (expected.length === presented.length && timingSafeEqual(expected, presented) && match === undefined) match = t;
  }
  return match ? { ok: true, name: match.name, scopes: effectiveScopes(match.scopes) } : { ok: false, reason: 'unknown-token' };
}

export const hashAdminToken = (token: string): string => createHash('sha256').update(token).digest('hex');
