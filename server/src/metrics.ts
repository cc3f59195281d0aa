// Prometheus metrics on a registry owned by the broker instance (never the global one, so several
// brokers can live in one process, as they do in tests).
import { Registry, Counter, Histogram, Gauge, collectDefaultMetrics } from 'prom-client';

export interface BrokerMetrics {
  registry: Registry;
  exchanges: Counter<'outcome' | 'code'>;
  stsLatency: Histogram<'outcome'>;
  jwksRefresh: Counter<'issuer' | 'outcome' | 'trigger'>;
  issuerKeysLoaded: Gauge<'issuer'>;
  configReloads: Counter<'outcome'>;
  stsCircuitOpen: Gauge<'account'>;
  rateLimited: Counter<'limit'>;
}

export function createMetrics(opts: { defaultMetrics?: boolean } = {}): BrokerMetrics {
  const registry = new Registry();
  if (opts.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: 'credbroker_' });
  return {
    registry,
    exchanges: new Counter({
      name: 'credbroker_exchanges_total',
      help: 'Credential exchanges by outcome (issued, denied, error) and error code',
      labelNames: ['outcome', 'code'],
      registers: [registry],
    }),
    stsLatency: new Histogram({
      name: 'credbroker_sts_assume_role_seconds',
      help: 'Latency of STS AssumeRole calls',
      labelNames: ['outcome'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    jwksRefresh: new Counter({
      name: 'credbroker_jwks_refresh_total',
      help: 'Issuer discovery/JWKS refreshes by outcome and trigger',
      labelNames: ['issuer', 'outcome', 'trigger'],
      registers: [registry],
    }),
    issuerKeysLoaded: new Gauge({
      name: 'credbroker_issuer_keys_loaded',
      help: '1 when the issuer has a usable key set',
      labelNames: ['issuer'],
      registers: [registry],
    }),
    configReloads: new Counter({
      name: 'credbroker_config_reloads_total',
      help: 'Config reload attempts by outcome',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    stsCircuitOpen: new Gauge({
      name: 'credbroker_sts_circuit_open',
      help: '1 while the STS circuit breaker for the account is open',
      labelNames: ['account'],
      registers: [registry],
    }),
    rateLimited: new Counter({
      name: 'credbroker_rate_limited_total',
      help: 'Requests refused by a rate limit',
      labelNames: ['limit'],
      registers: [registry],
    }),
  };
}
