// Request bodies read into reused memory (src/serve/body_pool.ts): the pool's size classes
// and reuse, and readBody's limits and length checks with fastify's own error codes.

import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { BodyPool, MAX_POOLED, readBody } from '../src/serve/body_pool.js';

const chunksOf = (buf: Buffer, size: number): Buffer[] => Array.from({ length: Math.ceil(buf.length / size) }, (_, i) => buf.subarray(i * size, (i + 1) * size));
const bytes = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 255));

describe('BodyPool', () => {
  test('bodies from 64 KiB up come from power-of-two buffers, reused once given back; small ones are plain', () => {
    const pool = new BodyPool(8 * 1024 * 1024);
    const a = pool.take(600_000);
    assert.equal(a.length, 600_000);
    assert.equal(a.buffer.byteLength, 1 << 20);
    pool.give(a);
    assert.equal(pool.heldBytes, 1 << 20);
    const b = pool.take(700_000);
    assert.equal(b.buffer, a.buffer, 'same class: the same memory');
    assert.equal(b.length, 700_000);
    assert.equal(pool.heldBytes, 0);
    assert.notEqual(pool.take(300_000).buffer.byteLength, 1 << 20, 'another class allocates');
    assert.deepEqual(pool.stats, { reused: 1, allocated: 2 });
    const small = pool.take(1000);
    pool.give(small);
    assert.equal(pool.heldBytes, 0, 'small bodies are not kept');
  });

  test('keeps at most maxHeldBytes; a foreign buffer is ignored', () => {
    const pool = new BodyPool(2 << 20);
    const bs = [pool.take(1 << 20), pool.take(1 << 20), pool.take(1 << 20)];
    for (const b of bs) pool.give(b);
    assert.equal(pool.heldBytes, 2 << 20);
    pool.give(Buffer.alloc(100_000));
    assert.equal(pool.heldBytes, 2 << 20);
  });
});

describe('readBody', () => {
  test('a body with its length lands in pooled memory, whatever the chunking', async () => {
    const pool = new BodyPool(8 << 20);
    const want = bytes(200_000, 7);
    for (const size of [1, 4096, 65536, 200_000]) {
      const src = size === 1 ? Readable.from(chunksOf(want, 70_001)) : Readable.from(chunksOf(want, size));
      const { body, pooled } = await readBody(src, want.length, 1 << 20, pool);
      assert.ok(pooled);
      assert.ok(body.equals(want), `chunks of ${size}`);
      pool.give(body);
    }
    assert.equal(pool.stats.allocated, 1, 'one buffer served all four');
  });

  test('a body over MAX_POOLED is gathered as it comes, its length still checked', async () => {
    const pool = new BodyPool(64 << 20);
    const want = bytes(MAX_POOLED + 1000, 5);
    const { body, pooled } = await readBody(Readable.from(chunksOf(want, 65536)), want.length, 64 << 20, pool);
    assert.equal(pooled, false);
    assert.ok(body.equals(want));
    assert.equal(pool.stats.allocated, 0, 'nothing allocated up front for a large declared length');
    await assert.rejects(readBody(Readable.from(chunksOf(want, 65536)), want.length - 1, 64 << 20, pool), { code: 'FST_ERR_CTP_INVALID_CONTENT_LENGTH' });
    await assert.rejects(readBody(Readable.from(chunksOf(want, 65536)), want.length + 1, 64 << 20, pool), { code: 'FST_ERR_CTP_INVALID_CONTENT_LENGTH' });
  });

  test('without a length, chunks are gathered (not pooled)', async () => {
    const want = bytes(100_000, 3);
    const { body, pooled } = await readBody(Readable.from(chunksOf(want, 30_000)), NaN, 1 << 20, new BodyPool(8 << 20));
    assert.equal(pooled, false);
    assert.ok(body.equals(want));
  });

  test("over the limit: fastify's 413 error, before reading (declared) or while reading (chunked)", async () => {
    const pool = new BodyPool(8 << 20);
    await assert.rejects(readBody(Readable.from([bytes(10, 0)]), 2_000_000, 1_000_000, pool), { code: 'FST_ERR_CTP_BODY_TOO_LARGE', statusCode: 413 });
    await assert.rejects(readBody(Readable.from(chunksOf(bytes(300_000, 1), 50_000)), NaN, 200_000, pool), { code: 'FST_ERR_CTP_BODY_TOO_LARGE' });
  });

  test('fewer or more bytes than declared: the Content-Length error, and the buffer goes back to the pool', async () => {
    const pool = new BodyPool(8 << 20);
    await assert.rejects(readBody(Readable.from([bytes(100_000, 0)]), 150_000, 1 << 20, pool), { code: 'FST_ERR_CTP_INVALID_CONTENT_LENGTH', statusCode: 400 });
    assert.equal(pool.heldBytes, 256 * 1024);
    await assert.rejects(readBody(Readable.from(chunksOf(bytes(200_000, 0), 64_000)), 150_000, 1 << 20, pool), { code: 'FST_ERR_CTP_INVALID_CONTENT_LENGTH' });
    assert.equal(pool.stats.reused, 1);
    assert.equal(pool.heldBytes, 256 * 1024);
  });

  test('a stream error rejects with a 4xx status', async () => {
    const src = new PassThrough();
    const p = readBody(src, 100_000, 1 << 20, new BodyPool(8 << 20));
    src.write(bytes(1000, 0));
    src.destroy(new Error('aborted'));
    await assert.rejects(p, (e: Error & { statusCode?: number }) => e.message === 'aborted' && e.statusCode === 400);
  });
});
