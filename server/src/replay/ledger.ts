// One-time tokens: a token is accepted once within its lifetime. The key is a hash of
// issuer + jti, or, for tokens without a jti, of what the signature covers (`header.payload`):
// never the raw token text, which has other spellings that verify just the same (padding or
// unused bits in the signature segment, the second valid ECDSA signature).
import { createHash } from 'node:crypto';

export interface ReplayLedger {
  /** Records the key as used until `expiresAt`; resolves false when it was already used. */
  claim(key: string, expiresAt: Date, now: Date): Promise<boolean>;
  /** Forgets a claim: issuance failed for a transient reason and the caller may retry. */
  release(key: string): Promise<void>;
}

export function replayKey(issuerUrl: string, jti: unknown, signedHash: string): string {
  if (typeof jti === 'string' && jti.length > 0) {
    return createHash('sha256').update(`${issuerUrl}\u0000${jti}`).digest('hex');
  }
  return `s:${signedHash}`;
}

/** In-process ledger: the default for a single replica. Expired entries are swept as it grows. */
export class MemoryReplayLedger implements ReplayLedger {
  private readonly used = new Map<string, number>();
  private nextSweep = 0;

  async claim(key: string, expiresAt: Date, now: Date): Promise<boolean> {
    const t = now.getTime();
    if (t >= this.nextSweep) this.sweep(t);
    const until = this.used.get(key);
    if (until !== undefined && until > t) return false;
    this.used.set(key, expiresAt.getTime());
    return true;
  }

  async release(key: string): Promise<void> {
    this.used.delete(key);
  }

  get size(): number {
    return this.used.size;
  }

  private sweep(now: number): void {
    for (const [k, until] of this.used) if (until <= now) this.used.delete(k);
    this.nextSweep = now + 10_000;
  }
}
