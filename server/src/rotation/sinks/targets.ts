// Where a key goes is the broker's config's decision, never IAM's. A sink's *target* fields (the
// repository, organization, project, environment or branch it writes to) may take a value from the
// IAM user — `{tag:KEY}`, or `{user}` in an entry that matches users by tag — only when the sink
// lists `allowed_targets`, and the target it expands to must match one of them. Anyone allowed
// `iam:TagUser` (or `iam:UpdateUser`) on a managed user could otherwise send that user's next key to
// a repository of their choosing. `base_url` and a command's arguments never take values from IAM.
// Pure: used by the config schema (at load) and by user resolution (per user, per run).
import { isLoopbackHost } from '../../admin/listener.js';

export type SinkType = 'github' | 'gitlab' | 'circleci' | 'travis' | 'command';

/** Fields that choose the destination, per sink type. */
export const TARGET_FIELDS: Readonly<Record<SinkType, readonly string[]>> = {
  github: ['owner', 'repo', 'org', 'environment'],
  gitlab: ['project', 'environment_scope'],
  circleci: ['project_slug'],
  travis: ['repo', 'branch'],
  command: [],
};

/** Fields that may vary per user without choosing a destination: the state id and the variable names. */
export const NAME_FIELDS: readonly string[] = ['id', 'access_key_id_name', 'secret_access_key_name'];

const PLACEHOLDER = /\{(user|tag:[^{}]+)\}/;

export const hasPlaceholder = (v: unknown): boolean => typeof v === 'string' && PLACEHOLDER.test(v);
export const hasTagPlaceholder = (v: unknown): boolean => typeof v === 'string' && /\{tag:[^{}]+\}/.test(v);
export const hasUserPlaceholder = (v: unknown): boolean => typeof v === 'string' && v.includes('{user}');

/**
 * Whether target field values come from IAM: `{tag:KEY}` always (any holder of iam:TagUser sets
 * it); `{user}` when the entry matches users by tag (the user's name is then whatever IAM says).
 */
export function targetFromIam(type: SinkType, sink: Record<string, unknown>, entryMatchesByTag: boolean): string[] {
  return TARGET_FIELDS[type].filter((f) => hasTagPlaceholder(sink[f]) || (entryMatchesByTag && hasUserPlaceholder(sink[f])));
}

/** A value substituted into a target: one plain path segment, nothing that could walk elsewhere. */
export function unsafeTargetValue(value: string): boolean {
  return !/^[A-Za-z0-9_.=+@-]+$/.test(value) || value === '.' || value === '..';
}

/** `allowed_targets` pattern → anchored RegExp; `*` matches any run of characters except `/` and `:`. */
export function targetPattern(pattern: string): RegExp {
  const body = pattern
    .split('*')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('[^/:]*');
  return new RegExp(`^${body}$`);
}

export const targetAllowed = (patterns: readonly string[], target: string): boolean => patterns.some((p) => targetPattern(p).test(target));

/** A sink's API base URL: https, or plain http only to a loopback address (a local test server). */
export function baseUrlProblem(raw: string): string | undefined {
  if (hasPlaceholder(raw)) return 'must not use {user} or {tag:…}: the API host comes from the config alone';
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'not a valid URL';
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
    return 'must use https (plain http only to a loopback address such as 127.0.0.1 or localhost)';
  }
  if (url.username !== '' || url.password !== '') return 'must not contain userinfo';
  if (url.search !== '' || url.hash !== '' || raw.includes('?') || raw.includes('#')) return 'must not contain a query or fragment';
  return undefined;
}
