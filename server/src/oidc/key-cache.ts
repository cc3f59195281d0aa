// Keys of one issuer: discovery + JWKS, prefetched at start, refreshed in the background,
// refetched at most once per cooldown on an unknown `kid` (one fetch shared by all concurrent
// requests), and the last good key set kept while the issuer is down.
import { createLocalJWKSet, type JSONWebKeySet, type JWTHeaderParameters, type FlattenedJWSInput } from 'jose';
import type { IssuerConfig } from '../config/compile.js';
import { fetchedUrlProblem } from '../core/issuer-url.js';
import { fetchJson, FetchError } from './fetch-json.js';
import { defaultNetwork, type Network } from '../net/network.js';

export type KeyResolver = ReturnType<typeof createLocalJWKSet>;

export interface KeyCacheEvents {
  onRefresh?(issuer: string, outcome: 'success' | 'failure', trigger: 'start' | 'interval' | 'unknown_kid', error?: string): void;
}

export class IssuerKeyCache {
  private resolver: KeyResolver | undefined;
  private kids = new Set<string>();
  private lastFetchAt = 0;
  private inflight: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  lastError: string | undefined;

  /** The issuer's way out: the broker's proxy, and its CAs plus the issuer's ca_file. */
  private readonly network: Network;

  constructor(
    readonly issuer: IssuerConfig,
    private readonly events: KeyCacheEvents = {},
    private readonly clock: () => number = Date.now,
    network?: Network,
  ) {
    this.network = (network ?? defaultNetwork()).withTrust(issuer.trust);
  }

  get loaded(): boolean {
    return this.resolver !== undefined;
  }

  /** Fetches discovery + JWKS; on failure the previous key set stays in use. */
  refresh(trigger: 'start' | 'interval' | 'unknown_kid'): Promise<void> {
    // Single flight: concurrent callers share one fetch.
    if (this.inflight) return this.inflight;
    this.lastFetchAt = this.clock();
    this.inflight = this.fetchKeys()
      .then(({ jwks, kids }) => {
        this.resolver = createLocalJWKSet(jwks);
        this.kids = kids;
        this.lastError = undefined;
        this.events.onRefresh?.(this.issuer.id, 'success', trigger);
      })
      .catch((err: unknown) => {
        this.lastError = err instanceof Error ? err.message : String(err);
        this.events.onRefresh?.(this.issuer.id, 'failure', trigger, this.lastError);
      })
      .finally(() => {
        this.inflight = undefined;
      });
    return this.inflight;
  }

  private async fetchKeys(): Promise<{ jwks: JSONWebKeySet; kids: Set<string> }> {
    const { url, httpTimeoutMs: timeoutMs, maxResponseBytes: maxBytes, allowInsecureHttp } = this.issuer;
    const discoveryUrl = `${url.replace(/\/$/, '')}/.well-known/openid-configuration`;
    const fetchOpts = { timeoutMs, maxBytes, network: this.network };
    const discovery = (await fetchJson(discoveryUrl, fetchOpts)) as Record<string, unknown>;
    if (discovery === null || typeof discovery !== 'object') throw new FetchError('discovery document is not an object');
    if (discovery.issuer !== url) {
      throw new FetchError(`discovery issuer ${JSON.stringify(discovery.issuer)} does not equal the configured issuer`);
    }
    const jwksUri = discovery.jwks_uri;
    if (typeof jwksUri !== 'string') throw new FetchError('discovery document has no jwks_uri');
    const problem = fetchedUrlProblem(jwksUri, allowInsecureHttp);
    if (problem) throw new FetchError(`jwks_uri ${problem}`);
    const jwks = (await fetchJson(jwksUri, fetchOpts)) as JSONWebKeySet;
    if (!jwks || !Array.isArray(jwks.keys)) throw new FetchError('JWKS has no keys array');
    // Private key material has no business in a JWKS: refuse the whole set rather than use it.
    if (jwks.keys.some((k) => typeof k === 'object' && k !== null && 'd' in k)) throw new FetchError('JWKS contains private key material');
    const kids = new Set(jwks.keys.map((k) => k.kid).filter((k): k is string => typeof k === 'string'));
    return { jwks: { keys: jwks.keys }, kids };
  }

  startBackgroundRefresh(): void {
    if (this.timer) return;
    const schedule = () => {
      const base = this.issuer.jwksRefreshSeconds * 1000;
      // Refresh sooner while no keys are loaded; jitter spreads replicas out.
      const delay = (this.loaded ? base : Math.min(base, 15_000)) * (0.9 + Math.random() * 0.2);
      this.timer = setTimeout(() => {
        void this.refresh('interval').finally(schedule);
      }, delay);
      this.timer.unref();
    };
    schedule();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /**
   * The key for a token header. An unknown `kid` triggers a refetch only when the cooldown has
   * passed since the last fetch; concurrent requests share that fetch.
   */
  async resolve(header: JWTHeaderParameters, token: FlattenedJWSInput): Promise<Awaited<ReturnType<KeyResolver>>> {
    const known = header.kid === undefined || this.kids.has(header.kid);
    if (!known || !this.resolver) {
      const cooledDown = this.clock() - this.lastFetchAt >= this.issuer.jwksCooldownSeconds * 1000;
      if (this.inflight) await this.inflight;
      else if (cooledDown) await this.refresh('unknown_kid');
    }
    if (!this.resolver) throw new KeysUnavailableError(this.lastError ?? 'no keys loaded');
    return this.resolver(header, token);
  }
}

export class KeysUnavailableError extends Error {
  override readonly name = 'KeysUnavailableError';
}
