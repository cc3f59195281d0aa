// Live state the console's overview shows that is not in the store: when each issuer's keys were
// last fetched (and the last failure), and the result of the latest audit chain verification.
import type { ChainVerification } from '../core/audit-chain.js';

export interface IssuerKeyStatus {
  issuer: string;
  loaded: boolean;
  lastSuccessAt: string | null;
  lastFailureAt: string | null;
  lastError: string | null;
}

/** Fed by the broker's key-refresh events. */
export class KeyFreshness {
  private readonly byIssuer = new Map<string, Omit<IssuerKeyStatus, 'issuer' | 'loaded'>>();

  constructor(private readonly now: () => Date = () => new Date()) {}

  record(issuer: string, outcome: 'success' | 'failure', error?: string): void {
    const s = this.byIssuer.get(issuer) ?? { lastSuccessAt: null, lastFailureAt: null, lastError: null };
    const t = this.now().toISOString();
    if (outcome === 'success') this.byIssuer.set(issuer, { ...s, lastSuccessAt: t });
    else this.byIssuer.set(issuer, { ...s, lastFailureAt: t, lastError: (error ?? 'unknown error').slice(0, 300) });
  }

  status(issuer: string, loaded: boolean): IssuerKeyStatus {
    return { issuer, loaded, ...(this.byIssuer.get(issuer) ?? { lastSuccessAt: null, lastFailureAt: null, lastError: null }) };
  }
}

export interface ChainStatus {
  result: ChainVerification | undefined;
  /** When the shown result was computed. */
  at: string | undefined;
  running: boolean;
  error: string | undefined;
}

/**
 * The audit chain is verified in the background (it reads every record), at most once per
 * `maxAgeMs` when the overview asks, or at once when someone presses "verify now".
 */
export class ChainWatch {
  private state: ChainStatus = { result: undefined, at: undefined, running: false, error: undefined };
  private inflight: Promise<void> | undefined;

  constructor(
    private readonly verify: () => Promise<ChainVerification>,
    private readonly now: () => Date,
    private readonly maxAgeMs = 60_000,
  ) {}

  current(): ChainStatus {
    return { ...this.state };
  }

  /** Starts a verification when the last one is older than maxAgeMs (or `force`); never waits for it. */
  refresh(force = false): Promise<void> {
    const stale = this.state.at === undefined || this.now().getTime() - Date.parse(this.state.at) > this.maxAgeMs;
    if (this.inflight || !(stale || force)) return this.inflight ?? Promise.resolve();
    this.state = { ...this.state, running: true };
    this.inflight = this.verify()
      .then(
        (result) => {
          this.state = { result, at: this.now().toISOString(), running: false, error: undefined };
        },
        (err: unknown) => {
          this.state = { ...this.state, at: this.now().toISOString(), running: false, error: err instanceof Error ? err.message : String(err) };
        },
      )
      .finally(() => {
        this.inflight = undefined;
      });
    return this.inflight;
  }
}
