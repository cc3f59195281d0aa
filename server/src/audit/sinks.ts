// Where audit records go: stdout (one JSON line each, the default), an append-only file, or
// memory (tests). The store-backed, hash-chained sink lives with the store.
import { open, type FileHandle } from 'node:fs/promises';
import type { AuditRecord, AuditSink } from './types.js';

export class StdoutAuditSink implements AuditSink {
  constructor(private readonly out: NodeJS.WritableStream = process.stdout) {}
  async write(record: AuditRecord): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.out.write(`${JSON.stringify(record)}\n`, (err) => (err ? reject(err) : resolve()));
    });
  }
}

export class FileAuditSink implements AuditSink {
  private handle: Promise<FileHandle> | undefined;
  private chain: Promise<void> = Promise.resolve();
  constructor(private readonly path: string) {}

  /** Opens the file now: a broker that cannot write its audit trail should not start. */
  async open(): Promise<void> {
    this.handle ??= open(this.path, 'a', 0o600);
    await this.handle;
  }

  write(record: AuditRecord): Promise<void> {
    this.handle ??= open(this.path, 'a', 0o600);
    const line = `${JSON.stringify(record)}\n`;
    // Serialize writes so lines never interleave.
    this.chain = this.chain.then(async () => {
      const h = await this.handle!;
      await h.appendFile(line, 'utf8');
    });
    return this.chain;
  }

  async close(): Promise<void> {
    await this.chain.catch(() => undefined);
    const handle = await this.handle?.catch(() => undefined);
    await handle?.close();
  }
}

export class MemoryAuditSink implements AuditSink {
  readonly records: AuditRecord[] = [];
  async write(record: AuditRecord): Promise<void> {
    this.records.push(record);
  }
}
