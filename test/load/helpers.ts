// Shared by the load and fault tests: a broker on loopback whose logs and audit records are counted,
// not kept (so memory measurements see the broker, not the harness), a bounded-concurrency runner,
// and the checks every answer must pass.
import { Writable } from 'node:stream';
import { expect } from 'vitest';
import { startTestBroker, type TestBroker, type TestBrokerOptions } from '../support/broker.js';
import { createLogger } from '../../server/src/log.js';
import type { AuditRecord, AuditSink } from '../../server/src/audit/types.js';
import { assertMatchesOpenApi } from '../support/openapi.js';

/** Counts audit decisions instead of keeping the records. */
export class CountingAuditSink implements AuditSink {
  readonly decisions: Record<string, number> = {};
  async write(record: AuditRecord): Promise<void> {
    const key = `${String(record.decision)}:${String(record.code ?? 'OK')}`;
    this.decisions[key] = (this.decisions[key] ?? 0) + 1;
  }
}

export interface LoadBroker extends TestBroker {
  auditCounts: CountingAuditSink;
}

/**
 * A test broker for load: warn-level logs to nowhere, a counting audit sink, and the protective
 * limits lifted unless the test sets them (one test process is one IP and a handful of identities).
 */
export async function startLoadBroker(opts: TestBrokerOptions): Promise<LoadBroker> {
  const auditCounts = new CountingAuditSink();
  const nowhere = new Writable({ write: (_c, _e, cb) => cb() });
  const tb = await startTestBroker({
    ...opts,
    config: {
      ...opts.config,
      aws: { sts_calls_per_second_per_account: 10_000, ...opts.config?.aws },
    },
    brokerOptions: { logger: createLogger({ level: 'warn', destination: nowhere }), audit: auditCounts, ...opts.brokerOptions },
  });
  return { ...tb, auditCounts };
}

/** Runs `count` tasks with at most `concurrency` in flight; stops early (and says so) at `deadline`. */
export async function pool<T>(count: number, concurrency: number, deadline: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const out = new Array<T>(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      if (Date.now() > deadline) throw new Error(`deadline passed after ${next} of ${count} tasks`);
      const i = next++;
      out[i] = await task(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return out;
}

const CREDENTIAL_FIELDS = ['AccessKeyId', 'SecretAccessKey', 'SessionToken', 'Expiration', 'RoleArn', 'AssumedRoleArn', 'RoleSessionName', 'SourceIdentity', 'RequestId'] as const;

/** A 200 answer carries complete credentials: every field present, non-empty, and the schema holds. */
export function expectCompleteCredentials(res: { status: number; body: any; headers: Headers }): void {
  expect(res.status).toBe(200);
  for (const field of CREDENTIAL_FIELDS) {
    expect(typeof res.body?.[field], field).toBe('string');
    expect(res.body[field].length, field).toBeGreaterThan(0);
  }
  expect(res.headers.get('cache-control')).toBe('no-store');
  assertMatchesOpenApi('/v1/credentials', 'post', 200, res.headers.get('content-type') ?? '', res.body);
}

/** A 503 answer says when to retry and carries no credential material. */
export function expectRetryable503(res: { status: number; body: any; text: string; headers: Headers }, codes: string[]): void {
  expect(res.status).toBe(503);
  expect(codes).toContain(res.body?.error?.code);
  expect(res.headers.get('retry-after')).toMatch(/^[1-9][0-9]*$/);
  expect(res.text).not.toMatch(/AccessKeyId|SecretAccessKey|SessionToken/);
  assertMatchesOpenApi('/v1/credentials', 'post', 503, res.headers.get('content-type') ?? '', res.body);
}

/** Deterministic PRNG (mulberry32) so injected faults are reproducible. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
