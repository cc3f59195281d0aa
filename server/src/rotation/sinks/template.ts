// `{user}` and `{tag:KEY}` in a sink's target fields and variable names, so that one tag-matched
// entry can deliver each user's key to that user's own repository. Pure; an unknown placeholder or a
// missing tag is an error, never an empty string. Other fields (base_url, a command's arguments)
// never hold a template: the config schema refuses them (targets.ts).
import { RotationError } from '../errors.js';
import type { SinkConfig } from '../config-schema.js';
import { NAME_FIELDS, TARGET_FIELDS, unsafeTargetValue } from './targets.js';

const PLACEHOLDER = /\{(user|tag:[^{}]+)\}/g;

export interface TemplateUser {
  userName: string;
  tags: Record<string, string>;
}

/** Expands one value. With `target`, each substituted value must be one plain path segment. */
export function expandTemplate(text: string, user: TemplateUser, path: string, opts: { target?: boolean } = {}): string {
  return text.replace(PLACEHOLDER, (_m, name: string) => {
    const value = name === 'user' ? user.userName : user.tags[name.slice(4)];
    if (value === undefined || value === '') {
      throw new RotationError('ERR_SINK_TEMPLATE', `${path}: user ${user.userName} has no tag "${name.slice(4)}"`);
    }
    if (opts.target && unsafeTargetValue(value)) {
      throw new RotationError('ERR_SINK_TARGET_NOT_ALLOWED', `${path}: the value of {${name}} for user ${user.userName} is not a plain name (only A-Z a-z 0-9 _ . = + @ -)`);
    }
    return value;
  });
}

/** The sink config for one user: target fields and variable names expanded, everything else as written. */
export function expandSinkConfig(cfg: SinkConfig, user: TemplateUser, path: string): SinkConfig {
  const out: Record<string, unknown> = { ...cfg };
  const targets = TARGET_FIELDS[cfg.type];
  for (const field of [...targets, ...NAME_FIELDS]) {
    const v = out[field];
    if (typeof v === 'string') out[field] = expandTemplate(v, user, `${path}.${field}`, { target: targets.includes(field) });
  }
  return out as SinkConfig;
}
