// Shared by the benchmark processes: percentiles, child processes that report readiness over IPC,
// and per-process CPU/RSS read from /proc (so sampling never loads the process being measured).
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = fileURLToPath(new URL('.', import.meta.url));

/** Percentile of an ascending-sorted array (nearest rank). */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export const median = (values: number[]): number => percentile([...values].sort((a, b) => a - b), 50);

export interface Child {
  proc: ChildProcess;
  message: Record<string, unknown>;
  stop(): Promise<void>;
}

/**
 * Runs a file of this folder in its own Node process (TypeScript via tsx) and waits for its first
 * IPC message (`{ ready: true, ... }`), bounded by `timeoutMs`.
 */
export async function startChild(
  file: string,
  args: string[] = [],
  opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; nodeArgs?: string[] } = {},
): Promise<Child> {
  // TypeScript files run through tsx; plain .mjs files (the broker, from dist/) run as they are.
  const loader = file.endsWith('.ts') ? ['--import', 'tsx'] : [];
  const proc = spawn(process.execPath, [...(opts.nodeArgs ?? []), ...loader, fileURLToPath(new URL(file, import.meta.url)), ...args], {
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    env: { ...process.env, ...opts.env },
  });
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const message = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${file} did not start in time: ${stderr}`)), opts.timeoutMs ?? 30_000);
    proc.once('message', (m) => {
      clearTimeout(timer);
      resolve(m as Record<string, unknown>);
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${file} exited (${code}): ${stderr}`));
    });
  });
  return {
    proc,
    message,
    stop: () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.once('exit', () => resolve());
        // Children exit on their own when the IPC channel closes (so --cpu-prof can write).
        if (proc.connected) proc.disconnect();
        setTimeout(() => proc.kill('SIGTERM'), 3000).unref();
        setTimeout(() => proc.kill('SIGKILL'), 6000).unref();
      }),
  };
}

/** Sends one request to a child and waits for its answer (children answer one message per request). */
export function ask<T>(child: Child, request: Record<string, unknown>, timeoutMs = 300_000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('child did not answer in time')), timeoutMs);
    child.proc.once('message', (m) => {
      clearTimeout(timer);
      resolve(m as T);
    });
    child.proc.send(request);
  });
}

export interface ProcSample {
  /** user + system CPU time of the process, ms. */
  cpuMs: number;
  rssBytes: number;
  /** Peak RSS since the process started (VmHWM). */
  peakRssBytes: number;
}

const CLOCK_TICKS = 100; // USER_HZ on Linux

/** CPU time and RSS of a process from /proc; undefined where /proc is not available. */
export function procSample(pid: number): ProcSample | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpuMs = ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
    return { cpuMs, rssBytes: kb('VmRSS'), peakRssBytes: kb('VmHWM') };
  } catch {
    return undefined;
  }
}
