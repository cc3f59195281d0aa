// Writes issued within one turn of the event loop, run together: one statement or one transaction
// for many callers, each of whom still gets their own answer (or their own error) — and only once
// the batch has been committed. Under concurrency this turns one round trip (or one fsync) per
// exchange into one per turn, without weakening what a caller's awaited write guarantees.

interface Waiting<I, O> {
  input: I;
  resolve(value: O): void;
  reject(err: unknown): void;
}

/** A batch's result for one input: its value, or the error of that input alone. */
export type Settled<O> = { ok: true; value: O } | { ok: false; err: unknown };

export class TurnBatcher<I, O> {
  private queue: Array<Waiting<I, O>> = [];
  private scheduled = false;
  private readonly inFlight = new Set<Promise<void>>();

  /** `run` settles every input of a batch, in order; a throw fails the whole batch. */
  constructor(
    private readonly run: (inputs: I[]) => Promise<Array<Settled<O>>> | Array<Settled<O>>,
    private readonly maxBatch = 500,
  ) {}

  add(input: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.queue.splice(0, this.maxBatch);
    if (this.queue.length > 0) this.schedule();
    if (batch.length === 0) return;
    const done = (async () => {
      try {
        const results = await this.run(batch.map((w) => w.input));
        batch.forEach((w, i) => {
          const r = results[i]!;
          if (r.ok) w.resolve(r.value);
          else w.reject(r.err);
        });
      } catch (err) {
        for (const w of batch) w.reject(err);
      }
    })();
    this.inFlight.add(done);
    void done.finally(() => this.inFlight.delete(done));
  }

  /** Runs what is queued and waits for every batch in flight (at close: accepted writes are kept). */
  async drain(): Promise<void> {
    while (this.queue.length > 0 || this.inFlight.size > 0) {
      if (this.queue.length > 0) this.flush();
      await Promise.all([...this.inFlight]);
    }
  }
}
