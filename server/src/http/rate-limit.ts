// Rate limits on the public exchange endpoint: per client IP and per identity (issuer + subject of
// the presented token). The identity is read from the token *before* verification on purpose:
// a forged token cannot get credentials anyway, and spraying invented subjects is caught by the
// per-IP limit. With several replicas, hand in a store shared across them.
import { rateLimit, ipKeyGenerator, type Store } from 'express-rate-limit';
import type express from 'express';
import { createHash } from 'node:crypto';
import { decodeJwt } from 'jose';
import { BrokerError } from '../errors.js';
import type { BrokerMetrics } from '../metrics.js';
import { sendError } from './app.js';

interface Limit {
  limit: number;
  window_seconds: number;
}

/** Creates a store for one limiter; `name` separates the per-IP and per-identity counters. */
export type RateLimitStoreFactory = (name: 'ip' | 'identity', windowMs: number) => Store;

function identityKey(req: express.Request): string {
  const header = req.get('authorization') ?? '';
  const token = /^Bearer[ ]+(\S+)/i.exec(header)?.[1];
  if (!token) return `ip:${ipKeyGenerator(req.ip ?? '')}`;
  try {
    const c = decodeJwt(token);
    // Hash so the counter keys say nothing about who is calling.
    return createHash('sha256').update(`${String(c.iss)}\u0000${String(c.sub)}`).digest('hex');
  } catch {
    return `ip:${ipKeyGenerator(req.ip ?? '')}`;
  }
}

export function createRateLimiters(
  limits: () => { per_ip: Limit; per_identity: Limit },
  opts: { metrics: BrokerMetrics; store?: RateLimitStoreFactory | undefined },
): express.RequestHandler[] {
  const make = (name: 'ip' | 'identity', pick: (l: ReturnType<typeof limits>) => Limit, keyGenerator: (req: express.Request) => string) => {
    const windowMs = pick(limits()).window_seconds * 1000; // fixed at start; the limit follows reloads
    return rateLimit({
      windowMs,
      limit: () => pick(limits()).limit,
      standardHeaders: 'draft-7',
      legacyHeaders: false,
      keyGenerator,
      ...(opts.store ? { store: opts.store(name, windowMs) } : {}),
      handler: (req, res, _next, options) => {
        opts.metrics.rateLimited.inc({ limit: name });
        const reset = (req as express.Request & { rateLimit?: { resetTime?: Date } }).rateLimit?.resetTime;
        const retryAfter = reset ? Math.max(1, Math.ceil((reset.getTime() - Date.now()) / 1000)) : Math.ceil(options.windowMs / 1000);
        sendError(res, new BrokerError('ERR_RATE_LIMITED', { retryAfter, detail: { limit: name } }), req.requestId);
      },
    });
  };
  return [
    make('ip', (l) => l.per_ip, (req) => ipKeyGenerator(req.ip ?? '')),
    make('identity', (l) => l.per_identity, identityKey),
  ];
}
