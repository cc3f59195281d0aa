// The rotation lease as a run holds it: renewed in the background every third of its duration,
// renewed on demand before a push (which then knows how long the lease certainly holds), and a
// `lost` signal that stops the run's work in flight as soon as a renewal fails.
import type { Logger } from '../log.js';
import type { Lease, Store } from '../store/types.js';
import { RotationError } from './errors.js';

export interface LeaseKeeper {
  readonly ttlMs: number;
  current(): Lease;
  /** Aborted when the lease is lost (a renewal found another holder, or failed). */
  readonly lost: AbortSignal;
  /**
   * Renews now. Resolves with the time (epoch ms, this host's clock) before which the lease
   * certainly still holds, a guard margin early; throws ERR_ROTATION_LEASE_LOST if it is gone.
   */
  renew(): Promise<number>;
  stop(): void;
}

/** Margin between a push's deadline and the lease's expiry: clock drift, store latency, process start-up. */
export const leaseGuardMs = (ttlMs: number): number => Math.max(2000, Math.round(ttlMs * 0.1));

export function keepLease(store: Store, acquired: Lease, ttlMs: number, logger: Logger, clock: () => number = Date.now): LeaseKeeper {
  let lease = acquired;
  const lost = new AbortController();
  const markLost = (why: string) => {
    if (lost.signal.aborted) return;
    logger.error({ component: 'rotation' }, `rotation lock lost (${why}); stopping this run`);
    lost.abort(new RotationError('ERR_ROTATION_LEASE_LOST', 'the rotation lease was lost'));
  };
  const renew = async (): Promise<number> => {
    if (lost.signal.aborted) throw new RotationError('ERR_ROTATION_LEASE_LOST', 'the rotation lease was lost');
    // Measured before the request: the store's expiry is at least this plus the ttl.
    const before = clock();
    let renewed: Lease | undefined;
    try {
      renewed = await store.renewLease(lease, ttlMs);
    } catch {
      markLost('renewal failed');
      throw new RotationError('ERR_ROTATION_LEASE_LOST', 'the rotation lease could not be renewed');
    }
    if (!renewed) {
      markLost('taken over or expired');
      throw new RotationError('ERR_ROTATION_LEASE_LOST', 'the rotation lease was lost');
    }
    lease = renewed;
    return before + ttlMs - leaseGuardMs(ttlMs);
  };
  const timer = setInterval(() => void renew().catch(() => undefined), Math.max(1000, ttlMs / 3));
  timer.unref();
  return {
    ttlMs,
    current: () => lease,
    lost: lost.signal,
    renew,
    stop: () => clearInterval(timer),
  };
}
