// `{user}` and `{tag:KEY}` in sink fields, so one tag-matched entry can target each user's own
// repository. Pure; an unknown placeholder or a missing tag is an error, never an empty string.
import { RotationError } from '../errors.js';

const PLACEHOLDER = /\{(user|tag:[^{}]+)\}/g;

export function expandTemplate(text: string, user: { userName: string; tags: Record<string, string> }, path: string): string {
  return text.replace(PLACEHOLDER, (_m, name: string) => {
    if (name === 'user') return user.userName;
    const key = name.slice(4);
    const value = user.tags[key];
    if (value === undefined || value === '') {
      throw new RotationError('ERR_SINK_TEMPLATE', `${path}: user ${user.userName} has no tag "${key}"`);
    }
    return value;
  });
}

/** Expands every string (and string in arrays) of a sink config object. */
export function expandSinkConfig<T extends object>(cfg: T, user: { userName: string; tags: Record<string, string> }, path: string): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(cfg)) {
    if (typeof v === 'string') out[k] = expandTemplate(v, user, `${path}.${k}`);
    else if (Array.isArray(v)) out[k] = v.map((x, i) => (typeof x === 'string' ? expandTemplate(x, user, `${path}.${k}[${i}]`) : x));
    else out[k] = v;
  }
  return out as T;
}
