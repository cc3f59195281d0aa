// Validators for the names AWS and the broker accept. Each returns a problem message or undefined,
// so the settings parser can gather every problem before it reports.

export const IAM_PATH_RE = /^\/([\x21-\x7e]*\/)?$/;
export const IAM_NAME_RE = /^[\w+=,.@-]{1,64}$/;
/** Role keys of the broker config (`roles:` map in server/src/config/schema.ts). */
export const BROKER_ROLE_KEY_RE = /^[A-Za-z0-9_.-]+$/;
export const ACCOUNT_ID_RE = /^\d{12}$/;
export const PRINCIPAL_ARN_RE = /^arn:aws[a-z-]*:(iam|sts)::\d{12}:(root|role\/[\w+=,.@/-]+|user\/[\w+=,.@/-]+|assumed-role\/[\w+=,.@/-]+)$/;
export const ROLE_ARN_RE = /^arn:aws[a-z-]*:iam::(\d{12}):role\/[\w+=,.@/-]{1,512}$/;
export const OIDC_PROVIDER_ARN_RE = /^arn:aws[a-z-]*:iam::\d{12}:oidc-provider\/[a-z0-9.-]+(\/[\w.-]+)*$/;
export const MANAGED_POLICY_ARN_RE = /^arn:aws[a-z-]*:iam::(aws|\d{12}):policy\/[\w+=,.@/-]+$/;
/** SourceIdentity characters (STS), and the same plus IAM wildcards for a StringLike pattern. */
export const SOURCE_IDENTITY_CHARS_RE = /^[\w+=,.@-]*$/;
export const SOURCE_IDENTITY_PATTERN_RE = /^[\w+=,.@*?-]{1,64}$/;
/** Session tag keys: letters, spaces, numbers (any script) and _ . : / = + - @ (STS). */
const TAG_KEY_RE = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,128}$/u;
export const MAX_SESSION_TAGS = 50;

export function iamPathProblem(path: string): string | undefined {
  if (path.length > 512) return 'an IAM path is at most 512 characters';
  if (!IAM_PATH_RE.test(path)) return 'expected an IAM path that starts and ends with "/", e.g. /credbroker/';
  return undefined;
}

export function tagKeyProblem(key: string): string | undefined {
  if (!TAG_KEY_RE.test(key)) return 'a tag key is 1–128 letters, digits, spaces and _ . : / = + - @';
  if (/^aws:/i.test(key)) return 'a tag key may not start with "aws:"';
  return undefined;
}

/** True when one IAM path contains the other (an ARN pattern for one would match the other). */
export const pathsOverlap = (a: string, b: string): boolean => a.startsWith(b) || b.startsWith(a);
