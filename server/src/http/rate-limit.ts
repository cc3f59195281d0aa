// Rate limits on the public exchange endpoint.
// - Per client IP: middleware before anything else, so unverified traffic (forged tokens, junk)
//   is bounded per IP.
// - Per identity (issuer + subject): counted only once the token has verified. Counting the
//   unverified claims would let anyone lock a CI identity out by spraying forged tokens that
//   name it (they fail verification, but would still use up the victim's quota).
// With several replicas, hand in a store shared across them.
import { rateLimit, ipKeyGenerator, MemoryStore, type Store, type Options } from 'express-rate-limit';
import type express from 'express';
import { createHash } from 'node:crypto';
import { BrokerError } from '../errors.js';
import type { BrokerMetrics } from '../metrics.js';
import { sendError } from './app.js';

interface Limit {
  limit: number;
  window_seconds: number;
}
type Limits = () => { per_ip: Limit; per_identity: Limit };

/** Creates a store for one limiter; `name` separates the per-IP and per-identity counters. */
export type RateLimitStoreFactory = (name: 'ip' | 'identity', windowMs: number) => Store;

/** Counts exchanges per verified identity; throws ERR_RATE_LIMITED once over the limit. */
export interface IdentityLimiter {
  check(issuerUrl: string, subject: string): Promise<void>;
}

export function createRateLimiters(
  limits: Limits,
  opts: { metrics: BrokerMetrics; store?: RateLimitStoreFactory | undefined },
): { perIp: express.RequestHandler; perIdentity: IdentityLimiter } {
  return { perIp: ipLimiter(limits, opts), perIdentity: identityLimiter(limits, opts) };
}

const retryAfterSeconds = (reset: Date | undefined, windowMs: number, now = Date.now()) =>
  reset ? Math.max(1, Math.ceil((reset.getTime() - now) / 1000)) : Math.ceil(windowMs / 1000);

function ipLimiter(limits: Limits, opts: { metrics: BrokerMetrics; store?: RateLimitStoreFactory | undefined }): express.RequestHandler {
  const windowMs = limits().per_ip.window_seconds * 1000; // fixed at start; the limit follows reloads
  return rateLimit({
    windowMs,
    limit: () => limits().per_ip.limit,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    keyGenerator: (req) => ipKeyGenerator(req.ip ?? ''),
    ...(opts.store ? { store: opts.store('ip', windowMs) } : {}),
    handler: (req, res) => {
      opts.metrics.rateLimited.inc({ limit: 'ip' });
      const reset = (req as express.Request & { rateLimit?: { resetTime?: Date } }).rateLimit?.resetTime;
      sendError(res, new BrokerError('ERR_RATE_LIMITED', { retryAfter: retryAfterSeconds(reset, windowMs), detail: { limit: 'ip' } }), req.requestId);
    },
  });
}

function identityLimiter(limits: Limits, opts: { metrics: BrokerMetrics; store?: RateLimitStoreFactory | undefined }): IdentityLimiter {
  const windowMs = limits().per_identity.window_seconds * 1000; // fixed at start; the limit follows reloads
  const store = opts.store ? opts.store('identity', windowMs) : new MemoryStore();
  void store.init?.({ windowMs } as Options);
  return {
    async check(issuerUrl, subject) {
      // Hashed, so the counter keys say nothing about who is calling.
      const key = createHash('sha256').update(`${issuerUrl}\u0000${subject}`).digest('hex');
      const { totalHits, resetTime } = await store.increment(key);
      if (totalHits <= limits().per_identity.limit) return;
      opts.metrics.rateLimited.inc({ limit: 'identity' });
      throw new BrokerError('ERR_RATE_LIMITED', { retryAfter: retryAfterSeconds(resetTime, windowMs), detail: { limit: 'identity' } });
    },
  };
}
