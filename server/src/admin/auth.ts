// Admin authentication: bearer tokens configured only as SHA-256 hashes, compared in constant
// time against every configured hash (no early exit, so timing says nothing about which matched).
import { createHash, timingSafeEqual } from 'node:crypto';

export function adminIdentity(authorization: string | undefined, tokens: ReadonlyArray<{ name: string; sha256: string }>): string | undefined {
  const m = /^Bearer[ ]+(\S+)\s*$/i.exec(authorization ?? '');
  if (!m) return undefined;
  const presented = createHash('sha256').update(m[1]!).digest();
  let match: string | undefined;
  for (const t of tokens) {
    const expected = Buffer.from(t.sha256, 'hex');
    if (expected.length === presented.length && timingSafeEqual(expected, presented) && match === undefined) match = t.name;
  }
  return match;
}

export const hashAdminToken = (token: string): string => createHash('sha256').update(token).digest('hex');
