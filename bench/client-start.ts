// Client start-up: whole processes, process start → exit with credentials on stdout, against a
// broker on loopback. The number that matters is a ratio taken in the same run: the Node client's
// median over a bare `node -e 0`'s median, for each Node version present (goal: at most 2). The sh
// client is measured beside it for reference.
//
//   npm run bench:client [-- --runs 15] [--nodes /path/to/node24:/path/to/node22]
// `npm run bench` runs this too, against its own broker. Node versions: this process's Node, those
// in --nodes or $CREDBROKER_BENCH_NODES (':'-separated), and any `node` on PATH that differs.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { median } from './lib.js';

export interface ClientStartRow {
  node: string;
  version: string;
  bareMs: number;
  clientMs: number;
  ratio: number;
  ok: number;
  runs: number;
}
export interface ClientStart {
  runs: number;
  rows: ClientStartRow[];
  sh?: { ms: number; ok: number; runs: number };
  goal: number;
}

const CLIENT = fileURLToPath(new URL('../client/credbroker-client.mjs', import.meta.url));
const SH_CLIENT = fileURLToPath(new URL('../client/credbroker-client.sh', import.meta.url));

function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ ms: number; code: number | null; stdout: string }> {
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'ignore'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ ms: Number(process.hrtime.bigint() - started) / 1e6, code, stdout });
    });
  });
}

/** The Node binaries to compare on: this one, the listed ones, and a different `node` on PATH. */
export function nodesPresent(extra: string[] = []): Array<{ node: string; version: string }> {
  const candidates = [process.execPath, ...extra, ...(process.env.CREDBROKER_BENCH_NODES ?? '').split(':').filter(Boolean)];
  try {
    candidates.push(execFileSync('sh', ['-c', 'command -v node'], { encoding: 'utf8' }).trim());
  } catch {
    /* none on PATH */
  }
  const seen = new Map<string, string>();
  for (const node of candidates) {
    try {
      const version = execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();
      if (![...seen.values()].includes(version)) seen.set(node, version);
    } catch {
      /* not runnable */
    }
  }
  return [...seen].map(([node, version]) => ({ node, version }));
}

/**
 * Measures, interleaved so drift affects all alike: `node -e 0` and the client (generic provider,
 * token file, json) on each Node, and the sh client. `token()` must return a fresh one-time token.
 */
export async function benchClientStart(opts: { brokerUrl: string; token: () => Promise<string>; runs: number; nodes?: string[] }): Promise<ClientStart> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'credbroker-bench-client-'));
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir };
  const nodes = nodesPresent(opts.nodes);
  const bare = nodes.map(() => [] as number[]);
  const client = nodes.map(() => [] as number[]);
  const ok = nodes.map(() => 0);
  const sh: number[] = [];
  let shOk = 0;
  const tokenFile = path.join(dir, 'token');
  const args = ['--url', opts.brokerUrl, '--role', 'deploy', '--provider', 'generic', '--token-file', tokenFile];
  try {
    // One warm-up of each, not measured (disk cache).
    for (const { node } of nodes) {
      writeFileSync(tokenFile, await opts.token(), { mode: 0o600 });
      await timed(node, [CLIENT, ...args, '--format', 'json', '--quiet'], env);
    }
    for (let i = 0; i < opts.runs; i++) {
      for (const [n, { node }] of nodes.entries()) {
        bare[n]!.push((await timed(node, ['-e', '0'], env)).ms);
        writeFileSync(tokenFile, await opts.token(), { mode: 0o600 });
        const c = await timed(node, [CLIENT, ...args, '--format', 'json', '--quiet'], env);
        client[n]!.push(c.ms);
        if (c.code === 0 && c.stdout.includes('SecretAccessKey')) ok[n]! += 1;
      }
      writeFileSync(tokenFile, await opts.token(), { mode: 0o600 });
      const s = await timed('sh', [SH_CLIENT, ...args], env);
      sh.push(s.ms);
      if (s.code === 0 && s.stdout.includes('AWS_SECRET_ACCESS_KEY')) shOk += 1;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return {
    runs: opts.runs,
    goal: 2,
    rows: nodes.map(({ node, version }, n) => ({
      node,
      version,
      bareMs: median(bare[n]!),
      clientMs: median(client[n]!),
      ratio: median(client[n]!) / median(bare[n]!),
      ok: ok[n]!,
      runs: opts.runs,
    })),
    sh: { ms: median(sh), ok: shOk, runs: opts.runs },
  };
}

export function formatClientStart(r: ClientStart): string[] {
  const fmt = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '—');
  const out = [`client start to credentials (median of ${r.runs} runs, process start → exit; goal: client / node -e 0 ≤ ${r.goal})`];
  out.push('  node        node -e 0 ms   client ms   client / node -e 0   ok');
  for (const row of r.rows) {
    out.push(
      `  ${row.version.padEnd(10)} ${fmt(row.bareMs).padStart(12)} ${fmt(row.clientMs).padStart(11)} ${fmt(row.ratio, 2).padStart(20)}${row.ratio <= r.goal ? '' : ' (over)'}   ${row.ok}/${row.runs}`,
    );
  }
  if (r.sh) out.push(`  sh client (curl)                 ${fmt(r.sh.ms).padStart(11)}                        ${r.sh.ok}/${r.sh.runs}`);
  return out;
}

// Standalone: its own issuer and broker (in this process, STS answered by a local responder).
const invokedDirectly = process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '15' }, nodes: { type: 'string' } } });
  const { startIssuer } = await import('../test/support/oidc-issuer.js');
  const { startFakeSts } = await import('../test/support/fake-sts.js');
  const { startTestBroker, TEST_AUDIENCE } = await import('../test/support/broker.js');
  const { providerClaims } = await import('../test/support/fixtures.js');
  const issuer = await startIssuer();
  const sts = await startFakeSts();
  const broker = await startTestBroker({ issuer, issuerSettings: { test: { preset: 'github-actions' } }, config: { aws: { sts_endpoint: sts.endpoint } as never, logging: { level: 'warn' } as never } });
  try {
    const result = await benchClientStart({
      brokerUrl: broker.url,
      runs: Number(values.runs),
      nodes: values.nodes?.split(':').filter(Boolean),
      token: () => issuer.sign({ ...providerClaims('github-actions'), aud: TEST_AUDIENCE }, { lifetimeSeconds: 600 }),
    });
    process.stdout.write(`${formatClientStart(result).join('\n')}\n`);
  } finally {
    await broker.close();
    await Promise.all([issuer.close(), sts.close()]);
  }
}
