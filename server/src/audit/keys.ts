// The audit HMAC keys, read from a file or an environment variable named in the config (never
// from the config text itself, never from the database). Read once, at start: a key that cannot
// be read stops the start, it is never skipped.
import { readFileSync } from 'node:fs';
import { deriveKeyId, EMPTY_KEYRING, type ChainKey, type Keyring } from '../core/audit-chain.js';
import type { Config } from '../config/compile.js';

export const MIN_KEY_LENGTH = 32;

export class AuditKeyError extends Error {
  override readonly name = 'AuditKeyError';
}

interface KeySource {
  id?: string | undefined;
  file?: string | undefined;
  env?: string | undefined;
}

function readKey(source: KeySource, what: string, env: NodeJS.ProcessEnv): ChainKey {
  let text: string | undefined;
  if (source.file !== undefined) {
    try {
      text = readFileSync(source.file, 'utf8');
    } catch (err) {
      throw new AuditKeyError(`cannot read the ${what} from ${source.file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  } else if (source.env !== undefined) {
    text = env[source.env];
    if (text === undefined) throw new AuditKeyError(`the ${what} environment variable ${source.env} is not set`);
  }
  const secret = Buffer.from((text ?? '').trim(), 'utf8');
  if (secret.length < MIN_KEY_LENGTH) {
    // Never show the key, not even its length beyond "too short".
    throw new AuditKeyError(`the ${what} (${source.file ?? `$${source.env}`}) is shorter than ${MIN_KEY_LENGTH} characters: generate one with \`openssl rand -base64 48\``);
  }
  return { id: source.id ?? deriveKeyId(secret), secret };
}

/** The keyring for `audit:` config: the current key (if any) and every retired key, by id. */
export function loadAuditKeyring(audit: Config['audit'], env: NodeJS.ProcessEnv = process.env): Keyring {
  if (audit.hmac_key_file === undefined && audit.hmac_key_env === undefined) return EMPTY_KEYRING;
  const current = readKey({ id: audit.hmac_key_id, file: audit.hmac_key_file, env: audit.hmac_key_env }, 'audit HMAC key', env);
  const byId = new Map<string, ChainKey>([[current.id, current]]);
  audit.previous_hmac_keys.forEach((source, i) => {
    const key = readKey(source, `retired audit HMAC key previous_hmac_keys[${i}]`, env);
    const known = byId.get(key.id);
    if (known && !known.secret.equals(key.secret)) throw new AuditKeyError(`two different audit HMAC keys have the id ${key.id}`);
    byId.set(key.id, key);
  });
  return { current, byId };
}
