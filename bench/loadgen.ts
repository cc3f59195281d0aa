// The load generator, in its own process: `concurrency` keep-alive connections, each sending
// POST /v1/credentials back to back with a fresh one-time token from the pool it was handed, until
// `amount` requests or `maxMs` have passed. Latency is timed per request with hrtime (µs resolution).
import http from 'node:http';
import { percentile } from './lib.js';

export interface LoadRequest {
  url: string;
  concurrency: number;
  amount: number;
  maxMs: number;
  tokens: string[];
}

export interface LoadResult {
  requests: number;
  ok: number;
  /** Non-200 answers and transport errors, by status (or "network"). */
  errors: Record<string, number>;
  /** 200 answers without all four credential fields: must always be 0. */
  partial: number;
  durationMs: number;
  rps: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

const BODY = JSON.stringify({ role: 'deploy' });

function post(agent: http.Agent, url: URL, token: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: 'POST',
        agent,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(BODY) },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(BODY);
  });
}

export async function runLoad(r: LoadRequest): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: r.concurrency });
  const url = new URL('/v1/credentials', r.url);
  const amount = Math.min(r.amount, r.tokens.length);
  const latencies = new Float64Array(amount);
  const errors: Record<string, number> = {};
  let next = 0;
  let done = 0;
  let ok = 0;
  let partial = 0;
  const started = process.hrtime.bigint();
  const deadline = Date.now() + r.maxMs;
  const worker = async () => {
    while (next < amount && Date.now() < deadline) {
      const i = next++;
      const t0 = process.hrtime.bigint();
      try {
        const res = await post(agent, url, r.tokens[i]!);
        latencies[done++] = Number(process.hrtime.bigint() - t0) / 1e6;
        if (res.status === 200) {
          const c = JSON.parse(res.body) as Record<string, unknown>;
          if (c.AccessKeyId && c.SecretAccessKey && c.SessionToken && c.Expiration) ok++;
          else partial++;
        } else errors[res.status] = (errors[res.status] ?? 0) + 1;
      } catch {
        latencies[done++] = Number(process.hrtime.bigint() - t0) / 1e6;
        errors.network = (errors.network ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: r.concurrency }, worker));
  const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
  agent.destroy();
  const sorted = latencies.slice(0, done).sort();
  return {
    requests: done,
    ok,
    errors,
    partial,
    durationMs,
    rps: (done / durationMs) * 1000,
    p50Ms: percentile(sorted, 50),
    p90Ms: percentile(sorted, 90),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted[sorted.length - 1] ?? NaN,
  };
}

if (process.send) {
  process.on('message', (m: LoadRequest) => {
    void runLoad(m).then((result) => process.send!(result));
  });
  process.on('disconnect', () => process.exit(0));
  process.send({ ready: true });
}
