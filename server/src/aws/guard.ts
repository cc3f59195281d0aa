// Protects STS (and the broker) per target account: pacing with a token bucket, and a circuit
// breaker that stops calling an account whose STS keeps throttling or failing, answering 503 with
// Retry-After instead of piling up retries.
import { BrokerError, isBrokerError } from '../errors.js';
import type { AssumeRoleRequest, CredentialIssuer, IssuedCredentials } from './sts.js';

export interface GuardOptions {
  callsPerSecond: number;
  failureThreshold: number;
  openSeconds: number;
  /** How long a call may wait for pacing before it is refused (ms). */
  maxWaitMs?: number;
  now?: () => number;
  onStateChange?(account: string, state: 'open' | 'closed'): void;
}

interface AccountState {
  tokens: number;
  refilledAt: number;
  failures: number;
  openUntil: number;
  trialInFlight: boolean;
}

const accountOf = (roleArn: string): string => roleArn.split(':')[4] ?? 'unknown';
const TRANSIENT = new Set(['ERR_STS_THROTTLED', 'ERR_STS_UNAVAILABLE']);

export class GuardedIssuer implements CredentialIssuer {
  private readonly accounts = new Map<string, AccountState>();
  private readonly now: () => number;

  constructor(
    private readonly inner: CredentialIssuer,
    private readonly opts: GuardOptions,
  ) {
    this.now = opts.now ?? Date.now;
  }

  private state(account: string): AccountState {
    let s = this.accounts.get(account);
    if (!s) this.accounts.set(account, (s = { tokens: this.opts.callsPerSecond, refilledAt: this.now(), failures: 0, openUntil: 0, trialInFlight: false }));
    return s;
  }

  private async pace(s: AccountState, account: string): Promise<void> {
    const deadline = this.now() + (this.opts.maxWaitMs ?? 2000);
    for (;;) {
      const t = this.now();
      s.tokens = Math.min(this.opts.callsPerSecond, s.tokens + ((t - s.refilledAt) / 1000) * this.opts.callsPerSecond);
      s.refilledAt = t;
      if (s.tokens >= 1) {
        s.tokens -= 1;
        return;
      }
      const wait = Math.ceil(((1 - s.tokens) / this.opts.callsPerSecond) * 1000);
      if (t + wait > deadline) {
        throw new BrokerError('ERR_STS_THROTTLED', { detail: { account, error: 'broker-side pacing limit reached' }, retryAfter: 1 });
      }
      await new Promise((r) => setTimeout(r, wait));
    }
  }

  async assumeRole(req: AssumeRoleRequest, signal?: AbortSignal): Promise<IssuedCredentials> {
    const account = accountOf(req.roleArn);
    const s = this.state(account);
    const t = this.now();
    let trial = false;
    if (s.openUntil > t || (s.openUntil > 0 && s.trialInFlight)) {
      const retryAfter = Math.max(1, Math.ceil((s.openUntil - t) / 1000));
      throw new BrokerError('ERR_STS_UNAVAILABLE', { detail: { account, error: 'circuit open: STS for this account keeps failing' }, retryAfter });
    }
    if (s.openUntil > 0) {
      // Half-open: exactly one trial call decides whether the circuit closes.
      trial = true;
      s.trialInFlight = true;
    }
    try {
      await this.pace(s, account);
      const out = await this.inner.assumeRole(req, signal);
      if (s.openUntil > 0) this.opts.onStateChange?.(account, 'closed');
      s.failures = 0;
      s.openUntil = 0;
      return out;
    } catch (err) {
      if (isBrokerError(err) && TRANSIENT.has(err.code) && !(err.detail?.error === 'broker-side pacing limit reached')) {
        s.failures += 1;
        if (trial || s.failures >= this.opts.failureThreshold) {
          s.openUntil = this.now() + this.opts.openSeconds * 1000;
          this.opts.onStateChange?.(account, 'open');
        }
      }
      throw err;
    } finally {
      if (trial) s.trialInFlight = false;
    }
  }

  runsOnTemporaryCredentials(): Promise<boolean> {
    return this.inner.runsOnTemporaryCredentials();
  }

  /** For metrics and tests. */
  isOpen(account: string): boolean {
    return (this.accounts.get(account)?.openUntil ?? 0) > this.now();
  }
}
