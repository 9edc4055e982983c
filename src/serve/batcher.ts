// Dynamic batching, as Triton's dynamic batcher: requests wait in a bounded FIFO queue; a
// batch leaves when it holds `maxBatch` rows or its oldest request has waited `maxDelayMs`,
// and only one batch per queue runs at a time (the engine runs one forward at a time anyway,
// so requests arriving during a forward form the next batch); with `lookahead`, a next
// batch that is already full is handed over while the running one computes, so the engine
// starts it the moment it is free instead of after a round trip through this thread.
// Limits are configuration:
// a full queue refuses (503 + Retry-After), a request still queued at its deadline is
// dropped (503) and never computed. Knows nothing of HTTP or models: `run` does the work.

import { HttpError } from './http_error.js';

/** @example const o: BatcherOptions = { maxBatch: 16, maxDelayMs: 5, maxQueue: 256, timeoutMs: 10000 }; */
export interface BatcherOptions {
  /** Rows per batch (a request of more rows than this runs alone). */
  maxBatch: number;
  /** Longest wait of a batch's oldest request before the batch leaves short. */
  maxDelayMs: number;
  /** Requests queued at most; one more is refused. */
  maxQueue: number;
  /** A request still queued this long after it came is dropped. */
  timeoutMs: number;
  /** Names the queue in messages (the model's name). */
  name?: string;
  /** Batches running at once (default 1; the engine's streams). */
  concurrency?: number;
  /** Requests on their way to this queue (their bodies being read or images decoded): while
   *  none is, a short batch leaves at once instead of waiting out `maxDelayMs` for rows that
   *  are not coming. Without it a short batch always waits the delay (Triton's rule). */
  arrivals?: () => number;
  /** Full batches that may be handed to `run` beyond `concurrency` while those run (default
   *  0): `run` must then queue them itself (an engine thread's message queue does). A short
   *  batch waits for a free slot as before, growing meanwhile. */
  lookahead?: number;
}

/** What `run` gives back: a result per payload, or those and the batch's own compute time
 *  when it differs from the time `run` took (a batch handed over early waits its turn). */
export type BatchResults<R> = R[] | { results: R[]; computeMs: number };

/** What a request gets back: its result and where its time went. */
export interface Done<R> {
  result: R;
  /** From arrival until the batch's compute began (for a batch handed over early, until
   *  `run` says it began). */
  queueMs: number;
  computeMs: number;
  /** Rows of the batch it ran in. */
  batchRows: number;
}

interface Pending<T, R> {
  payload: T;
  rows: number;
  arrived: number;
  timer: NodeJS.Timeout;
  resolve: (d: Done<R>) => void;
  reject: (e: unknown) => void;
}

/**
 * A bounded queue that hands `run` batches of payloads (results in the same order).
 * @example
 * const b = new Batcher<Float32Array, number>({ maxBatch: 8, maxDelayMs: 5, maxQueue: 64, timeoutMs: 1000 }, async (xs) => xs.map((x) => x[0]));
 * const { result, queueMs } = await b.submit(new Float32Array([1]));
 */
export class Batcher<T, R> {
  private readonly queue: Pending<T, R>[] = [];
  private running = 0;
  private timer: NodeJS.Timeout | null = null;
  private idle: (() => void)[] = [];
  /** Called after each batch with its rows and compute time (metrics). */
  onBatch: ((rows: number, computeMs: number) => void) | null = null;

  constructor(readonly options: BatcherOptions, private readonly run: (payloads: T[], rows: number) => Promise<BatchResults<R>>) {
    for (const k of ['maxBatch', 'maxQueue', 'concurrency'] as const) {
      if (k === 'concurrency' && options[k] === undefined) continue;
      if (!Number.isInteger(options[k]) || options[k]! < 1) throw new RangeError(`Batcher: '${k}' must be an integer >= 1, got ${options[k]}`);
    }
    if (options.lookahead !== undefined && (!Number.isInteger(options.lookahead) || options.lookahead < 0)) {
      throw new RangeError(`Batcher: 'lookahead' must be an integer >= 0, got ${options.lookahead}`);
    }
    for (const k of ['maxDelayMs', 'timeoutMs'] as const) {
      if (!(options[k] >= 0) || !Number.isFinite(options[k])) throw new RangeError(`Batcher: '${k}' must be a number >= 0, got ${options[k]}`);
    }
  }

  /** Requests waiting (not yet in a running batch). */
  get depth(): number {
    return this.queue.length;
  }

  /** Whether a batch is running or requests wait. */
  get busy(): boolean {
    return this.running > 0 || this.queue.length > 0;
  }

  /** Queues `payload` (of `rows` rows); resolves with its result, or rejects with a 503 HttpError when refused or past its deadline. */
  submit(payload: T, rows = 1): Promise<Done<R>> {
    const { maxQueue, timeoutMs } = this.options;
    const who = this.options.name ? `model '${this.options.name}': ` : '';
    if (this.queue.length >= maxQueue) {
      return Promise.reject(new HttpError(503, `${who}queue full (${this.queue.length} requests waiting, --max-queue ${maxQueue}); retry later`, { 'Retry-After': '1' }));
    }
    return new Promise<Done<R>>((resolve, reject) => {
      const p: Pending<T, R> = {
        payload, rows, arrived: performance.now(), resolve, reject,
        timer: setTimeout(() => {
          const i = this.queue.indexOf(p);
          if (i < 0) return; // already running: it finishes
          this.queue.splice(i, 1);
          reject(new HttpError(503, `${who}waited ${timeoutMs} ms in the queue (--timeout-ms ${timeoutMs}) and was dropped uncomputed; retry later`, { 'Retry-After': '1' }));
          this.settleIdle();
        }, timeoutMs),
      };
      p.timer.unref?.();
      this.queue.push(p);
      this.schedule();
    });
  }

  /** Looks again whether a batch should leave (call when `arrivals` has dropped). */
  nudge(): void {
    this.schedule();
  }

  /** Resolves once the queue is empty and no batch runs. */
  drained(): Promise<void> {
    if (!this.busy) return Promise.resolve();
    return new Promise((r) => this.idle.push(r));
  }

  private queuedRows(): number {
    let n = 0;
    for (const p of this.queue) n += p.rows;
    return n;
  }

  private schedule(): void {
    const slots = this.options.concurrency ?? 1;
    const early = slots + (this.options.lookahead ?? 0);
    while (this.queue.length > 0) {
      const full = this.queuedRows() >= this.options.maxBatch;
      if (this.running >= slots) {
        // Every slot busy: only a full batch goes, as one handed over early. (A short one
        // handed over on its delay could no longer grow, and under load the batches
        // fragmented: resnet18 at concurrency 32 ran 9-10 rows a batch against 15.8.)
        if (full && this.running < early) { void this.runBatch(); continue; }
        return;
      }
      const wait = this.options.maxDelayMs - (performance.now() - this.queue[0].arrived);
      if (!full && wait > 0 && (this.options.arrivals?.() ?? 1) > 0) {
        // A short batch waits for rows on their way, at most until its oldest has waited the delay.
        this.timer ??= setTimeout(() => { this.timer = null; this.schedule(); }, wait);
        return;
      }
      if (this.timer) { clearTimeout(this.timer); this.timer = null; }
      void this.runBatch();
    }
  }

  private async runBatch(): Promise<void> {
    const batch: Pending<T, R>[] = [];
    let rows = 0;
    while (this.queue.length && (batch.length === 0 || rows + this.queue[0].rows <= this.options.maxBatch)) {
      const p = this.queue.shift()!;
      clearTimeout(p.timer);
      batch.push(p);
      rows += p.rows;
    }
    this.running++;
    const start = performance.now();
    try {
      const out = await this.run(batch.map((p) => p.payload), rows);
      const took = performance.now() - start;
      const [results, computeMs] = Array.isArray(out) ? [out, took] : [out.results, Math.min(out.computeMs, took)];
      const began = start + took - computeMs;
      this.onBatch?.(rows, computeMs);
      batch.forEach((p, i) => p.resolve({ result: results[i], queueMs: began - p.arrived, computeMs, batchRows: rows }));
    } catch (e) {
      for (const p of batch) p.reject(e);
    } finally {
      this.running--;
      this.schedule();
      this.settleIdle();
    }
  }

  private settleIdle(): void {
    if (this.busy) return;
    const waiting = this.idle;
    this.idle = [];
    for (const r of waiting) r();
  }
}
