// `npm run bench`: the exchange benchmark. Every number that matters is a ratio taken in the same
// run, on the same machine, against the same loopback STS responder:
//   broker     — the real broker (its own process, production defaults: info logs, stdout audit)
//   ceiling    — a bare Express endpoint making one upstream call (bench/ceiling-server.ts)
// driven by a load generator in a third process, STS emulated by a fourth (bench/sts-responder.ts).
// Also: policy evaluation cost by number of bindings, client cold start, broker RSS under load.
//
//   npm run bench [-- --sts-latency-ms 10] [--quick] [--skip-policy] [--skip-client] [--profile-broker]
// --profile-broker writes a V8 CPU profile of the broker process to bench/results/profile/.
import { parseArgs } from 'node:util';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startIssuer, type TestIssuer } from '../test/support/oidc-issuer.js';
import { providerClaims } from '../test/support/fixtures.js';
import { ask, BENCH_DIR, median, procSample, startChild, type Child } from './lib.js';
import type { LoadResult } from './loadgen.js';
import { benchPolicy, type PolicyPoint } from './policy.js';
import { benchClientStart, formatClientStart, type ClientStart } from './client-start.js';

const { values: flags } = parseArgs({
  options: {
    'sts-latency-ms': { type: 'string', default: '10' },
    quick: { type: 'boolean', default: false },
    'skip-policy': { type: 'boolean', default: false },
    'skip-client': { type: 'boolean', default: false },
    'profile-broker': { type: 'boolean', default: false },
    concurrency: { type: 'string' },
    'broker-only': { type: 'boolean', default: false },
  },
});
const STS_LATENCY_MS = Number(flags['sts-latency-ms']);
const QUICK = flags.quick ?? false;
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
const POINT_MAX_MS = 60_000;
const CLIENT_RUNS = QUICK ? 5 : 15;

interface Row extends LoadResult {
  target: 'ceiling' | 'broker';
  concurrency: number;
  stsP50Ms: number;
  addedP50Ms: number;
  addedP99Ms: number;
  cpuMsPerRequest: number;
  peakRssMb: number;
}

const mb = (b: number) => b / 1024 / 1024;
const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : '—');

async function signTokens(issuer: TestIssuer, n: number): Promise<string[]> {
  const claims = { ...providerClaims('github-actions'), aud: AUDIENCE };
  const out: string[] = [];
  for (let i = 0; i < n; i += 256) {
    const batch = Math.min(256, n - i);
    out.push(...(await Promise.all(Array.from({ length: batch }, () => issuer.sign(claims, { lifetimeSeconds: 600 })))));
  }
  return out;
}

function brokerConfig(issuerUrl: string, stsUrl: string): unknown {
  // A realistic policy: 50 repositories of one organization, deny rule for self-hosted runners.
  const allow = Array.from({ length: 50 }, (_, i) => ({
    issuer: 'github',
    claims: { repository_id: i === 0 ? '487920697' : String(100_000_000 + i), repository_owner_id: '9919', ref: { glob: 'refs/heads/**' } },
  }));
  return {
    // One load generator is one IP and one identity, and the emulated STS is one account: the
    // broker's protective limits (per-IP / per-identity rate limits, per-account STS pacing, 50/s by
    // default) are lifted so the exchange path itself is measured, not the limits.
    server: {
      readiness_wait_ms: 10_000,
      rate_limit: { per_ip: { limit: 10_000_000, window_seconds: 60 }, per_identity: { limit: 10_000_000, window_seconds: 60 } },
    },
    aws: { region: 'us-east-1', sts_endpoint: stsUrl, role_chaining: 'never', sts_calls_per_second_per_account: 10_000 },
    logging: { level: 'info' },
    audit: { sink: 'stdout' },
    issuers: { github: { preset: 'github-actions', url: issuerUrl, audiences: [AUDIENCE], allow_insecure_http: true } },
    roles: { deploy: { arn: 'arn:aws:iam::123456789012:role/credbroker/deploy', allow } },
    deny: [{ issuer: 'github', claims: { runner_environment: 'self-hosted' } }],
  };
}

async function measure(
  target: Row['target'],
  url: string,
  pid: number,
  loadgen: Child,
  sts: Child,
  concurrency: number,
  amount: number,
  tokens: string[],
): Promise<Row> {
  // Warm-up at the same concurrency, not measured.
  const warm = Math.max(100, Math.round(amount / 10));
  await ask<LoadResult>(loadgen, { url, concurrency, amount: warm, maxMs: POINT_MAX_MS, tokens: tokens.slice(0, warm) });
  await ask(sts, { cmd: 'reset' });
  const before = procSample(pid);
  let peakRss = before?.rssBytes ?? NaN;
  const sampler = setInterval(() => {
    const s = procSample(pid);
    if (s && !(s.rssBytes <= peakRss)) peakRss = s.rssBytes;
  }, 100);
  const result = await ask<LoadResult>(loadgen, { url, concurrency, amount, maxMs: POINT_MAX_MS, tokens: tokens.slice(warm, warm + amount) });
  clearInterval(sampler);
  const after = procSample(pid);
  const stsStats = await ask<{ served: number; p50Ms: number; p99Ms: number }>(sts, { cmd: 'stats' });
  return {
    target,
    concurrency,
    ...result,
    stsP50Ms: stsStats.p50Ms,
    addedP50Ms: result.p50Ms - stsStats.p50Ms,
    addedP99Ms: result.p99Ms - stsStats.p50Ms,
    cpuMsPerRequest: before && after ? (after.cpuMs - before.cpuMs) / result.requests : NaN,
    peakRssMb: mb(peakRss),
  };
}

function runOnce(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 20_000): Promise<{ ms: number; code: number | null; stdout: string }> {
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'ignore'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ ms: Number(process.hrtime.bigint() - started) / 1e6, code, stdout });
    });
  });
}

interface ColdStart {
  what: string;
  runs: number;
  ok: number;
  medianMs: number;
}

async function coldStart(issuer: TestIssuer, brokerUrl: string): Promise<{ client: ColdStart; fetchBaseline: ColdStart; bareNode: ColdStart; clientIsPlaceholder: boolean }> {
  const clientPath = fileURLToPath(new URL('../client/credbroker-client.mjs', import.meta.url));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'credbroker-bench-'));
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir };
  const bare: number[] = [];
  const viaFetch: number[] = [];
  const viaClient: number[] = [];
  let fetchOk = 0;
  let clientOk = 0;
  const fetchScript =
    "const r=await fetch(process.env.U+'/v1/credentials',{method:'POST',headers:{authorization:'Bearer '+process.env.T,'content-type':'application/json'},body:JSON.stringify({role:'deploy'})});const j=await r.json();if(!j.SecretAccessKey)process.exit(1);process.stdout.write(JSON.stringify(j));";
  try {
    for (let i = 0; i < CLIENT_RUNS; i++) {
      // Interleaved so drift affects all three alike.
      bare.push((await runOnce(process.execPath, ['-e', '0'], env)).ms);
      const [t1, t2] = await signTokens(issuer, 2);
      const f = await runOnce(process.execPath, ['--input-type=module', '-e', fetchScript], { ...env, U: brokerUrl, T: t1 });
      viaFetch.push(f.ms);
      if (f.code === 0) fetchOk++;
      const tokenFile = path.join(dir, 'token');
      writeFileSync(tokenFile, t2!, { mode: 0o600 });
      const c = await runOnce(process.execPath, [clientPath, '--url', brokerUrl, '--role', 'deploy', '--provider', 'generic', '--token-file', tokenFile, '--format', 'json', '--quiet'], env);
      viaClient.push(c.ms);
      if (c.code === 0 && c.stdout.includes('SecretAccessKey')) clientOk++;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return {
    bareNode: { what: 'node -e 0 (process start only)', runs: bare.length, ok: bare.length, medianMs: median(bare) },
    fetchBaseline: { what: 'node -e + fetch (one exchange, no client)', runs: viaFetch.length, ok: fetchOk, medianMs: median(viaFetch) },
    client: { what: 'client/credbroker-client.mjs --provider generic --token-file', runs: viaClient.length, ok: clientOk, medianMs: median(viaClient) },
    clientIsPlaceholder: clientOk === 0,
  };
}

async function main(): Promise<void> {
  const started = Date.now();
  const loadBefore = os.loadavg()[0]!;
  const issuer = await startIssuer();
  const sts = await startChild('./sts-responder.ts', [String(STS_LATENCY_MS)]);
  const stsUrl = String(sts.message.url);
  const cfgDir = mkdtempSync(path.join(os.tmpdir(), 'credbroker-bench-cfg-'));
  const cfgFile = path.join(cfgDir, 'config.json');
  writeFileSync(cfgFile, JSON.stringify(brokerConfig(issuer.url, stsUrl)));
  const children: Child[] = [sts];
  try {
    const broker = await startChild('./broker-server.ts', [cfgFile], {
      nodeArgs: flags['profile-broker'] ? ['--cpu-prof', `--cpu-prof-dir=${path.join(BENCH_DIR, 'results', 'profile')}`] : [],
      env: { AWS_ACCESS_KEY_ID: 'AKIDBENCHONLY0000000', AWS_SECRET_ACCESS_KEY: 'bench-secret-not-real', AWS_REGION: 'us-east-1' },
    });
    children.push(broker);
    const ceiling = await startChild('./ceiling-server.ts', [stsUrl]);
    children.push(ceiling);
    const loadgen = await startChild('./loadgen.ts');
    children.push(loadgen);
    const brokerPid = broker.proc.pid!;
    const idle = procSample(brokerPid);

    const rows: Row[] = [];
    for (const { c, amount } of CONCURRENCY) {
      const warm = Math.max(100, Math.round(amount / 10));
      process.stderr.write(`bench: ${c} concurrent clients, ${amount} requests each side…\n`);
      if (!flags['broker-only']) rows.push(await measure('ceiling', String(ceiling.message.url), ceiling.proc.pid!, loadgen, sts, c, amount, new Array<string>(warm + amount).fill('x'.repeat(900))));
      rows.push(await measure('broker', String(broker.message.url), brokerPid, loadgen, sts, c, amount, await signTokens(issuer, warm + amount)));
    }
    const afterLoad = procSample(brokerPid);

    let cold: Awaited<ReturnType<typeof coldStart>> | undefined;
    let clientStart: ClientStart | undefined;
    if (!flags['skip-client']) {
      process.stderr.write('bench: client cold start…\n');
      cold = await coldStart(issuer, String(broker.message.url));
      // Client start over bare node -e 0, per Node version present (bench/client-start.ts).
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

    const machine = {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      memoryGb: Math.round(os.totalmem() / 1024 ** 3),
      node: process.version,
      platform: `${os.type()} ${os.release()} ${os.arch()}`,
      // Other work on the machine skews absolute numbers (ratios taken in one run much less).
      loadAverage1m: { start: loadBefore, end: os.loadavg()[0]! },
    };
    const ratios = CONCURRENCY.map(({ c }) => {
      const b = rows.find((r) => r.target === 'broker' && r.concurrency === c)!;
      const k = rows.find((r) => r.target === 'ceiling' && r.concurrency === c) ?? ({} as Row);
      return {
        concurrency: c,
        throughput: b.rps / k.rps,
        p50: b.p50Ms / k.p50Ms,
        p99: b.p99Ms / k.p99Ms,
        cpuPerRequest: b.cpuMsPerRequest / k.cpuMsPerRequest,
        brokerAddedP50Ms: b.addedP50Ms,
        ceilingAddedP50Ms: k.addedP50Ms,
      };
    });
    const report = {
      when: new Date().toISOString(),
      machine,
      params: { stsLatencyMs: STS_LATENCY_MS, quick: QUICK, concurrency: CONCURRENCY },
      exchange: rows,
      ratios,
      brokerRss: { idleMb: idle ? mb(idle.rssBytes) : NaN, peakMb: afterLoad ? mb(afterLoad.peakRssBytes) : NaN, afterLoadMb: afterLoad ? mb(afterLoad.rssBytes) : NaN },
      coldStart: cold,
      clientStart,
      policy,
      durationS: (Date.now() - started) / 1000,
    };

    // The table.
    const out: string[] = [];
    out.push(`credbroker bench — ${machine.cpus} × ${machine.cpuModel}, ${machine.memoryGb} GB, Node ${machine.node}; STS responder latency ${STS_LATENCY_MS} ms`);
    out.push(`load average (1 min) at start ${fmt(machine.loadAverage1m.start, 2)}, at end ${fmt(machine.loadAverage1m.end, 2)}`);
    out.push('');
    out.push('target   conc  requests   ok  errors    req/s    p50 ms   p99 ms  added p50  CPU ms/req  peak RSS MB');
    for (const r of rows) {
      const errs = Object.values(r.errors).reduce((a, b) => a + b, 0) + r.partial;
      out.push(
        `${r.target.padEnd(8)} ${String(r.concurrency).padStart(4)} ${String(r.requests).padStart(9)} ${String(r.ok).padStart(6)} ${String(errs).padStart(6)} ${fmt(r.rps, 0).padStart(8)} ${fmt(r.p50Ms, 2).padStart(9)} ${fmt(r.p99Ms, 2).padStart(8)} ${fmt(r.addedP50Ms, 2).padStart(10)} ${fmt(r.cpuMsPerRequest, 3).padStart(11)} ${fmt(r.peakRssMb, 0).padStart(12)}`,
      );
    }
    out.push('');
    out.push('broker / ceiling   conc  throughput   p50    p99   CPU/req   added p50 broker vs ceiling (ms)');
    for (const q of ratios) {
      out.push(
        `${''.padEnd(18)} ${String(q.concurrency).padStart(4)} ${fmt(q.throughput, 2).padStart(10)} ${fmt(q.p50, 2).padStart(6)} ${fmt(q.p99, 2).padStart(6)} ${fmt(q.cpuPerRequest, 2).padStart(9)}   ${fmt(q.brokerAddedP50Ms, 2)} vs ${fmt(q.ceilingAddedP50Ms, 2)}`,
      );
    }
    out.push('');
    out.push(`broker RSS: idle ${fmt(report.brokerRss.idleMb, 0)} MB, peak under load ${fmt(report.brokerRss.peakMb, 0)} MB, after load ${fmt(report.brokerRss.afterLoadMb, 0)} MB`);
    if (cold) {
      out.push('');
      out.push('cold start to credentials (median of ' + cold.client.runs + ' runs, process start → exit)');
      for (const s of [cold.bareNode, cold.fetchBaseline, cold.client]) out.push(`  ${s.what.padEnd(62)} ${fmt(s.medianMs, 0).padStart(6)} ms  (${s.ok}/${s.runs} ok)`);
      out.push(`  client / node+fetch: ${fmt(cold.client.medianMs / cold.fetchBaseline.medianMs, 2)}${cold.clientIsPlaceholder ? '  (CLIENT FAILED: only the node+fetch placeholder is meaningful)' : ''}`);
    }
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
    rmSync(cfgDir, { recursive: true, force: true });
  }
}

await main();
