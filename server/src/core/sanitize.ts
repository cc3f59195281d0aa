// Make claim-derived strings valid for AWS, whatever the claims contain. These never throw:
// a hostile or odd claim value yields a valid (if less pretty) session name or source identity —
// made unique by a hash when it had to change — or, for a tag value, an audited omission.
import { createHash } from 'node:crypto';

/** RoleSessionName and SourceIdentity: 2–64 chars of [\w+=,.@-] (ASCII \w). */
const SESSION_CHAR = /[A-Za-z0-9_+=,.@-]/;
export const SESSION_NAME_RE = /^[A-Za-z0-9_+=,.@-]{2,64}$/;
/** Session tag keys and values: letters, spaces, numbers (any script) and _ . : / = + - @ */
export const TAG_CHARS_RE = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;
export const TAG_KEY_MAX = 128;
export const TAG_VALUE_MAX = 256;
export const MAX_SESSION_TAGS = 50;

const shortHash = (s: string): string => createHash('sha256').update(s).digest('hex').slice(0, 10);

function toAwsIdentifier(raw: string, fallback: string): string {
  let out = '';
  for (const ch of raw) out += SESSION_CHAR.test(ch) ? ch : '-';
  out = out.replace(/-{2,}/g, '-');
  if (out.length > 64) {
    // Keep it unique: a prefix plus a hash of the whole raw value.
    out = `${out.slice(0, 53)}-${shortHash(raw)}`;
  }
  if (out.length === 0 || /^-*$/.test(out)) out = fallback;
  if (out.length < 2) out = `${out}-`.padEnd(2, '-');
  return out;
}

export function sanitizeSessionName(raw: string): string {
  return toAwsIdentifier(raw, 'credbroker');
}

export function sanitizeSourceIdentity(raw: string): string {
  let out = toAwsIdentifier(raw, 'credbroker');
  // AWS rejects a SourceIdentity that begins with "aws:"; ":" is already replaced, but keep the
  // rule explicit in case the charset above ever widens.
  if (/^aws:/i.test(out)) out = `x-${out}`.slice(0, 64);
  return out;
}

/** Why a claim value cannot be a session tag value as it is. */
export type TagOmission = 'characters' | 'length';

/**
 * A claim value as a session tag value — exactly, or not at all. Tag values end up in IAM
 * conditions (`aws:PrincipalTag/ref`), so an altered value is worse than none: replacing or cutting
 * characters makes different values equal (`release#2024` and `release_2024`, two long values that
 * differ only after the cut), and a condition written for one would be met by the other. A value AWS
 * would refuse is left out and the omission is audited; a condition on a missing tag does not match.
 */
export function tagValue(raw: string): { value: string } | { omitted: TagOmission } {
  if (Array.from(raw).length > TAG_VALUE_MAX) return { omitted: 'length' };
  if (!TAG_CHARS_RE.test(raw)) return { omitted: 'characters' };
  return { value: raw };
}

/** Validates a configured tag key; returns a problem message or undefined. */
export function tagKeyProblem(key: string): string | undefined {
  const length = Array.from(key).length;
  if (length < 1 || length > TAG_KEY_MAX) return `tag key must be 1–${TAG_KEY_MAX} characters`;
  if (!TAG_CHARS_RE.test(key)) return 'tag key may contain only letters, digits, spaces and _ . : / = + - @';
  if (/^aws:/i.test(key)) return 'tag key may not start with "aws:"';
  return undefined;
}

export function isValidTagValue(value: string): boolean {
  return Array.from(value).length <= TAG_VALUE_MAX && TAG_CHARS_RE.test(value);
}
