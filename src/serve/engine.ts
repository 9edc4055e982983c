// The server's side of the engine threads: starts them (every model loaded in each), keeps
// one Batcher per model and kind, and turns a batch into one message to the least busy
// thread: the rows of its requests are copied into an input slot, a SharedArrayBuffer both
// threads keep (a fresh or transferred 10 MB buffer per batch cost page faults and, as
// external memory, a V8 mark-compact in each thread every batch or two: 0.2-0.3 of the two
// cores the kernels need, resnet18 at concurrency 32), and the outputs come back split per
// request. A next batch that is already full is posted while the current one computes (the
// Batcher's lookahead), so the engine thread starts it without waiting for this thread to
// take its reply (a mean 9-11 ms a batch under load).
// Streams (`--streams S`, as OpenVINO's throughput streams or Triton's CPU instance count):
// S engine threads, each with its own OpenMP team of threads / S, each batch on one of them.
// oneDNN splits a primitive's work statically over its team and every thread waits for the
// slowest, so two one-thread batches side by side beat one two-thread batch in `resnet bench`
// (resnet18 batch 16: 1.1-1.2x the images/s), and the HTTP thread stealing a core slows one
// stream, not the whole team. Served on 2 cores it did not pay (batches leave shorter; README,
// Streams), and a single request runs on one team, so one stream is the default.
// A detector gets one queue of its own whose batches hold ONE image: on this project's 2-core
// machine batching did not pay (fasterrcnn_resnet18_fpn, min size 480, native: 4 images of
// 480x640 one by one took 1.1-1.4 s, as one padded batch 1.8-2.0 s; 4 mixed sizes 1.2 s vs
// 1.7 s), and one image per forward gives exactly what `detect()` gives for it.
// A crash of the engine thread fails what is in flight and marks the engine not ready.

import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { preferPassiveOpenMp } from '../backend/native.js';
import * as errors from '../errors.js';
import { Batcher, type BatchResults, type BatcherOptions, type Done } from './batcher.js';
import type { DetectImage, EngineInit, ModelInfo, RawImageDetections, RunKind, ServedModel, WorkerErrorInfo, WorkerReply, WorkerRequest } from './engine_messages.js';
import { HttpError } from './http_error.js';
import { spawnWorker } from './spawn.js';

/** One request's rows through the net: logits [n, K] and, for 'features', embedding [n, D]. */
export interface EngineOutput {
  logits: Float32Array;
  embedding: Float32Array | null;
}

/** n rows of a model's input: float32, or their little-endian bytes (the v2 binary form). */
interface Rows { x: Float32Array | Uint8Array; n: number }

type ResultReply = Extract<WorkerReply, { type: 'result' | 'detections' }>;
/** An engine thread once its models are loaded, with what it reported. */
interface ReadyWorker { worker: Worker; models: ServedModel[]; threads: number; threadIds: number[] }

/** The error a worker reported, as the ResnetError subclass it was (else a plain Error). */
function rebuild(info: WorkerErrorInfo): Error {
  const cls = (errors as Record<string, unknown>)[info.name];
  if (typeof cls === 'function' && cls.prototype instanceof errors.ResnetError && cls !== errors.ResnetError) {
    try { return new (cls as new (m: string) => Error)(info.message); } catch { /* fall through */ }
  }
  return new Error(info.message);
}

/**
 * The engine: models in a worker thread, requests batched per model and kind.
 * @example
 * const engine = await Engine.start({ models: [{ name: 'r18', options: { arch: 'resnet18', pretrained: true } }], precision: 'auto' }, limits);
 * const { result } = await engine.submit('r18', 'logits', x, 1);
 */
export class Engine {
  readonly models = new Map<string, ServedModel>();
  private readonly queues = new Map<string, Batcher<Rows, EngineOutput>>();
  private readonly detectQueues = new Map<string, Batcher<DetectImage, RawImageDetections>>();
  /** Requests sent to each engine thread and not yet answered (by id). */
  private readonly pending: Map<number, { resolve: (r: ResultReply) => void; reject: (e: unknown) => void }>[];
  private nextId = 1;
  private alive = true;
  /** Input slots per queue: free ones, and which engine threads hold each slot's buffer. */
  private readonly slots = new Map<string, { id: number; buffer: SharedArrayBuffer; known: Set<number> }[]>();
  private nextSlot = 0;
  /** Requests per model on their way to its queues (see arriving()). */
  private readonly arrivals = new Map<string, number>();
  private readonly maxBatch: number;
  /** Called after each batch: model, rows, compute ms (metrics). */
  onBatch: ((model: string, rows: number, computeMs: number) => void) | null = null;

  /**
   * @param threads oneDNN's OpenMP threads of each engine thread (as the engines reported when ready).
   * @param computeThreadIds Linux ids of the threads that run the kernels: each engine thread and its OpenMP team (none on the reference backend).
   */
  private constructor(private readonly workers: Worker[], infos: ServedModel[], limits: Omit<BatcherOptions, 'name'>, readonly threads: number, readonly computeThreadIds: number[]) {
    this.maxBatch = limits.maxBatch;
    this.pending = workers.map(() => new Map());
    const concurrency = workers.length;
    for (const m of infos) {
      this.models.set(m.name, m);
      if (m.kind === 'detector') {
        const b = new Batcher<DetectImage, RawImageDetections>({ ...limits, maxBatch: 1, name: m.name, concurrency, lookahead: 1, arrivals: () => this.arrivals.get(m.name) ?? 0 }, (items) => this.runDetect(m.name, items));
        b.onBatch = (rows, ms) => this.onBatch?.(m.name, rows, ms);
        this.detectQueues.set(m.name, b);
        continue;
      }
      for (const kind of ['logits', 'features'] as RunKind[]) {
        const b = new Batcher<Rows, EngineOutput>({ ...limits, name: m.name, concurrency, lookahead: 1, arrivals: () => this.arrivals.get(m.name) ?? 0 }, (items, rows) => this.runBatch(m, kind, items, rows));
        b.onBatch = (rows, ms) => this.onBatch?.(m.name, rows, ms);
        this.queues.set(`${m.name}\0${kind}`, b);
      }
    }
    const fail = (why: string) => {
      this.alive = false;
      for (const pending of this.pending) {
        for (const p of pending.values()) p.reject(new HttpError(500, `engine thread ${why}`));
        pending.clear();
      }
    };
    workers.forEach((worker, i) => {
      worker.on('message', (r: WorkerReply) => {
        if (r.type !== 'result' && r.type !== 'detections' && r.type !== 'error') return;
        const p = this.pending[i].get(r.id);
        if (!p) return;
        this.pending[i].delete(r.id);
        // Inputs were checked before they were queued: a failing forward is the server's fault.
        if (r.type !== 'error') p.resolve(r); else p.reject(new HttpError(500, `engine: ${r.error.message}`));
      });
      worker.on('error', (e) => fail(`failed: ${e.message}`));
      worker.on('exit', (code) => { if (this.alive) fail(`exited with code ${code}`); });
    });
  }

  /**
   * Starts the engine threads (`streams`, default 1) and waits until every model is loaded in
   * each (a load error rejects, as its ResnetError). `threads` (default RESNET_NUM_THREADS,
   * else every core) are split between the streams, at least one each.
   */
  static async start(init: EngineInit, limits: Omit<BatcherOptions, 'name' | 'concurrency'>, streams = 1): Promise<Engine> {
    // Validate the limits before loading anything.
    new Batcher<Rows, EngineOutput>({ ...limits }, async () => []);
    if (!Number.isInteger(streams) || streams < 1) throw new RangeError(`engine: 'streams' must be an integer >= 1, got ${streams}`);
    if (init.threads !== undefined && (!Number.isInteger(init.threads) || init.threads < 1)) {
      throw new RangeError(`engine: 'threads' must be an integer >= 1, got ${init.threads}`);
    }
    preferPassiveOpenMp();  // here: the engine threads' own process.env never reaches libgomp
    let perStream = init.threads;
    if (streams > 1) {
      const envThreads = Number(process.env.RESNET_NUM_THREADS);
      const total = init.threads ?? (Number.isInteger(envThreads) && envThreads > 0 ? envThreads : availableParallelism());
      perStream = Math.max(1, Math.floor(total / streams));
    }
    const starts = Array.from({ length: streams }, () => Engine.startWorker({ ...init, threads: perStream }));
    const settled = await Promise.allSettled(starts);
    const failed = settled.find((r) => r.status === 'rejected');
    if (failed) {
      await Promise.all(settled.map((r) => (r.status === 'fulfilled' ? r.value.worker.terminate() : undefined)));
      throw (failed as PromiseRejectedResult).reason;
    }
    const ready = settled.map((r) => (r as PromiseFulfilledResult<ReadyWorker>).value);
    return new Engine(ready.map((r) => r.worker), ready[0].models, limits, ready[0].threads, ready.flatMap((r) => r.threadIds));
  }

  /** One engine thread, once its models are loaded. */
  private static startWorker(init: EngineInit): Promise<ReadyWorker> {
    const worker = spawnWorker('engine_worker', init);
    return new Promise((resolve, reject) => {
      const onMessage = (r: WorkerReply) => {
        if (r.type === 'ready') { cleanup(); resolve({ worker, models: r.models, threads: r.threads, threadIds: r.threadIds }); }
        if (r.type === 'init-error') { cleanup(); void worker.terminate(); reject(rebuild(r.error)); }
      };
      const onError = (e: Error) => { cleanup(); reject(e); };
      const onExit = (code: number) => { cleanup(); reject(new Error(`engine thread exited with code ${code} while loading`)); };
      const cleanup = () => { worker.off('message', onMessage); worker.off('error', onError); worker.off('exit', onExit); };
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
    });
  }

  /** Engine threads (streams), each running one batch at a time. */
  get streams(): number {
    return this.workers.length;
  }

  get ready(): boolean {
    return this.alive;
  }

  /** Requests queued for `model` (all kinds). */
  depth(model: string): number {
    let n = 0;
    for (const kind of ['logits', 'features']) n += this.queues.get(`${model}\0${kind}`)?.depth ?? 0;
    return n + (this.detectQueues.get(model)?.depth ?? 0);
  }

  /**
   * Counts a request for `model` that is on its way (+1 when its headers arrive, -1 just
   * before it is submitted or when it fails first): while any is, a short batch of that model
   * waits (up to the max delay) for it; when none is, it leaves at once.
   */
  arriving(model: string, delta: 1 | -1): void {
    const n = Math.max(0, (this.arrivals.get(model) ?? 0) + delta);
    this.arrivals.set(model, n);
    if (n > 0) return;
    for (const kind of ['logits', 'features']) this.queues.get(`${model}\0${kind}`)?.nudge();
    this.detectQueues.get(model)?.nudge();
  }

  /** Requests for `model` on their way (headers in; body being read or image decoded). */
  onTheWay(model: string): number {
    return this.arrivals.get(model) ?? 0;
  }

  /** Queues n rows of `model`'s input ([n, C, H, W] float32, preprocessed; or those floats'
   *  little-endian bytes, as the v2 binary extension sends them). */
  submit(model: string, kind: RunKind, x: Float32Array | Uint8Array, n: number): Promise<Done<EngineOutput>> {
    const q = this.queues.get(`${model}\0${kind}`);
    if (!q) return Promise.reject(new HttpError(404, `unknown model '${model}'; loaded: ${[...this.models.keys()].join(', ')}`));
    if (!this.alive) return Promise.reject(new HttpError(503, 'engine thread is down; the server is not ready'));
    return q.submit({ x, n }, n);
  }

  /** Queues one decoded image for detector `model`; resolves with every detection the model keeps. */
  detect(model: string, image: DetectImage): Promise<Done<RawImageDetections>> {
    const q = this.detectQueues.get(model);
    if (!q) return Promise.reject(new HttpError(404, `unknown detector '${model}'; loaded: ${[...this.models.keys()].join(', ')}`));
    if (!this.alive) return Promise.reject(new HttpError(503, 'engine thread is down; the server is not ready'));
    return q.submit(image, 1);
  }

  /** The engine thread with the fewest requests in hand (the first of those tied). */
  private pickWorker(): number {
    let best = 0;
    for (let i = 1; i < this.workers.length; i++) if (this.pending[i].size < this.pending[best].size) best = i;
    return best;
  }

  private async call(worker: number, msg: WorkerRequest, transfer: ArrayBuffer[]): Promise<ResultReply> {
    return new Promise<ResultReply>((resolve, reject) => {
      this.pending[worker].set(msg.id!, { resolve, reject });
      this.workers[worker].postMessage(msg, transfer);
    });
  }

  private async runDetect(model: string, images: DetectImage[]): Promise<BatchResults<RawImageDetections>> {
    const reply = await this.call(this.pickWorker(), { type: 'detect', id: this.nextId++, model, images }, images.map((im) => im.data.buffer as ArrayBuffer));
    if (reply.type !== 'detections') throw new HttpError(500, `engine: a detect request got a '${reply.type}' reply`);
    return { results: reply.detections, computeMs: reply.ms };
  }

  private async runBatch(m: ModelInfo, kind: RunKind, items: Rows[], rows: number): Promise<BatchResults<EngineOutput>> {
    const per = m.channels * m.height * m.width;
    const key = `${m.name}\0${kind}`;
    // A slot of this queue no running batch uses (one per batch handed over: streams + lookahead), grown if too small.
    let free = this.slots.get(key);
    if (!free) this.slots.set(key, free = []);
    let slot = free.pop();
    if (!slot || slot.buffer.byteLength < 4 * rows * per) {
      slot = { id: slot?.id ?? this.nextSlot++, buffer: new SharedArrayBuffer(4 * Math.max(rows, this.maxBatch) * per), known: new Set() };
    }
    const worker = this.pickWorker();
    const fresh = !slot.known.has(worker);
    slot.known.add(worker);
    let reply: ResultReply;
    try {
      const bytes = new Uint8Array(slot.buffer, 0, 4 * rows * per);
      let at = 0;
      for (const it of items) {
        bytes.set(it.x instanceof Uint8Array ? it.x : new Uint8Array(it.x.buffer, it.x.byteOffset, it.x.byteLength), at);
        at += 4 * it.n * per;
      }
      reply = await this.call(worker, { type: 'run', id: this.nextId++, model: m.name, kind, slot: slot.id, ...(fresh ? { buffer: slot.buffer } : {}), n: rows, shape: [m.channels, m.height, m.width] }, []);
    } finally {
      free.push(slot);
    }
    if (reply.type !== 'result') throw new HttpError(500, `engine: a run request got a '${reply.type}' reply`);
    const K = m.numClasses;
    const D = m.numFeatures;
    const out: EngineOutput[] = [];
    let row = 0;
    for (const it of items) {
      out.push({
        logits: reply.logits.slice(row * K, (row + it.n) * K),
        embedding: reply.embedding ? reply.embedding.slice(row * D, (row + it.n) * D) : null,
      });
      row += it.n;
    }
    return { results: out, computeMs: reply.ms };
  }

  /** Waits for every queue to empty, then stops the engine thread. */
  async close(): Promise<void> {
    await Promise.all([...this.queues.values(), ...this.detectQueues.values()].map((q) => q.drained()));
    this.alive = false;
    await Promise.all(this.workers.map((worker) => {
      worker.postMessage({ type: 'close' } satisfies WorkerRequest);
      return new Promise<void>((r) => { const t = setTimeout(() => { void worker.terminate().then(() => r()); }, 2000); worker.once('exit', () => { clearTimeout(t); r(); }); });
    }));
  }
}
