// Which IAM users are managed, and with which settings and sinks. Entries are matched in config
// order; the first entry that matches a user applies. Sink fields are expanded per user
// ({user}, {tag:KEY}) and a sink with `allowed_targets` must expand to one of them; a user whose
// sinks cannot be resolved is reported, not rotated (and no key of it is created).
import type { IamKeys, IamUserInfo } from '../aws/iam.js';
import { sinkIdOf, targetOf } from './sinks/index.js';
import { targetAllowed } from './sinks/targets.js';
import { expandSinkConfig } from './sinks/template.js';
import type { RotationConfig, SinkConfig, UserEntry } from './config-schema.js';
import { RotationError } from './errors.js';

export interface ManagedUser {
  userName: string;
  arn: string;
  tags: Record<string, string>;
  /** Index of the `rotation.users` entry that selected this user. */
  entryIndex: number;
  maxKeyAgeSeconds: number;
  graceSeconds: number;
  sinks: SinkConfig[];
  sinkIds: string[];
}

export interface DiscoveryProblem {
  userName?: string;
  entryIndex: number;
  code: string;
  message: string;
}

export function matchesEntry(entry: UserEntry, user: IamUserInfo): boolean {
  if (!user.path.startsWith(entry.path_prefix)) return false;
  if (entry.name !== undefined) return user.userName === entry.name;
  const tag = entry.tag!;
  const value = user.tags[tag.key];
  return value !== undefined && (tag.value === undefined || tag.value === value);
}

export function resolveUser(config: RotationConfig, entryIndex: number, user: IamUserInfo): ManagedUser {
  const entry = config.users[entryIndex]!;
  const sinks = entry.sinks.map((s, i) => {
    const path = `rotation.users[${entryIndex}].sinks[${i}]`;
    const expanded = expandSinkConfig(s, user, path);
    if (expanded.type !== 'command' && expanded.allowed_targets !== undefined && !targetAllowed(expanded.allowed_targets, targetOf(expanded))) {
      throw new RotationError('ERR_SINK_TARGET_NOT_ALLOWED', `${path}: target ${targetOf(expanded)} of user ${user.userName} is not in allowed_targets`);
    }
    return expanded;
  });
  const sinkIds = sinks.map(sinkIdOf);
  const dup = sinkIds.find((id, i) => sinkIds.indexOf(id) !== i);
  if (dup !== undefined) throw new RotationError('ERR_ROTATION_CONFIG', `rotation.users[${entryIndex}]: two sinks of ${user.userName} have the id ${dup}`);
  return {
    userName: user.userName,
    arn: user.arn,
    tags: user.tags,
    entryIndex,
    maxKeyAgeSeconds: entry.max_key_age_seconds ?? config.max_key_age_seconds,
    graceSeconds: entry.grace_period_seconds ?? config.grace_period_seconds,
    sinks,
    sinkIds,
  };
}

export async function discoverUsers(config: RotationConfig, iam: IamKeys): Promise<{ users: ManagedUser[]; problems: DiscoveryProblem[] }> {
  const candidates = new Map<string, IamUserInfo>();
  const listed = new Map<string, IamUserInfo[]>();
  const problems: DiscoveryProblem[] = [];
  for (const [i, entry] of config.users.entries()) {
    if (entry.name !== undefined) {
      const u = await iam.getUser(entry.name);
      if (!u) problems.push({ userName: entry.name, entryIndex: i, code: 'ERR_ROTATION_USER_NOT_FOUND', message: `IAM user ${entry.name} does not exist` });
      else if (!candidates.has(u.userName)) candidates.set(u.userName, u);
    } else {
      let users = listed.get(entry.path_prefix);
      if (!users) listed.set(entry.path_prefix, (users = await iam.listUsers(entry.path_prefix)));
      for (const u of users) if (!candidates.has(u.userName)) candidates.set(u.userName, u);
    }
  }
  const users: ManagedUser[] = [];
  const bySinkId = new Map<string, string>();
  for (const u of [...candidates.values()].sort((a, b) => a.userName.localeCompare(b.userName))) {
    const entryIndex = config.users.findIndex((e) => matchesEntry(e, u));
    if (entryIndex < 0) continue;
    try {
      const managed = resolveUser(config, entryIndex, u);
      // Two users writing the same variables would overwrite each other's key. (A command sink gets
      // the user name with the key, so sharing one is fine.)
      const targets = managed.sinks.map((s, i) => (s.type === 'command' ? undefined : `${managed.sinkIds[i]}#${s.access_key_id_name}#${s.secret_access_key_name}`));
      const clash = targets.findIndex((t) => t !== undefined && bySinkId.has(t));
      if (clash >= 0) {
        throw new RotationError('ERR_ROTATION_CONFIG', `${u.userName}: sink ${managed.sinkIds[clash]} also receives the key of ${bySinkId.get(targets[clash]!)} (use {user} or {tag:KEY})`);
      }
      for (const t of targets) if (t !== undefined) bySinkId.set(t, u.userName);
      users.push(managed);
    } catch (err) {
      if (!(err instanceof RotationError)) throw err;
      problems.push({ userName: u.userName, entryIndex, code: err.code, message: err.message });
    }
  }
  return { users, problems };
}
