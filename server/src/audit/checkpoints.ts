// Signed checkpoints of the audit chain's head, written outside the database: to the log stream
// (stderr, the default), stdout, or an append-only file. Someone who can write to the database
// cannot reach them, so they reveal the deletion of the newest records and a chain rebuilt from
// scratch. Written at start, whenever the head moved (at most every interval), and at shutdown.
import { appendFile, readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { parseCheckpointLine, signCheckpoint, type AuditCheckpoint, type ChainKey } from '../core/audit-chain.js';
import type { Config } from '../config/compile.js';
import type { Logger } from '../log.js';
import type { AuditStore } from '../ops/types.js';

export interface CheckpointSink {
  write(checkpoint: AuditCheckpoint): Promise<void>;
}

/** One line in the shape of the broker's own JSON logs, so log pipelines keep it like any other. */
const logLine = (c: AuditCheckpoint) => `${JSON.stringify({ level: 'info', time: c.time, service: 'credbroker', msg: 'audit checkpoint', audit_checkpoint: c })}\n`;

const streamSink = (out: NodeJS.WritableStream): CheckpointSink => ({
  write: (c) => new Promise<void>((resolve, reject) => out.write(logLine(c), (err) => (err ? reject(err) : resolve()))),
});

export function checkpointSink(cfg: Config['audit']['checkpoints'], streams: { stdout?: NodeJS.WritableStream; stderr?: NodeJS.WritableStream } = {}): CheckpointSink {
  if (cfg.sink === 'file') {
    const file = cfg.path!;
    return { write: (c) => appendFile(file, `${JSON.stringify(c)}\n`, { encoding: 'utf8', mode: 0o600 }) };
  }
  return streamSink(cfg.sink === 'stdout' ? (streams.stdout ?? process.stdout) : (streams.stderr ?? process.stderr));
}

export const checkpointWriterId = (): string => `${hostname()}:${process.pid}`;

export class CheckpointWriter {
  private timer: NodeJS.Timeout | undefined;
  private last: AuditCheckpoint | undefined;
  private readonly written: AuditCheckpoint[] = [];
  private running: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly deps: {
      store: Pick<AuditStore, 'auditHead'>;
      key: ChainKey;
      sink: CheckpointSink;
      logger: Logger;
      intervalMs: number;
      now(): Date;
      writer?: string;
    },
  ) {}

  /** Writes the first checkpoint (a sink that cannot be written stops the start), then one per interval when the head moved. */
  async start(): Promise<void> {
    await this.checkpoint(true);
    this.timer = setInterval(() => {
      this.checkpoint(false).catch((err: unknown) => this.deps.logger.error({ error: err instanceof Error ? err.message : String(err) }, 'audit checkpoint failed'));
    }, this.deps.intervalMs);
    this.timer.unref();
  }

  /** Writes a checkpoint of the current head (unless unchanged and not forced); serialized. */
  checkpoint(force: boolean): Promise<AuditCheckpoint | undefined> {
    const run = this.running.then(async () => {
      const head = await this.deps.store.auditHead();
      if (!force && this.last && this.last.seq === head.seq && this.last.hash === head.hash) return undefined;
      const c = signCheckpoint(head, this.deps.key, this.deps.now(), this.deps.writer ?? checkpointWriterId());
      await this.deps.sink.write(c);
      this.last = c;
      this.written.push(c);
      if (this.written.length > 100) this.written.shift();
      return c;
    });
    this.running = run.catch(() => undefined);
    return run;
  }

  /** Checkpoints this process wrote (the newest 100), for the admin API's verification. */
  recent(): AuditCheckpoint[] {
    return [...this.written];
  }

  /** Stops the timer and writes the shutdown checkpoint. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.checkpoint(true).catch((err: unknown) => this.deps.logger.error({ error: err instanceof Error ? err.message : String(err) }, 'final audit checkpoint failed'));
  }
}

export interface CheckpointsRead {
  checkpoints: AuditCheckpoint[];
  /** Lines that mention a checkpoint but do not parse as one. */
  unreadable: number;
}

/** Reads checkpoints from files: checkpoint files, or log files that carry them among other lines. */
export async function readCheckpointFiles(files: readonly string[]): Promise<CheckpointsRead> {
  const out: CheckpointsRead = { checkpoints: [], unreadable: 0 };
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // no checkpoint written yet
      throw err;
    }
    for (const line of text.split('\n')) {
      const c = parseCheckpointLine(line);
      if (c === 'unreadable') out.unreadable++;
      else if (c) out.checkpoints.push(c);
    }
  }
  return out;
}
