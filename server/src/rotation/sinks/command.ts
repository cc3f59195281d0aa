// Generic sink: runs a program (no shell) and writes the credentials as JSON to its stdin. They are
// never in argv or in the child's environment, which holds only PATH, HOME, LANG and `pass_env` —
// not the broker's own AWS credentials either. Exit status 0 confirms delivery.
import { spawn } from 'node:child_process';
import type { CommandSinkConfig } from '../config-schema.js';
import { RotationError } from '../errors.js';
import { scrub, type NewAccessKey } from '../secret.js';
import type { Sink, SinkContext } from './types.js';

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

export function createCommandSink(cfg: CommandSinkConfig, ctx: SinkContext, id = commandSinkId(cfg)): Sink {
  const [program, ...args] = cfg.command as [string, ...string[]];

  const run = (payload: string, secretsToScrub: NewAccessKey[], signal?: AbortSignal) =>
    new Promise<void>((resolve, reject) => {
      const child = spawn(program, args, {
        env: childEnv(ctx, cfg.pass_env),
        stdio: ['pipe', 'ignore', 'pipe'],
        shell: false,
        timeout: cfg.timeout_seconds * 1000,
        killSignal: 'SIGKILL',
        ...(signal ? { signal } : {}),
      });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => {
        stderr = (stderr + d.toString()).slice(-2000);
      });
      child.stdin.on('error', () => {
        /* the program may exit without reading; its exit status tells */
      });
      child.on('error', (err) => {
        reject(new RotationError('ERR_SINK_COMMAND', `sink ${id}: cannot run ${program} (${(err as NodeJS.ErrnoException).code ?? err.name})`, { retryable: false }));
      });
      child.on('close', (code, sig) => {
        if (code === 0) return resolve();
        const tail = scrub(stderr, secretsToScrub.map((k) => k.secretAccessKey)).trim().slice(-300);
        reject(
          new RotationError('ERR_SINK_COMMAND', `sink ${id}: ${program} exited with ${sig ?? `status ${code}`}${tail ? `: ${tail}` : ''}`, {
            retryable: true,
          }),
        );
      });
      child.stdin.end(payload);
    });

  return {
    id,
    type: 'command',
    async preflight() {
      // Nothing to check without running it: the program would receive a delivery.
    },
    async deliver(key, signal) {
      const payload = JSON.stringify({
        version: 1,
        user_name: key.userName,
        access_key_id: key.accessKeyId,
        secret_access_key: key.secretAccessKey.reveal(),
        created_at: key.createdAt.toISOString(),
      });
      await run(payload, [key], signal);
    },
  };
}
