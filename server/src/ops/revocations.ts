// Enforces revocations on every exchange. Replicas poll the store's revocation version (cheap)
// every `pollMs` and reload the list when it changed, so a revocation made on one replica is
// enforced on the others within about one poll. If the store cannot be read for longer than
// `maxStalenessMs`, exchanges are refused (fail closed) rather than served on a stale list.
import { BrokerError } from '../errors.js';
import { compileRevocation, findRevocation, type CompiledRevocation } from '../core/revocation.js';
import type { PreIssueCheck } from '../exchange.js';
import type { Config } from '../config/compile.js';
import type { Logger } from '../log.js';
import type { RevocationStore } from './types.js';

export class RevocationGuard {
  private list: CompiledRevocation[] = [];
  private version = -1;
  private loadedAt = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: RevocationStore,
    private readonly config: () => Config,
    private readonly logger: Logger,
    private readonly opts: { pollMs: number; maxStalenessMs: number; now?: () => number } = { pollMs: 500, maxStalenessMs: 10_000 },
  ) {}

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  async refresh(): Promise<void> {
    const version = await this.store.revocationsVersion();
    if (version !== this.version) {
      const rows = await this.store.listRevocations(new Date(this.now()));
      const compiled: CompiledRevocation[] = [];
      for (const r of rows) {
        const c = compileRevocation(r, r.issuer ? this.config().issuers.get(r.issuer)?.preset : undefined);
        if ('error' in c) this.logger.error({ revocation: r.id, error: c.error }, 'revocation cannot be compiled; ignoring it');
        else compiled.push(c);
      }
      this.list = compiled;
      this.version = version;
    }
    this.loadedAt = this.now();
  }

  async start(): Promise<void> {
    await this.refresh().catch((err: unknown) => this.logger.error({ error: String(err) }, 'cannot load revocations'));
    const tick = () => {
      this.timer = setTimeout(() => {
        this.refresh()
          .catch((err: unknown) => this.logger.warn({ error: String(err) }, 'revocation refresh failed'))
          .finally(tick);
      }, this.opts.pollMs);
      this.timer.unref();
    };
    tick();
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  readonly check: PreIssueCheck = async ({ verified, decision, now }) => {
    if (this.now() - this.loadedAt > this.opts.maxStalenessMs) {
      throw new BrokerError('ERR_NOT_READY', { detail: { error: 'revocation list is stale: the store cannot be read' }, retryAfter: 5 });
    }
    const hit = findRevocation(
      this.list,
      { issuer: verified.issuer.id, claims: verified.claims, sessionName: decision.sessionName, sourceIdentity: decision.sourceIdentity },
      now,
    );
    if (hit) throw new BrokerError('ERR_REVOKED', { detail: { revocation_id: hit.id, revocation_reason: hit.reason } });
  };
}
