// Request bodies read into reused memory. A binary tensor request is ~600 KB (one 3x224x224
// float image); read the usual way (chunks, then Buffer.concat) every request allocates a
// fresh ArrayBuffer of that size, which V8 counts as external memory: at ~90 requests/s the
// main thread ran a mark-compact every ~0.3 s ("external memory pressure", --trace-gc), and
// on a 2-core machine every core the HTTP side takes is taken from the engine's OpenMP team.
// Here a body with a Content-Length is copied straight from the socket's chunks into a
// buffer from a free list (power-of-two size classes), handed back when the response has
// been sent, so in steady state no body allocates. Bodies without a length (chunked) or over
// MAX_POOLED are gathered as fastify would: memory then grows only with the bytes that came,
// so a client that declares a large body and sends nothing holds nothing. Limits and errors are fastify's own (413, Content-Length
// mismatch), so the error handler treats them as before.

import type { Readable } from 'node:stream';
import { errorCodes } from 'fastify';

const MIN_POOLED = 64 * 1024;
/** Largest body read into pooled memory (allocated when its headers come, before its bytes). */
export const MAX_POOLED = 4 * 1024 * 1024;

/**
 * Free lists of ArrayBuffers by power-of-two size; bodies from MIN_POOLED bytes up are pooled.
 * @example
 * const pool = new BodyPool(64 * 1024 * 1024);
 * const b = pool.take(600_000);   // a Buffer of 600,000 bytes over a 1 MiB ArrayBuffer
 * pool.give(b);                   // the next take of that class reuses it
 */
export class BodyPool {
  private readonly free = new Map<number, ArrayBuffer[]>();
  private held = 0;
  /** Buffers taken from a free list (reused) and freshly allocated: for tests and metrics. */
  readonly stats = { reused: 0, allocated: 0 };

  /** @param maxHeldBytes most bytes kept in the free lists; a buffer given back beyond that is left to the GC. */
  constructor(readonly maxHeldBytes: number) {}

  /** A Buffer of exactly `n` bytes (contents undefined: the caller overwrites all of it). */
  take(n: number): Buffer {
    if (n < MIN_POOLED) return Buffer.allocUnsafe(n);
    const size = 2 ** Math.ceil(Math.log2(n));
    const ab = this.free.get(size)?.pop();
    if (ab) {
      this.held -= size;
      this.stats.reused++;
      return Buffer.from(ab, 0, n);
    }
    this.stats.allocated++;
    return Buffer.from(new ArrayBuffer(size), 0, n);
  }

  /** Hands `buf` (from `take`) back; nothing may read or write it afterwards. */
  give(buf: Buffer): void {
    const ab = buf.buffer;
    const size = ab.byteLength;
    if (!(ab instanceof ArrayBuffer) || buf.byteOffset !== 0 || size < MIN_POOLED || (size & (size - 1)) !== 0) return;
    if (this.held + size > this.maxHeldBytes) return;
    let list = this.free.get(size);
    if (!list) this.free.set(size, (list = []));
    list.push(ab);
    this.held += size;
  }

  /** Bytes now in the free lists. */
  get heldBytes(): number {
    return this.held;
  }
}

/**
 * Reads a request body: into a pooled buffer when `contentLength` is given and at most
 * MAX_POOLED (the caller gives it back once nothing reads it), else gathered from chunks. Rejects with fastify's
 * FST_ERR_CTP_BODY_TOO_LARGE past `limit` and FST_ERR_CTP_INVALID_CONTENT_LENGTH when the
 * bytes received are not the length declared.
 * @example const body = await readBody(req.raw, Number(req.headers['content-length']), 32 << 20, pool);
 */
export function readBody(payload: Readable, contentLength: number, limit: number, pool: BodyPool): Promise<{ body: Buffer; pooled: boolean }> {
  return new Promise((resolve, reject) => {
    if (contentLength > limit) {
      payload.resume(); // drain, so the connection can answer
      reject(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE());
      return;
    }
    const known = Number.isInteger(contentLength) && contentLength >= 0;
    const target = known && contentLength <= MAX_POOLED ? pool.take(contentLength) : null;
    const chunks: Buffer[] = [];
    let received = 0;
    const finish = (err: Error | null) => {
      payload.removeListener('data', onData);
      payload.removeListener('end', onEnd);
      payload.removeListener('error', onError);
      if (err) {
        if (target) pool.give(target);
        reject(err);
      } else if (target) {
        resolve({ body: target, pooled: true });
      } else {
        resolve({ body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, received), pooled: false });
      }
    };
    const onData = (chunk: Buffer | string) => {
      const c = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      if (received + c.length > limit) {
        payload.resume();
        finish(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE());
        return;
      }
      if (known && received + c.length > contentLength) {
        payload.resume();
        finish(new errorCodes.FST_ERR_CTP_INVALID_CONTENT_LENGTH());
        return;
      }
      if (target) c.copy(target, received);
      else chunks.push(c);
      received += c.length;
    };
    const onEnd = () => finish(known && received !== contentLength ? new errorCodes.FST_ERR_CTP_INVALID_CONTENT_LENGTH() : null);
    const onError = (err: Error & { statusCode?: number }) => {
      if (!(typeof err.statusCode === 'number' && err.statusCode >= 400)) err.statusCode = 400;
      finish(err);
    };
    payload.on('data', onData);
    payload.on('end', onEnd);
    payload.on('error', onError);
    payload.resume();
  });
}
