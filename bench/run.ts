// `npm run bench`: the exchange benchmark. Every number that matters is a ratio taken in the same
// run, on the same machine, against the same loopback STS responder:
//   ceiling    — a bare Express endpoint making one upstream call (bench/ceiling-server.ts)
//   floor      — the ceiling plus a jose verification and SigV4 signing (bench/floor-server.ts):
//                the work no broker can skip
//   broker     — the real broker with the embedded store (SQLite), as `credbroker serve` runs it
//   broker-pg  — the same on the local PostgreSQL (skipped, and said, when it cannot be reached)
// driven by a load generator in its own process, STS emulated by another (bench/sts-responder.ts).
// Each point is measured `--reps` times (default 3), the targets interleaved and their order
// rotated every repetition; the tables give medians with min–max, and CPU ms per request for every
// process. Also: broker RSS idle and at 1 000 concurrent, policy evaluation by number of bindings
// and binding shape, client start-up against bare Node.
//
//   npm run bench [-- --quick] [--reps N] [--sts-latency-ms 10] [--concurrency 1,10,100]
//                 [--skip-policy] [--skip-client] [--skip-pg] [--profile-broker]
//                 [--broker-node-args="--max-semi-space-size=32"]   (what the credbroker command uses)
import { parseArgs } from 'node:util';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startIssuer, type TestIssuer } from '../test/support/oidc-issuer.js';
import { providerClaims } from '../test/support/fixtures.js';
import { ask, BENCH_DIR, median, procSample, startChild, type Child } from './lib.js';
import type { LoadResult } from './loadgen.js';
import { benchPolicy, type PolicyPoint } from './policy.js';
import { benchClientStart, formatClientStart, type ClientStart } from './client-start.js';
// @ts-expect-error: a plain .mjs script of this repository, without type declarations
import { build } from '../scripts/build.mjs';

const { values: flags } = parseArgs({
  options: {
    'sts-latency-ms': { type: 'string', default: '10' },
    quick: { type: 'boolean', default: false },
    reps: { type: 'string' },
    'skip-policy': { type: 'boolean', default: false },
    'skip-client': { type: 'boolean', default: false },
    'skip-pg': { type: 'boolean', default: false },
    'profile-broker': { type: 'boolean', default: false },
    concurrency: { type: 'string' },
    'broker-node-args': { type: 'string' },
  },
});
const STS_LATENCY_MS = Number(flags['sts-latency-ms']);
const QUICK = flags.quick ?? false;
const REPS = Number(flags.reps ?? (QUICK ? 1 : 3));
const AUDIENCE = 'https://credbroker.bench';
const CONCURRENCY: Array<{ c: number; amount: number }> = QUICK
  ? [
      { c: 1, amount: 150 },
      { c: 10, amount: 600 },
      { c: 100, amount: 1500 },
    ]
  : [
      { c: 1, amount: 400 },
      { c: 10, amount: 2500 },
      { c: 100, amount: 6000 },
    ];
if (flags.concurrency) {
  const wanted = flags.concurrency.split(',').map(Number);
  CONCURRENCY.splice(0, CONCURRENCY.length, ...CONCURRENCY.filter((p) => wanted.includes(p.c)));
}
/** The memory point: this many concurrent clients against the broker, peak RSS sampled. */
const MEMORY_POINT = { c: 1000, amount: QUICK ? 3000 : 8000 };
const POINT_MAX_MS = 90_000;
const CLIENT_RUNS = QUICK ? 5 : 15;
const PG_URL = process.env.CREDBROKER_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

type Target = 'ceiling' | 'floor' | 'broker' | 'broker-pg';

interface Row extends LoadResult {
  target: Target;
  concurrency: number;
  rep: number;
  stsP50Ms: number;
  addedP50Ms: number;
  /** CPU ms per request of each process: the target, the load generator, the STS responder. */
  cpu: { target: number; loadgen: number; sts: number };
  peakRssMb: number;
}

const mb = (b: number) => b / 1024 / 1024;
const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : '—');

async function signTokens(issuer: TestIssuer, n: number): Promise<string[]> {
  const claims = { ...providerClaims('github-actions'), aud: AUDIENCE };
  const out: string[] = [];
  for (let i = 0; i < n; i += 256) {
    const batch = Math.min(256, n - i);
    out.push(...(await Promise.all(Array.from({ length: batch }, () => issuer.sign(claims, { lifetimeSeconds: 900 })))));
  }
  return out;
}

function brokerConfig(issuerUrl: string, stsUrl: string, store: Record<string, unknown>): unknown {
  // A realistic policy: 50 repositories of one organization, deny rule for self-hosted runners.
  const allow = Array.from({ length: 50 }, (_, i) => ({
    issuer: 'github',
    claims: { repository_id: i === 0 ? '487920697' : String(100_000_000 + i), repository_owner_id: '9919', ref: { glob: 'refs/heads/**' } },
  }));
  return {
    // One load generator is one IP and one identity, and the emulated STS is one account: the
    // broker's protective limits (per-IP / per-identity rate limits, per-account STS pacing) are
    // lifted so the exchange path itself is measured, not the limits.
    server: {
      readiness_wait_ms: 10_000,
      rate_limit: { per_ip: { limit: 10_000_000, window_seconds: 60 }, per_identity: { limit: 10_000_000, window_seconds: 60 } },
    },
    aws: { region: 'us-east-1', sts_endpoint: stsUrl, role_chaining: 'never', sts_calls_per_second_per_account: 10_000 },
    logging: { level: 'info' },
    audit: { sink: 'stdout' },
    store,
    metrics: { enabled: false },
    issuers: { github: { preset: 'github-actions', url: issuerUrl, audiences: [AUDIENCE], allow_insecure_http: true } },
    roles: { deploy: { arn: 'arn:aws:iam::123456789012:role/credbroker/deploy', allow } },
    deny: [{ issuer: 'github', claims: { runner_environment: 'self-hosted' } }],
  };
}

interface Endpoint {
  target: Target;
  url: string;
  pid: number;
  /** Each exchange needs a fresh one-time token (the ceiling ignores its token). */
  tokens(n: number): Promise<string[]>;
}

async function measure(ep: Endpoint, loadgen: Child, sts: Child, concurrency: number, amount: number, rep: number): Promise<Row> {
  const warm = Math.max(100, Math.round(amount / 10));
  const tokens = await ep.tokens(warm + amount);
  // Warm-up at the same concurrency, not measured.
  await ask<LoadResult>(loadgen, { url: ep.url, concurrency, amount: warm, maxMs: POINT_MAX_MS, tokens: tokens.slice(0, warm) });
  await ask(sts, { cmd: 'reset' });
  const pids = { target: ep.pid, loadgen: loadgen.proc.pid!, sts: sts.proc.pid! };
  const before = { target: procSample(pids.target), loadgen: procSample(pids.loadgen), sts: procSample(pids.sts) };
  let peakRss = before.target?.rssBytes ?? NaN;
  const sampler = setInterval(() => {
    const s = procSample(pids.target);
    if (s && !(s.rssBytes <= peakRss)) peakRss = s.rssBytes;
  }, 50);
  const result = await ask<LoadResult>(loadgen, { url: ep.url, concurrency, amount, maxMs: POINT_MAX_MS, tokens: tokens.slice(warm) });
  clearInterval(sampler);
  const after = { target: procSample(pids.target), loadgen: procSample(pids.loadgen), sts: procSample(pids.sts) };
  const stsStats = await ask<{ served: number; p50Ms: number; p99Ms: number }>(sts, { cmd: 'stats' });
  const perRequest = (k: keyof typeof pids) => {
    const a = before[k];
    const b = after[k];
    return a && b ? (b.cpuMs - a.cpuMs) / result.requests : NaN;
  };
  return {
    target: ep.target,
    concurrency,
    rep,
    ...result,
    stsP50Ms: stsStats.p50Ms,
    addedP50Ms: result.p50Ms - stsStats.p50Ms,
    cpu: { target: perRequest('target'), loadgen: perRequest('loadgen'), sts: perRequest('sts') },
    peakRssMb: mb(peakRss),
  };
}

/** A fresh PostgreSQL schema for the broker-pg target, or why there is none. */
async function pgSchema(): Promise<{ url: string; drop(): Promise<void> } | { skipped: string }> {
  if (flags['skip-pg']) return { skipped: '--skip-pg' };
  const admin = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 });
  try {
    await admin.connect();
  } catch (err) {
    return { skipped: `PostgreSQL at ${PG_URL.replace(/\/\/[^@]*@/, '//…@')} not reachable (${(err as Error).message})` };
  }
  const schema = `cb_bench_${randomBytes(4).toString('hex')}`;
  await admin.query(`CREATE SCHEMA ${schema}`);
  const u = new URL(PG_URL);
  u.searchParams.set('options', `-c search_path=${schema}`);
  return {
    url: u.toString(),
    async drop() {
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.end();
    },
  };
}

interface Summary {
  target: Target;
  concurrency: number;
  reps: number;
  rps: { median: number; min: number; max: number };
  p50Ms: number;
  p99Ms: number;
  cpu: { target: { median: number; min: number; max: number }; loadgen: number; sts: number };
  errors: number;
}

const spread = (xs: number[]) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });

function summarize(rows: Row[]): Summary[] {
  const out: Summary[] = [];
  for (const key of new Set(rows.map((r) => `${r.target}|${r.concurrency}`))) {
    const rs = rows.filter((r) => `${r.target}|${r.concurrency}` === key);
    out.push({
      target: rs[0]!.target,
      concurrency: rs[0]!.concurrency,
      reps: rs.length,
      rps: spread(rs.map((r) => r.rps)),
      p50Ms: median(rs.map((r) => r.p50Ms)),
      p99Ms: median(rs.map((r) => r.p99Ms)),
      cpu: { target: spread(rs.map((r) => r.cpu.target)), loadgen: median(rs.map((r) => r.cpu.loadgen)), sts: median(rs.map((r) => r.cpu.sts)) },
      errors: rs.reduce((n, r) => n + Object.values(r.errors).reduce((a, b) => a + b, 0) + r.partial, 0),
    });
  }
  return out;
}

async function main(): Promise<void> {
  const started = Date.now();
  build(); // the broker runs from dist/, as `credbroker serve` does
  const loadBefore = os.loadavg()[0]!;
  const issuer = await startIssuer();
  const sts = await startChild('./sts-responder.ts', [String(STS_LATENCY_MS)]);
  const stsUrl = String(sts.message.url);
  const cfgDir = mkdtempSync(path.join(os.tmpdir(), 'credbroker-bench-cfg-'));
  const children: Child[] = [sts];
  const database = await pgSchema();
  try {
    const brokerEnv = { AWS_ACCESS_KEY_ID: 'AKIDBENCHONLY0000000', AWS_SECRET_ACCESS_KEY: 'bench-secret-not-real', AWS_REGION: 'us-east-1' };
    // As `credbroker serve` runs (the bin's shebang sets the young generation size).
    const brokerNodeArgs = [...(flags['broker-node-args']?.split(' ').filter(Boolean) ?? ['--max-semi-space-size=32']), ...(flags['profile-broker'] ? ['--cpu-prof', `--cpu-prof-dir=${path.join(BENCH_DIR, 'results', 'profile')}`] : [])];
    const startBroker = async (name: string, store: Record<string, unknown>) => {
      const file = path.join(cfgDir, `${name}.json`);
      writeFileSync(file, JSON.stringify(brokerConfig(issuer.url, stsUrl, store)));
      const child = await startChild('./broker-server.mjs', [file], { nodeArgs: brokerNodeArgs, env: brokerEnv });
      children.push(child);
      return child;
    };
    const broker = await startBroker('broker', { driver: 'sqlite', sqlite_path: path.join(cfgDir, 'credbroker.sqlite') });
    // Idle: started and ready, before any request.
    const idle = procSample(broker.proc.pid!);
    const brokerPg = 'url' in database ? await startBroker('broker-pg', { driver: 'postgres', postgres_url: database.url }) : undefined;
    const ceiling = await startChild('./ceiling-server.ts', [stsUrl]);
    const floor = await startChild('./floor-server.ts', [stsUrl, issuer.url, AUDIENCE]);
    const loadgen = await startChild('./loadgen.ts');
    children.push(ceiling, floor, loadgen);

    const signed = (n: number) => signTokens(issuer, n);
    const endpoints: Endpoint[] = [
      { target: 'ceiling', url: String(ceiling.message.url), pid: ceiling.proc.pid!, tokens: async (n) => new Array<string>(n).fill('x'.repeat(900)) },
      { target: 'floor', url: String(floor.message.url), pid: floor.proc.pid!, tokens: signed },
      { target: 'broker', url: String(broker.message.url), pid: broker.proc.pid!, tokens: signed },
      ...(brokerPg ? [{ target: 'broker-pg' as const, url: String(brokerPg.message.url), pid: brokerPg.proc.pid!, tokens: signed }] : []),
    ];

    const rows: Row[] = [];
    for (const { c, amount } of CONCURRENCY) {
      for (let rep = 0; rep < REPS; rep++) {
        // Interleaved, and a different target first in every repetition: drift hits all alike.
        const order = endpoints.map((_, i) => endpoints[(i + rep + c) % endpoints.length]!);
        process.stderr.write(`bench: ${c} concurrent, ${amount} requests, repetition ${rep + 1}/${REPS}: ${order.map((e) => e.target).join(' → ')}\n`);
        for (const ep of order) rows.push(await measure(ep, loadgen, sts, c, amount, rep));
      }
    }
    process.stderr.write(`bench: memory, ${MEMORY_POINT.c} concurrent clients against the broker…\n`);
    const memory = await measure(endpoints.find((e) => e.target === 'broker')!, loadgen, sts, MEMORY_POINT.c, MEMORY_POINT.amount, 0);

    let clientStart: ClientStart | undefined;
    if (!flags['skip-client']) {
      process.stderr.write('bench: client start-up…\n');
      const claims = { ...providerClaims('github-actions'), aud: AUDIENCE };
      clientStart = await benchClientStart({ brokerUrl: String(broker.message.url), runs: CLIENT_RUNS, token: () => issuer.sign(claims, { lifetimeSeconds: 600 }) });
    }
    for (const ch of children.reverse()) await ch.stop();
    children.length = 0;

    let policy: PolicyPoint[] = [];
    if (!flags['skip-policy']) {
      process.stderr.write('bench: policy evaluation (compiling up to 100 000 bindings takes a while)…\n');
      policy = benchPolicy();
    }

    const summary = summarize(rows);
    const at = (t: Target, c: number) => summary.find((s) => s.target === t && s.concurrency === c);
    const ratios = CONCURRENCY.map(({ c }) => {
      const b = at('broker', c)!;
      const k = at('ceiling', c)!;
      const f = at('floor', c)!;
      const p = at('broker-pg', c);
      return {
        concurrency: c,
        brokerVsCeiling: b.rps.median / k.rps.median,
        brokerVsFloor: b.rps.median / f.rps.median,
        floorVsCeiling: f.rps.median / k.rps.median,
        pgVsBroker: p ? p.rps.median / b.rps.median : NaN,
        brokerCpuMs: b.cpu.target.median,
        ceilingCpuMs: k.cpu.target.median,
        floorCpuMs: f.cpu.target.median,
        brokerAboveFloorCpuMs: b.cpu.target.median - f.cpu.target.median,
      };
    });
    const machine = {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      memoryGb: Math.round(os.totalmem() / 1024 ** 3),
      node: process.version,
      platform: `${os.type()} ${os.release()} ${os.arch()}`,
      // Other work on the machine skews absolute numbers (ratios taken in one run much less).
      loadAverage1m: { start: loadBefore, end: os.loadavg()[0]! },
    };
    const headline = ratios.find((r) => r.concurrency === 100) ?? ratios.at(-1)!;
    const report = {
      when: new Date().toISOString(),
      machine,
      params: { stsLatencyMs: STS_LATENCY_MS, quick: QUICK, reps: REPS, concurrency: CONCURRENCY, memoryPoint: MEMORY_POINT },
      headline: { concurrency: headline.concurrency, brokerCpuMsPerExchange: headline.brokerCpuMs, brokerVsCeiling: headline.brokerVsCeiling, brokerVsFloor: headline.brokerVsFloor, postgresVsEmbedded: headline.pgVsBroker },
      postgres: 'skipped' in database ? { skipped: database.skipped } : { url: PG_URL.replace(/\/\/[^@]*@/, '//…@') },
      exchange: rows,
      summary,
      ratios,
      brokerRss: { idleMb: idle ? mb(idle.rssBytes) : NaN, peakAt1000Mb: memory.peakRssMb, memoryPoint: { rps: memory.rps, ok: memory.ok, requests: memory.requests } },
      clientStart,
      policy,
      durationS: (Date.now() - started) / 1000,
    };

    const out: string[] = [];
    out.push(`credbroker bench — ${machine.cpus} × ${machine.cpuModel}, ${machine.memoryGb} GB, Node ${machine.node}; STS responder latency ${STS_LATENCY_MS} ms; ${REPS} repetition(s)`);
    out.push(`load average (1 min) at start ${fmt(machine.loadAverage1m.start, 2)}, at end ${fmt(machine.loadAverage1m.end, 2)}`);
    out.push('');
    out.push(
      `HEADLINE at ${headline.concurrency} concurrent: broker ${fmt(headline.brokerCpuMs, 3)} CPU ms per exchange (embedded store); ` +
        `throughput ${fmt(headline.brokerVsCeiling, 2)}× the ceiling, ${fmt(headline.brokerVsFloor, 2)}× the work floor; ` +
        `PostgreSQL ${'skipped' in database ? `skipped (${database.skipped})` : `${fmt(headline.pgVsBroker, 2)}× the embedded store`}`,
    );
    out.push('');
    out.push('target      conc  reps   req/s median (min–max)     p50 ms   p99 ms   CPU ms/req target (min–max)   loadgen    STS  errors');
    for (const s of summary) {
      out.push(
        `${s.target.padEnd(10)} ${String(s.concurrency).padStart(5)} ${String(s.reps).padStart(5)}   ${fmt(s.rps.median, 0).padStart(7)} (${fmt(s.rps.min, 0)}–${fmt(s.rps.max, 0)})`.padEnd(55) +
          `${fmt(s.p50Ms, 2).padStart(7)} ${fmt(s.p99Ms, 2).padStart(8)}   ${fmt(s.cpu.target.median, 3).padStart(7)} (${fmt(s.cpu.target.min, 3)}–${fmt(s.cpu.target.max, 3)})`.padEnd(30) +
          `${fmt(s.cpu.loadgen, 3).padStart(9)} ${fmt(s.cpu.sts, 3).padStart(6)} ${String(s.errors).padStart(7)}`,
      );
    }
    out.push('');
    out.push(' conc   broker/ceiling   broker/floor   floor/ceiling   pg/embedded   CPU ms/req: broker  floor  ceiling  broker−floor');
    for (const r of ratios) {
      out.push(
        `${String(r.concurrency).padStart(5)} ${fmt(r.brokerVsCeiling, 2).padStart(16)} ${fmt(r.brokerVsFloor, 2).padStart(14)} ${fmt(r.floorVsCeiling, 2).padStart(15)} ${fmt(r.pgVsBroker, 2).padStart(13)}   ${fmt(r.brokerCpuMs, 3).padStart(18)} ${fmt(r.floorCpuMs, 3).padStart(6)} ${fmt(r.ceilingCpuMs, 3).padStart(8)} ${fmt(r.brokerAboveFloorCpuMs, 3).padStart(13)}`,
      );
    }
    out.push('');
    out.push(`broker RSS: idle ${fmt(report.brokerRss.idleMb, 0)} MB; peak at ${MEMORY_POINT.c} concurrent ${fmt(memory.peakRssMb, 0)} MB (${memory.ok}/${memory.requests} ok, ${fmt(memory.rps, 0)} req/s)`);
    if (clientStart) {
      out.push('');
      out.push(...formatClientStart(clientStart));
    }
    if (policy.length > 0) {
      out.push('');
      out.push('policy evaluation (one role, one issuer)   bindings   compile ms   allow µs   deny µs   allow vs 10 bindings');
      for (const p of policy) {
        const base = policy.find((q) => q.shape === p.shape && q.bindings === 10)!;
        out.push(
          `  ${p.shape.padEnd(40)} ${String(p.bindings).padStart(8)} ${fmt(p.compileMs, 0).padStart(12)} ${fmt(p.allowUs, 1).padStart(10)} ${fmt(p.denyUs, 1).padStart(9)} ${fmt(p.allowUs / base.allowUs, 1).padStart(10)}×`,
        );
      }
    }
    const text = out.join('\n');
    process.stdout.write(`${text}\n`);
    const resultsDir = path.join(BENCH_DIR, 'results');
    mkdirSync(resultsDir, { recursive: true });
    const file = path.join(resultsDir, `bench-${report.when.replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
    process.stdout.write(`\nwrote ${path.relative(process.cwd(), file)} (${fmt(report.durationS, 0)} s)\n`);
  } finally {
    for (const ch of children.reverse()) await ch.stop();
    await issuer.close();
    if ('drop' in database) await database.drop();
    rmSync(cfgDir, { recursive: true, force: true });
  }
}

await main();
