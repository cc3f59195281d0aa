// Generic sink: runs a program (no shell) and writes the credentials as JSON to its stdin. They are
// never in argv or in the child's environment, which holds only PATH, HOME, LANG and `pass_env` —
// not the broker's own AWS credentials either. Exit status 0 confirms delivery.
//
// Fencing: the program runs under a small watchdog (a node process leading its own process group)
// that kills the whole group at the push's time limit — the earlier of `timeout_seconds` and the
// push deadline (before the rotation lease expires). The watchdog keeps its own clock, so the limit
// holds even when the broker is frozen (SIGSTOP) or dead. When the push ends or is aborted, the broker
// kills the group too, so nothing the program left behind in it can write later. What is not fenced:
// a program that leaves the group (setsid, a daemon) or hands the write to another system.
import { spawn } from 'node:child_process';
import type { CommandSinkConfig } from '../config-schema.js';
import { RotationError } from '../errors.js';
import { scrub, type NewAccessKey } from '../secret.js';
import { deadlineError } from './http.js';
import type { PushFence, Sink, SinkContext } from './types.js';

export function commandSinkId(cfg: CommandSinkConfig): string {
  return `command:${cfg.name}`;
}

const BASE_ENV = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR'];

export function childEnv(ctx: SinkContext, passEnv: string[]): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const name of [...BASE_ENV, ...passEnv]) {
    const v = ctx.env[name];
    if (v !== undefined) env[name] = v;
  }
  return env;
}

const CANNOT_RUN = 'credbroker-sink-watchdog: cannot run the program';

/** Run as `node -e WATCHDOG -- LIMIT_MS PROGRAM ARGS…`; exits with the program's status (128+n for a signal). */
export const WATCHDOG = `'use strict';
const { spawn } = require('node:child_process');
const { constants } = require('node:os');
const [limit, program, ...args] = process.argv.slice(1);
const killGroup = () => { try { process.kill(-process.pid, 'SIGKILL'); } catch { process.exit(137); } };
const timer = setTimeout(killGroup, Number(limit));
const child = spawn(program, args, { stdio: 'inherit' });
child.on('error', (err) => { process.stderr.write('\\n${CANNOT_RUN} (' + (err.code || err.name) + ')\\n'); process.exit(127); });
child.on('exit', (code, signal) => { clearTimeout(timer); process.exit(code === null ? 128 + (constants.signals[signal] || 9) : code); });
`;

export function createCommandSink(cfg: CommandSinkConfig, ctx: SinkContext, id = commandSinkId(cfg)): Sink {
  const [program, ...args] = cfg.command as [string, ...string[]];

  const run = (payload: string, secretsToScrub: NewAccessKey[], fence: PushFence) =>
    new Promise<void>((resolve, reject) => {
      const ownLimit = cfg.timeout_seconds * 1000;
      const fenceLeft = fence.deadline === undefined ? Infinity : fence.deadline - Date.now();
      if (fenceLeft <= 0) return reject(deadlineError(id, `run ${program}`, false));
      if (fence.signal?.aborted) return reject(new RotationError('ERR_ROTATION_ABORTED', `sink ${id}: not started: the run is stopping`));
      const limitMs = Math.floor(Math.min(ownLimit, fenceLeft));
      const child = spawn(process.execPath, ['-e', WATCHDOG, '--', String(limitMs), program, ...args], {
        env: childEnv(ctx, cfg.pass_env),
        stdio: ['pipe', 'ignore', 'pipe'],
        shell: false,
        detached: true, // its own process group, killed as a whole
      });
      const killGroup = () => {
        try {
          if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      };
      // Backstop in this process too, should the watchdog itself be stopped.
      const backstop = setTimeout(killGroup, limitMs + 1000);
      const onAbort = () => killGroup();
      fence.signal?.addEventListener('abort', onAbort, { once: true });
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => {
        stderr = (stderr + d.toString()).slice(-2000);
      });
      child.stdin!.on('error', () => {
        /* the program may exit without reading; its exit status tells */
      });
      child.on('error', (err) => {
        clearTimeout(backstop);
        reject(new RotationError('ERR_SINK_COMMAND', `sink ${id}: cannot run the watchdog (${(err as NodeJS.ErrnoException).code ?? err.name})`, { retryable: false }));
      });
      child.on('exit', (code, sig) => {
        clearTimeout(backstop);
        fence.signal?.removeEventListener('abort', onAbort);
        killGroup(); // whatever the program left running in its group must not write later
        // Let stderr drain a moment (a descendant outside the group could hold it open forever).
        setTimeout(() => settle(code, sig), 20);
      });
      const settle = (code: number | null, sig: NodeJS.Signals | null) => {
        if (code === 0) return resolve();
        if (stderr.includes(CANNOT_RUN)) {
          const why = /cannot run the program \(([^)]+)\)/.exec(stderr)?.[1] ?? 'error';
          return reject(new RotationError('ERR_SINK_COMMAND', `sink ${id}: cannot run ${program} (${why})`, { retryable: false }));
        }
        if (sig === 'SIGKILL' && fence.signal?.aborted) return reject(new RotationError('ERR_ROTATION_ABORTED', `sink ${id}: ${program} was stopped: the run is stopping`));
        if (sig === 'SIGKILL') {
          // Its whole process group is gone: nothing of this push is left in flight.
          if (fenceLeft < ownLimit) return reject(deadlineError(id, `${program} (after ${limitMs} ms)`, true, false));
          return reject(new RotationError('ERR_SINK_COMMAND', `sink ${id}: ${program} did not finish within timeout_seconds (${cfg.timeout_seconds}s)`, { retryable: true }));
        }
        const tail = scrub(stderr, secretsToScrub.map((k) => k.secretAccessKey)).trim().slice(-300);
        reject(new RotationError('ERR_SINK_COMMAND', `sink ${id}: ${program} exited with status ${code ?? sig}${tail ? `: ${tail}` : ''}`, { retryable: true }));
      };
      child.stdin!.end(payload);
    });

  return {
    id,
    type: 'command',
    async preflight() {
      // Nothing to check without running it: the program would receive a delivery.
    },
    async deliver(key, fence = {}) {
      const payload = JSON.stringify({
        version: 1,
        user_name: key.userName,
        access_key_id: key.accessKeyId,
        secret_access_key: key.secretAccessKey.reveal(),
        created_at: key.createdAt.toISOString(),
      });
      await run(payload, [key], fence);
    },
  };
}
