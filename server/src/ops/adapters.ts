// The store behind the broker's existing seams: the replay ledger, the audit sink and the rate
// limiter's counters.
import type { Store as RateLimitStore, Options as RateLimitOptions } from 'express-rate-limit';
import type { AuditRecord, AuditSink } from '../audit/types.js';
import type { Keyring } from '../core/audit-chain.js';
import type { ReplayLedger } from '../replay/ledger.js';
import type { RateLimitStoreFactory } from '../http/rate-limit.js';
import type { AuditStore, CounterStore, TokenLedgerStore } from './types.js';

export class StoreReplayLedger implements ReplayLedger {
  constructor(private readonly store: TokenLedgerStore) {}
  claim(key: string, expiresAt: Date, now: Date): Promise<boolean> {
    return this.store.claimToken(key, expiresAt, now);
  }
  release(key: string): Promise<void> {
    return this.store.releaseToken(key);
  }
}

/**
 * Audit records go into the hash chain, keyed with the keyring's current key (legacy unkeyed rows
 * without one); `also` (e.g. stdout) gets a copy for log shipping.
 */
export class StoreAuditSink implements AuditSink {
  constructor(
    private readonly store: AuditStore,
    private readonly keyring?: Keyring,
    private readonly also?: AuditSink,
  ) {}
  async write(record: AuditRecord): Promise<void> {
    await this.store.appendAudit(record, this.keyring?.current);
    await this.also?.write(record);
  }
}

export function counterRateLimitStore(store: CounterStore): RateLimitStoreFactory {
  return (name, windowMs): RateLimitStore => {
    const prefix = `rl:${name}:`;
    let window = windowMs;
    return {
      prefix,
      localKeys: false,
      init(options: RateLimitOptions) {
        window = options.windowMs;
      },
      async increment(key: string) {
        const { hits, resetAt } = await store.incrementCounter(prefix + key, window, new Date());
        return { totalHits: hits, resetTime: resetAt };
      },
      async decrement(key: string) {
        await store.decrementCounter(prefix + key);
      },
      async resetKey(key: string) {
        await store.resetCounter(prefix + key);
      },
    };
  };
}
