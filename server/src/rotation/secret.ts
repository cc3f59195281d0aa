// A secret access key held in memory only. It cannot be logged, serialised or inspected by
// accident: JSON.stringify, String(), template literals and util.inspect all print a placeholder.
// Code that needs the value (a sink request body, STS signing) calls reveal() at the last moment.
import { inspect } from 'node:util';

const values = new WeakMap<SecretValue, string>();

export class SecretValue {
  constructor(value: string) {
    values.set(this, value);
  }
  reveal(): string {
    return values.get(this)!;
  }
  toJSON(): string {
    return '[REDACTED]';
  }
  toString(): string {
    return '[REDACTED]';
  }
  [inspect.custom](): string {
    return 'SecretValue([REDACTED])';
  }
}

/** A freshly created key: the only object that carries a secret access key. */
export interface NewAccessKey {
  userName: string;
  accessKeyId: string;
  secretAccessKey: SecretValue;
  createdAt: Date;
}

/** Removes every occurrence of the secrets from a text that may have echoed them (e.g. a program's stderr). */
export function scrub(text: string, secrets: SecretValue[]): string {
  let out = text;
  for (const s of secrets) {
    const v = s.reveal();
    if (v.length > 0) out = out.split(v).join('[REDACTED]');
  }
  return out;
}
