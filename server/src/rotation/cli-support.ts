// Shared plumbing of `credbroker rotate` and `credbroker keys`: flags, config, store, audit.
import { appendFile } from 'node:fs/promises';
import type { AuditRecord, AuditSink } from '../audit/types.js';
import { configPathFrom, loadConfigFile } from '../config/load.js';
import type { Config } from '../config/compile.js';
import { MemoryStore } from '../store/memory.js';
import { openStore, StoreError, type Store } from '../store/index.js';
import type { RotationConfig } from './config-schema.js';
import { StoreAuditSink } from '../ops/adapters.js';
import { loadAuditKeyring } from '../audit/keys.js';
import type { AuditStore } from '../ops/types.js';
import { reportCliError, UsageError } from '../cli/args.js';

export { UsageError };

export async function loadRotationConfig(flag: string | undefined): Promise<{ config: Config; rotation: RotationConfig }> {
  const { config, warnings } = await loadConfigFile(configPathFrom(flag));
  for (const w of warnings) process.stderr.write(`warning: ${w.path}: ${w.message}\n`);
  if (!config.rotation) throw new UsageError(`${configPathFrom(flag)} has no rotation: section (docs/rotation.md)`);
  return { config, rotation: config.rotation };
}

/** Read-only views (dry run, inventory) never create or migrate the store file. */
export async function openStoreForRead(config: Config): Promise<Store> {
  try {
    return await openStore(config.store, { readonly: true });
  } catch (err) {
    // A SQLite file not created yet means "no rotation has run"; an unreachable PostgreSQL does not.
    if (err instanceof StoreError && err.code === 'ERR_STORE_UNAVAILABLE' && config.store.driver === 'sqlite') return new MemoryStore();
    throw err;
  }
}

/** JSON lines per `audit:` config. In the CLI the stdout sink writes to stderr: stdout carries the report. */
export function cliAuditSink(audit: Config['audit'], store?: AuditStore): AuditSink {
  // With audit.sink "store", CLI rotations join the same hash chain as the broker's records.
  if (audit.sink === 'store' && store) return new StoreAuditSink(store, loadAuditKeyring(audit));
  return {
    async write(record: AuditRecord) {
      const line = `${JSON.stringify(record)}\n`;
      if (audit.sink === 'file' && audit.path) await appendFile(audit.path, line, { mode: 0o600 });
      else process.stderr.write(line);
    },
  };
}

/** Prints a usage error (a config that does not load: its problems) and gives the exit status 2. */
export function printUsageError(err: unknown, command: string): number {
  if (err instanceof Error && Array.isArray((err as { problems?: unknown }).problems)) {
    process.stderr.write(`${err.message}\n`);
    return 2;
  }
  return reportCliError(err, command);
}
