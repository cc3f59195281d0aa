// Store factory: the one place that turns `store:` config into a Store. Each driver is loaded
// only when configured (a SQLite broker never loads pg, and the other way round).
import { MemoryStore } from './memory.js';
import { StoreError, type Store } from './types.js';

export type { Store, RotationState, RotationPhase, Lease } from './types.js';
export { StoreError, emptyRotationState } from './types.js';

export interface StoreConfig {
  driver: 'memory' | 'sqlite' | 'postgres';
  sqlite_path: string;
  postgres_url?: string | undefined;
  postgres_pool_size?: number | undefined;
}

export interface OpenStoreOptions {
  nowMs?: () => number;
  /** No writes at all (no migrations, no file creation). */
  readonly?: boolean;
}

export async function openStore(config: StoreConfig, opts: OpenStoreOptions = {}): Promise<Store> {
  switch (config.driver) {
    case 'memory':
      return new MemoryStore(opts.nowMs);
    case 'sqlite': {
      const { SqliteStore } = await import('./sqlite.js');
      return SqliteStore.open(config.sqlite_path, opts);
    }
    case 'postgres': {
      if (!config.postgres_url) throw new StoreError('ERR_STORE_UNAVAILABLE', 'store.postgres_url is required when store.driver is "postgres"');
      const { PostgresStore } = await import('./postgres.js');
      return PostgresStore.open(config.postgres_url, { ...opts, ...(config.postgres_pool_size ? { maxConnections: config.postgres_pool_size } : {}) });
    }
  }
}

/** Rotation keeps its progress in the store; in memory a crash would lose which key is in flight. */
export function assertPersistentStore(store: Store): void {
  if (store.driver === 'memory') {
    throw new StoreError('ERR_STORE_NOT_PERSISTENT', 'key rotation needs a persistent store: set store.driver to "sqlite" (or "postgres")');
  }
}
