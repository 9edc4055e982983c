// Decoding and preprocessing beside the engine: a few decode threads (decode_worker.ts), each
// request to the least busy one. sharp's own work already runs on libuv's pool; the resize,
// crop and normalise are JS and would otherwise run on the HTTP thread.

import { createRequire } from 'node:module';
import type { Worker } from 'node:worker_threads';
import { DataError } from '../errors.js';
import type { PreprocessOptions } from '../infer/preprocess.js';
import { HttpError } from './http_error.js';
import { spawnWorker } from './spawn.js';

interface Reply { id: number; data?: Float32Array | Uint8Array; shape?: number[]; ms?: number; error?: { message: string; name: string } }

/** A preprocessed image: float32 [C, H, W] and the decode time. */
export interface Decoded { data: Float32Array; shape: number[]; ms: number }

/** A decoded image at its own size: uint8 planar RGB [3, H, W] and the decode time. */
export interface DecodedImage { data: Uint8Array; shape: number[]; ms: number }

/**
 * A pool of decode threads.
 * @example
 * const pool = new DecodePool(2);
 * const { data, shape } = await pool.decode(bytes, loaded.preprocess);
 */
export class DecodePool {
  private readonly workers: { w: Worker; busy: number }[] = [];
  private readonly pending = new Map<number, { resolve: (d: Decoded & DecodedImage) => void; reject: (e: unknown) => void; slot: { busy: number } }>();
  private nextId = 1;
  private closing = false;

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`DecodePool: size must be an integer >= 1, got ${size}`);
    // sharp (libvips) is loaded by the main thread too, before the decode threads, so that
    // ending those threads never unloads it under libvips' own threads (sharp's docs ask for
    // this when it is used from worker threads; the addon pins itself the same way).
    createRequire(import.meta.url)('sharp');
    for (let i = 0; i < size; i++) this.workers.push(this.spawn());
  }

  /** A decode thread; if it dies (it should not), what it held fails with 500 and a new one takes its place. */
  private spawn(): { w: Worker; busy: number } {
    const slot = { w: spawnWorker('decode_worker', null), busy: 0 };
    slot.w.on('message', (r: Reply) => {
      const p = this.pending.get(r.id);
      if (!p) return;
      this.pending.delete(r.id);
      p.slot.busy--;
      if (r.error) p.reject(r.error.name === 'DataError' || r.error.name === 'InvalidArgumentError' ? new HttpError(400, r.error.message) : new Error(r.error.message));
      else p.resolve({ data: r.data!, shape: r.shape!, ms: r.ms! } as Decoded & DecodedImage);
    });
    slot.w.on('error', () => { /* followed by 'exit' */ });
    slot.w.on('exit', (code) => {
      for (const [id, p] of this.pending) if (p.slot === slot) { this.pending.delete(id); p.reject(new HttpError(500, `decode thread exited with code ${code}`)); }
      const i = this.workers.indexOf(slot);
      if (i >= 0 && !this.closing) this.workers[i] = this.spawn();
    });
    slot.w.unref();
    return slot;
  }

  /** Decodes and preprocesses one encoded image (400 HttpError naming why it cannot). */
  decode(bytes: Uint8Array, options: PreprocessOptions, name = 'image'): Promise<Decoded> {
    return this.request(bytes, options, 'preprocess', name);
  }

  /** Decodes one encoded image as it is (no resize; a detector's input), 400 naming why it cannot. */
  decodeImage(bytes: Uint8Array, options: PreprocessOptions, name = 'image'): Promise<DecodedImage> {
    return this.request(bytes, options, 'image', name);
  }

  private request(bytes: Uint8Array, options: PreprocessOptions, mode: 'preprocess' | 'image', name: string): Promise<Decoded & DecodedImage> {
    if (bytes.length === 0) return Promise.reject(new HttpError(400, `${name}: empty body; send the image's bytes (jpeg, png or webp) as the body or a multipart file`));
    const slot = this.workers.reduce((a, b) => (b.busy < a.busy ? b : a));
    const id = this.nextId++;
    slot.busy++;
    return new Promise<Decoded & DecodedImage>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, slot });
      slot.w.postMessage({ id, bytes, options, mode });
    }).catch((e: unknown) => {
      if (e instanceof HttpError && e.status === 400) throw new HttpError(400, e.message.replace(/^image bytes/, name));
      throw e instanceof DataError ? new HttpError(400, e.message) : e;
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.workers.map((s) => s.w.terminate()));
  }
}
