// DataLoader: shuffles by seed per epoch, batches, applies transforms and prepares the next
// batches in worker threads while the consumer trains on the current one. The order of an
// epoch depends only on (seed, epoch), and a sample's augmentation only on (seed, epoch,
// position), so `epoch(e, { startBatch: b })` yields exactly the tail of a full epoch e:
// resuming needs only `state` = { seed, epoch, batch }. Array datasets (uint8, or float32
// in x / 255 units) are shared with the
// workers through a SharedArrayBuffer (copied there once if they are not already); image
// folders are decoded with sharp on libuv's threads and handed over by transfer.
// Workers keep the process alive only while a batch is in flight; close() ends them.

import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { DataError, InvalidArgumentError, ResnetError } from '../errors.js';
import { checkArrayDataset, isPixelArray, subsetDataset, type ArrayDataset, type Batch } from './dataset.js';
import { decodeImageHwc, Limiter, type ImageFolderDataset } from './image_folder.js';
import { orderSeed, sampleSeed, serveRequest, type BatchReply, type BatchRequest, type WorkerInit } from './pipeline.js';
import { Random } from './random.js';
import type { Transform } from './transforms.js';

/**
 * What a DataLoader reads: an in-memory array dataset or an image folder.
 * @example
 * const data: LoaderDataset = Math.random() < 0.5 ? train : await loadImageFolder('photos');
 * const loader = new DataLoader(data, { batchSize: 32 });
 */
export type LoaderDataset = ArrayDataset | ImageFolderDataset;

/** @example const options: DataLoaderOptions = { batchSize: 64, shuffle: true, seed: 1, workers: 2, transforms: [randomHorizontalFlip(), normalize(stats.mean, stats.std)] }; */
export interface DataLoaderOptions {
  batchSize: number;
  /** Shuffle each epoch (default true). */
  shuffle?: boolean;
  /** Seed of the shuffles and the augmentations (default 0). */
  seed?: number;
  /** Drop the last incomplete batch (default false). */
  dropLast?: boolean;
  /** Applied to each sample, in order; see transforms.ts. Default: none (x / 255 only). */
  transforms?: Transform[];
  /** Worker threads (0 = prepare on the calling thread). Default min(2, cores - 1), at least 1. */
  workers?: number;
  /** Batches prepared ahead of the consumer, 1..8 (default 3). */
  prefetch?: number;
  /** Use only the first N samples. */
  subset?: number;
  /** Image folders: images decoded at once, across all batches in preparation (default 4). */
  decodeConcurrency?: number;
  /** Image folders: largest width*height accepted per image. */
  limitInputPixels?: number;
}

/**
 * Where an epoch stands: save it to resume at exactly the next batch.
 * @example const { epoch, batch }: LoaderState = loader.state;  // save with a checkpoint, resume with loader.epoch(epoch, { startBatch: batch })
 */
export interface LoaderState {
  seed: number;
  epoch: number;
  /** The next batch to be yielded. */
  batch: number;
}

/** @example const { batches, samples, waitMs }: LoaderStats = loader.stats; */
export interface LoaderStats {
  /** Batches yielded since the last resetStats(). */
  batches: number;
  /** Samples yielded. */
  samples: number;
  /** Time the consumer spent waiting for a batch that was not ready, ms. */
  waitMs: number;
}

interface Pending {
  resolve: (b: Batch) => void;
  reject: (e: Error) => void;
}

interface PoolWorker {
  worker: Worker;
  inflight: Map<number, Pending>;
  exited: Promise<void>;
}

function isArrayDataset(ds: LoaderDataset): ds is ArrayDataset {
  return isPixelArray((ds as ArrayDataset).images);
}

/**
 * Starts a data worker. Compiled, the worker is a .js file beside us. Run from the .ts
 * sources (tests, under tsx), Node 20 does not carry tsx's hooks into worker threads, so a
 * tiny bootstrap registers them first, then imports the .ts worker.
 */
function spawnWorker(init: WorkerInit): Worker {
  if (!import.meta.url.endsWith('.ts')) {
    return new Worker(new URL('./workers/batch_worker.js', import.meta.url), { workerData: init, stdout: false, stderr: false });
  }
  const target = new URL('./workers/batch_worker.ts', import.meta.url).href;
  let api: string;
  try {
    api = import.meta.resolve('tsx/esm/api');
  } catch {
    return new Worker(new URL(target), { workerData: init, stdout: false, stderr: false });
  }
  const boot = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(target)}); });`;
  return new Worker(boot, { eval: true, workerData: init, stdout: false, stderr: false });
}

function asDataError(e: unknown, what: string): Error {
  if (e instanceof ResnetError) return e;
  return new DataError(`${what}: ${(e as Error)?.message ?? String(e)}`, { cause: e });
}

/** Shares a typed array's bytes through a SharedArrayBuffer (copies once if needed). */
function shared<T extends Uint8Array | Int32Array | Float32Array>(a: T): T {
  if (a.buffer instanceof SharedArrayBuffer) return a;
  const Ctor = a.constructor as { new(b: SharedArrayBuffer): T };
  const out = new Ctor(new SharedArrayBuffer(a.byteLength));
  out.set(a as never);
  return out;
}

/**
 * Batches of float32 [N, C, H, W] and int32 labels, prepared ahead in worker threads.
 * @example
 *   const loader = new DataLoader(train, { batchSize: 128, seed: 1, transforms: [
 *     randomCrop(28, { padding: 4 }), randomHorizontalFlip(), normalize(stats.mean, stats.std)] });
 *   try {
 *     for (let e = 0; e < epochs; e++)
 *       for await (const { x, y, shape } of loader.epoch(e)) step(x, y, shape);
 *   } finally { await loader.close(); }
 */
export class DataLoader {
  readonly batchSize: number;
  readonly seed: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  readonly prefetch: number;
  readonly numWorkers: number;
  /** Samples per epoch (after subset). */
  readonly size: number;
  readonly classes: string[];
  private readonly transforms: Transform[];
  private readonly array: ArrayDataset | null;
  private readonly folder: ImageFolderDataset | null;
  private readonly decoder: Limiter;
  private readonly limitInputPixels: number | undefined;
  private pool: PoolWorker[] | null = null;
  private nextId = 1;
  private closed = false;
  private broken: Error | null = null;
  private position: LoaderState;
  private counters: LoaderStats = { batches: 0, samples: 0, waitMs: 0 };

  constructor(dataset: LoaderDataset, options: DataLoaderOptions) {
    const o = options ?? ({} as DataLoaderOptions);
    const int = (v: unknown, name: string, min: number, max = Infinity): number => {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
        throw new InvalidArgumentError(`DataLoader: '${name}' must be an integer in [${min}, ${max}], got ${String(v)}`);
      }
      return v;
    };
    this.batchSize = int(o.batchSize, 'batchSize', 1);
    this.seed = int(o.seed ?? 0, 'seed', 0, 2 ** 53);
    this.shuffle = o.shuffle ?? true;
    this.dropLast = o.dropLast ?? false;
    this.prefetch = int(o.prefetch ?? 3, 'prefetch', 1, 8);
    this.numWorkers = int(o.workers ?? Math.min(2, Math.max(1, availableParallelism() - 1)), 'workers', 0, 16);
    this.decoder = new Limiter(int(o.decodeConcurrency ?? 4, 'decodeConcurrency', 1, 64));
    this.limitInputPixels = o.limitInputPixels;
    this.transforms = [...(o.transforms ?? [])];
    for (const t of this.transforms) {
      if (typeof t !== 'object' || t === null || typeof t.kind !== 'string') {
        throw new InvalidArgumentError(`DataLoader: 'transforms' must hold transforms made by randomCrop(), normalize() ..., got ${JSON.stringify(t)}`);
      }
    }
    if (dataset === null || typeof dataset !== 'object') throw new InvalidArgumentError('DataLoader: dataset is required');
    if (isArrayDataset(dataset) || 'images' in dataset) {
      let ds = dataset as ArrayDataset;
      checkArrayDataset(ds, 'DataLoader');  // names what is wrong with 'images'
      if (o.subset !== undefined) ds = subsetDataset(ds, int(o.subset, 'subset', 1));
      this.array = { ...ds, images: shared(ds.images), labels: shared(ds.labels) };
      this.folder = null;
      this.size = ds.n;
      this.classes = ds.classes;
    } else if (Array.isArray((dataset as ImageFolderDataset).samples)) {
      let ds = dataset;
      if (o.subset !== undefined) {
        const samples = ds.samples.slice(0, int(o.subset, 'subset', 1));
        ds = { ...ds, samples, n: samples.length };
      }
      this.array = null;
      this.folder = ds;
      this.size = ds.samples.length;
      this.classes = ds.classes;
    } else {
      throw new InvalidArgumentError('DataLoader: dataset must be an array dataset (images, labels, n, ...) or an image folder (samples)');
    }
    if (this.size === 0) throw new InvalidArgumentError('DataLoader: the dataset is empty');
    this.position = { seed: this.seed, epoch: 0, batch: 0 };
  }

  /** Batches per epoch. */
  get length(): number {
    return this.dropLast ? Math.floor(this.size / this.batchSize) : Math.ceil(this.size / this.batchSize);
  }

  /** The order state: the epoch and the next batch (what a checkpoint saves to resume). */
  get state(): LoaderState {
    return { ...this.position };
  }

  /** Counters since the last resetStats(): batches, samples, and the consumer's wait. */
  get stats(): LoaderStats {
    return { ...this.counters };
  }

  resetStats(): void {
    this.counters = { batches: 0, samples: 0, waitMs: 0 };
  }

  /** The sample order of epoch `epoch` (a permutation, or 0..n-1 without shuffle). */
  order(epoch: number): Int32Array {
    if (!Number.isInteger(epoch) || epoch < 0) throw new InvalidArgumentError(`DataLoader.order: 'epoch' must be a non-negative integer, got ${epoch}`);
    if (!this.shuffle) return Int32Array.from({ length: this.size }, (_, i) => i);
    return new Random(orderSeed(this.seed, epoch)).permutation(this.size);
  }

  /**
   * The batches of epoch `epoch`, from `startBatch` (default 0) to the end.
   * Breaking out of the loop early is fine; batches prepared ahead are dropped.
   */
  async *epoch(epoch: number, options: { startBatch?: number } = {}): AsyncGenerator<Batch, void, undefined> {
    if (this.closed) throw new InvalidArgumentError('DataLoader: used after close()');
    const order = this.order(epoch);
    const total = this.length;
    const start = options.startBatch ?? 0;
    if (!Number.isInteger(start) || start < 0 || start > total) {
      throw new InvalidArgumentError(`DataLoader.epoch: 'startBatch' must be an integer in [0, ${total}], got ${start}`);
    }
    this.position = { seed: this.seed, epoch, batch: start };
    const pending: Promise<Batch>[] = [];
    let next = start;
    const fill = (): void => {
      while (pending.length < this.prefetch && next < total) {
        const p = this.prepare(epoch, order, next++);
        p.catch(() => { /* observed when awaited; silences abandoned ones */ });
        pending.push(p);
      }
    };
    try {
      for (let b = start; b < total; b++) {
        fill();
        const t0 = performance.now();
        const batch = await pending.shift()!;
        this.counters.waitMs += performance.now() - t0;
        this.counters.batches++;
        this.counters.samples += batch.y.length;
        this.position = { seed: this.seed, epoch, batch: b + 1 };
        fill();
        yield batch;
      }
    } finally {
      pending.length = 0;
    }
  }

  /** Ends the worker threads; pending batches are rejected. Safe to call twice. */
  async close(): Promise<void> {
    this.closed = true;
    const pool = this.pool;
    this.pool = null;
    if (pool === null) return;
    await Promise.all(pool.map(async (pw) => {
      this.failWorker(pw, new DataError('DataLoader: closed while a batch was being prepared'));
      await pw.worker.terminate();
      await pw.exited;
    }));
  }

  private async prepare(epoch: number, order: Int32Array, b: number): Promise<Batch> {
    const lo = b * this.batchSize;
    const hi = Math.min(lo + this.batchSize, this.size);
    const indices = order.slice(lo, hi);
    const seeds = new Uint32Array(hi - lo);
    for (let k = 0; k < seeds.length; k++) seeds[k] = sampleSeed(this.seed, epoch, lo + k);
    let req: BatchRequest;
    if (this.array !== null) {
      req = { id: this.nextId++, kind: 'array', indices, seeds };
    } else {
      const folder = this.folder!;
      const samples = Array.from(indices, (i) => folder.samples[i]);
      // One limiter for the loader: batches prepared ahead share the decode slots, the
      // earliest batch first.
      const images = await Promise.all(samples.map((s) =>
        this.decoder.run(() => decodeImageHwc(s.path, { limitInputPixels: this.limitInputPixels }))));
      req = {
        id: this.nextId++, kind: 'records', images, hwc: true, seeds,
        labels: Int32Array.from(samples, (s) => s.label), names: samples.map((s) => s.path),
      };
    }
    if (this.numWorkers === 0) {
      await new Promise<void>((r) => setImmediate(r));
      try {
        return serveRequest(this.init(), req);
      } catch (e) {
        throw asDataError(e, 'DataLoader');
      }
    }
    return this.dispatch(req);
  }

  private init(): WorkerInit {
    const a = this.array;
    return {
      transforms: this.transforms,
      array: a === null ? null : { images: a.images, labels: a.labels, channels: a.channels, height: a.height, width: a.width },
    };
  }

  private startPool(): PoolWorker[] {
    const init = this.init();
    const pool: PoolWorker[] = [];
    for (let i = 0; i < this.numWorkers; i++) {
      const worker = spawnWorker(init);
      const pw: PoolWorker = { worker, inflight: new Map(), exited: Promise.resolve() };
      pw.exited = new Promise<void>((resolve) => {
        worker.once('exit', (code) => {
          if (this.pool !== null && this.pool.includes(pw)) {
            const err = new DataError(`DataLoader: data worker ${i} exited unexpectedly with code ${code}`);
            this.broken ??= err;
            this.failWorker(pw, err);
          }
          resolve();
        });
      });
      worker.on('message', (reply: BatchReply) => {
        const p = pw.inflight.get(reply.id);
        if (p === undefined) return;
        pw.inflight.delete(reply.id);
        if (pw.inflight.size === 0) worker.unref();
        if ('error' in reply) {
          p.reject(new DataError(reply.error.code === 'ERR_DATA' || reply.error.code === undefined
            ? reply.error.message : `${reply.error.name ?? 'Error'}: ${reply.error.message}`));
        } else {
          p.resolve(reply.batch);
        }
      });
      worker.on('error', (e) => {
        const err = new DataError(`DataLoader: data worker ${i} failed: ${e?.message ?? String(e)}`, { cause: e });
        this.broken ??= err;
        this.failWorker(pw, err);
      });
      worker.on('messageerror', (e) => {
        this.failWorker(pw, new DataError(`DataLoader: data worker ${i} sent an unreadable message: ${e.message}`));
      });
      worker.unref();
      pool.push(pw);
    }
    return pool;
  }

  private failWorker(pw: PoolWorker, err: Error): void {
    for (const p of pw.inflight.values()) p.reject(err);
    pw.inflight.clear();
    pw.worker.unref();
  }

  private dispatch(req: BatchRequest): Promise<Batch> {
    if (this.broken !== null) return Promise.reject(this.broken);
    if (this.closed) return Promise.reject(new InvalidArgumentError('DataLoader: used after close()'));
    this.pool ??= this.startPool();
    let pw = this.pool[0];
    for (const w of this.pool) if (w.inflight.size < pw.inflight.size) pw = w;
    return new Promise<Batch>((resolve, reject) => {
      pw.inflight.set(req.id, { resolve, reject });
      pw.worker.ref();
      const transfer: ArrayBuffer[] = [];
      if (req.kind === 'records') {
        // Hand each image's memory over; a view into a larger or shared buffer is copied first.
        req.images = req.images.map((im) => {
          const buf = im.data.buffer;
          const whole = buf instanceof ArrayBuffer && im.data.byteOffset === 0 && im.data.byteLength === buf.byteLength && !transfer.includes(buf);
          const data = whole ? im.data : im.data.slice();
          transfer.push(data.buffer as ArrayBuffer);
          return { ...im, data };
        });
      }
      pw.worker.postMessage(req, transfer);
    });
  }
}
