// The native backend's own checks: (1) on every layer shape of resnet18/resnet50 (batch 16,
// 224) and CIFAR resnet20 (batch 128, 1x28x28), the hot primitives run on oneDNN's optimised
// kernels, never on a ref (or, for convolutions, gemm) implementation; (2) basic sanity of the
// addon: round trips, live counts, blocked layouts, errors as NativeError, FTZ/DAZ.
// Native-vs-reference agreement of every op lives in its own test file.
// Run: node --import tsx --test test/native.test.ts

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';

import { cifarConvGeometries, imagenetConvGeometries, shapeName } from '../bench/ops.js';
import type { Conv2dGeometry, Pool2dGeometry } from '../src/backend/backend.js';
import { type NativeAddon, NativeBackend, loadNativeAddon } from '../src/backend/native.js';
import { NativeError } from '../src/errors.js';

// The native backend must load (the suite's policy, test/helpers/backends.ts): a machine set
// up for the tests has it, so a load failure fails every test here with its message.
let loaded: NativeAddon | null = null;
let loadError: unknown = null;
try {
  loaded = loadNativeAddon();
} catch (e) {
  loadError = e;
}
function native(): NativeAddon {
  if (!loaded) throw loadError;
  return loaded;
}

const CONV_KINDS = ['conv2d', 'conv2dBackwardData', 'conv2dBackwardWeights'] as const;

interface Net {
  name: string;
  convs: Conv2dGeometry[];
  pools: { kind: 'maxPool2d' | 'avgPool2d'; g: Pool2dGeometry }[];
}

function pool(N: number, C: number, H: number, k: number, s: number, p: number): Pool2dGeometry {
  const OH = Math.floor((H + 2 * p - k) / s) + 1;
  return { N, C, H, W: H, OH, OW: OH, kernelH: k, kernelW: k, strideH: s, strideW: s, padH: p, padW: p };
}

const NETS: Net[] = [
  {
    name: 'resnet18 (N=16, 224)', convs: imagenetConvGeometries('resnet18', 16),
    pools: [{ kind: 'maxPool2d', g: pool(16, 64, 112, 3, 2, 1) }, { kind: 'avgPool2d', g: pool(16, 512, 7, 7, 7, 0) }],
  },
  {
    name: 'resnet50 (N=16, 224)', convs: imagenetConvGeometries('resnet50', 16),
    pools: [{ kind: 'maxPool2d', g: pool(16, 64, 112, 3, 2, 1) }, { kind: 'avgPool2d', g: pool(16, 2048, 7, 7, 7, 0) }],
  },
  {
    name: 'cifar resnet20 (N=128, 1x28x28)', convs: cifarConvGeometries(20, 128, 28, 1),
    pools: [{ kind: 'avgPool2d', g: pool(128, 64, 7, 7, 7, 0) }],
  },
];

/** A ref kernel is a bug on a hot layer; gemm is one too for a convolution. */
function slowKernel(impl: string, conv: boolean): boolean {
  return impl.startsWith('ref') || impl.includes('ref:') || (conv && impl.includes('gemm'));
}

/** The 3-channel stem's backward-data (a gradient w.r.t. the input image, which training never
 *  needs): with C=3 oneDNN 2.6 offers only gemm or ref on AVX2, so gemm is allowed there. */
function gemmAllowed(g: Conv2dGeometry, kind: string): boolean {
  return kind === 'conv2dBackwardData' && g.C === 3;
}

describe('native: hot primitives use optimised oneDNN kernels', () => {
  for (const net of NETS) {
    it(`${net.name}: conv, batch norm, relu, pooling`, (t) => {
      const a = native();
      const bad: string[] = [];
      const gemm: string[] = [];
      const outFormat = new Map<string, string>(); // output shape -> layout conv leaves it in
      for (const g of net.convs) {
        for (const kind of CONV_KINDS) {
          const info = a.implInfo(kind, g);
          const where = `${kind} ${shapeName(g)}: ${info.impl}`;
          if (info.impl.includes('gemm') && gemmAllowed(g, kind)) gemm.push(where);
          else if (slowKernel(info.impl, true)) bad.push(where);
          if (kind === 'conv2d') outFormat.set(JSON.stringify([g.N, g.K, g.OH, g.OW]), info.dst);
        }
      }
      for (const [key, format] of outFormat) {
        const shape = JSON.parse(key) as number[];
        for (const kind of ['batchNormTrain', 'batchNormBackward'] as const) {
          for (const fuseRelu of [false, true]) {
            const info = a.implInfo(kind, { shape, format, fuseRelu });
            if (slowKernel(info.impl, false)) bad.push(`${kind} fuseRelu=${fuseRelu} ${key} ${format}: ${info.impl}`);
          }
        }
        for (const kind of ['relu', 'reluBackward'] as const) {
          const info = a.implInfo(kind, { shape, format });
          if (slowKernel(info.impl, false)) bad.push(`${kind} ${key} ${format}: ${info.impl}`);
        }
      }
      for (const p of net.pools) {
        // the pool's input has the layout of a conv output of that shape
        const format = [...outFormat.entries()].find(([k]) => JSON.parse(k)[1] === p.g.C)?.[1] ?? 'plain';
        for (const kind of [p.kind, `${p.kind}Backward`] as const) {
          const info = a.implInfo(kind, { ...p.g, format, countIncludePad: true });
          if (slowKernel(info.impl, false)) bad.push(`${kind} ${JSON.stringify(p.g)} ${format}: ${info.impl}`);
        }
      }
      assert.deepEqual(bad, [], `slow kernels on hot layers:\n${bad.join('\n')}`);
      // gemm only ever on the 3-channel stem's backward-data, and only where no jit kernel exists
      for (const w of gemm) assert.match(w, /^conv2dBackwardData N\d+ C3 /);
      if (gemm.length) t.diagnostic(`allowed gemm: ${gemm.join('; ')}`);
    });
  }
});

describe('native: sanity', () => {
  const be = () => new NativeBackend(native());
  const f32 = (xs: number[]) => Float32Array.from(xs);

  it('info() reports the backend, oneDNN version, threads and ISA', () => {
    const i = be().info();
    assert.equal(i.backend, 'native');
    assert.equal(i.onednn, '2.6.3');
    assert.ok(i.threads >= 1);
    assert.match(i.isa, /^(avx|avx2|avx2_vnni|avx512_\w+|sse41)$/);
  });

  it('kernelIsa() starts on the widest kernel set the CPU has, switches, and names the valid ones', () => {
    const a = native();
    const flags = new Set((readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1] ?? '').trim().split(/\s+/));
    const avx2 = flags.has('avx2') && flags.has('fma');
    const avx512 = avx2 && ['avx512f', 'avx512bw', 'avx512vl', 'avx512dq'].every((f) => flags.has(f));
    const widest = avx512 ? 'avx512' : avx2 ? 'avx2' : 'baseline';
    const start = a.kernelIsa();
    assert.equal(start, widest);
    try {
      assert.equal(a.kernelIsa('baseline'), 'baseline');
      if (avx2) assert.equal(a.kernelIsa('avx2'), 'avx2');
      assert.throws(() => a.kernelIsa('sse9' as never), 
        /kernelIsa: kernel set must be 'avx512', 'avx2' or 'baseline'; valid on this CPU: .*baseline$/);
      if (!avx512) assert.throws(() => a.kernelIsa('avx512'), /cannot run the 'avx512' kernel set/);
    } finally {
      a.kernelIsa(start);
    }
  });

  it('read(fromArray(x)) round-trips float32, int32 and scalars', () => {
    const b = be();
    const x = f32([1.5, -2, 3e-38, 4, 5, 6]);
    const s = b.fromArray(x, [2, 3], 'float32');
    assert.deepEqual(b.read(s, [2, 3], 'float32'), x);
    const i = b.fromArray(Int32Array.from([7, -8, 2 ** 31 - 1]), [3], 'int32');
    assert.deepEqual(b.read(i, [3], 'int32'), Int32Array.from([7, -8, 2 ** 31 - 1]));
    const sc = b.fromArray(f32([42]), [], 'float32');
    assert.deepEqual(b.read(sc, [], 'float32'), f32([42]));
    const full = b.full([2, 2], 'int32', 3);
    assert.deepEqual(b.read(full, [2, 2], 'int32'), Int32Array.from([3, 3, 3, 3]));
    // An array over a SharedArrayBuffer (resnet serve's input slots), at an offset.
    const shared = new Float32Array(new SharedArrayBuffer(40), 8, 6);
    shared.set(x);
    const fromShared = b.fromArray(shared, [2, 3], 'float32');
    assert.deepEqual(b.read(fromShared, [2, 3], 'float32'), x);
    for (const t of [s, i, sc, full, fromShared]) b.free(t);
  });

  it('live() counts go back after free, and a second free does not crash', () => {
    const b = be();
    const before = b.live();
    const s = b.fromArray(new Float32Array(1000), [10, 100], 'float32');
    const r = b.reshape(s, [10, 100], [1000]);
    const mid = b.live();
    assert.equal(mid.count, before.count + 2);
    assert.ok(mid.bytes >= before.bytes + 8000);
    b.free(s);
    b.free(r);
    b.free(s);
    assert.deepEqual(b.live(), before);
  });

  it('a weight\'s reordered copies count once at their high-water mark, not each time an update drops them', () => {
    // A conv reorders its plain weight into the layouts its primitives want (copies kept on the
    // storage); the optimiser's in-place update drops them, the next forward makes them again.
    // V8 is told of the copies' bytes once: before, every step reported ~2x the weights in and
    // out again and V8 ran a mark-compact per resnet18 step.
    const b = be();
    const g: Conv2dGeometry = {
      N: 2, C: 32, H: 8, W: 8, K: 32, R: 3, S: 3, OH: 8, OW: 8, strideH: 1, strideW: 1, padH: 1, padW: 1,
      dilationH: 1, dilationW: 1, groups: 1,
    };
    const before = b.live();
    const x = b.fromArray(Float32Array.from({ length: 2 * 32 * 64 }, (_, i) => Math.sin(i)), [2, 32, 8, 8], 'float32');
    const w = b.fromArray(Float32Array.from({ length: 32 * 32 * 9 }, (_, i) => Math.cos(i)), [32, 32, 3, 3], 'float32');
    const buf = b.full([32, 32, 3, 3], 'float32', 0);
    const step = (initBuffer: boolean) => {
      const y = b.conv2d(x, w, null, g);
      const dx = b.conv2dBackwardData(y, w, g);
      const { dw } = b.conv2dBackwardWeights(x, y, g, false);
      b.sgdUpdate(w, dw, buf, [32, 32, 3, 3], { lr: 1e-3, momentum: 0.9, dampening: 0, weightDecay: 0, nesterov: false, initBuffer });
      for (const s of [y, dx, dw]) b.free(s);
    };
    const held = [x, w, buf].reduce((n, s) => n + native().describe(s).bytes, 0);
    step(true);
    const settled = b.live().bytes;
    assert.ok(settled >= before.bytes + held + 32 * 32 * 9 * 4, 'x, the weight, its buffer and the dropped copies (>= one weight) are counted');
    for (let i = 0; i < 3; i++) {
      step(false);
      assert.equal(b.live().bytes, settled, `step ${i + 2}: no bytes reported in or out`);
    }
    for (const s of [x, w, buf]) b.free(s);
    assert.deepEqual(b.live(), before, 'freeing the weight gives back its copies\' bytes too');
  });

  it('a weight moved into a copy it already had (the update takes the gradient\'s layout) counts that copy once', () => {
    const b = be();
    const a = native();
    const g: Conv2dGeometry = {
      N: 2, C: 32, H: 8, W: 8, K: 32, R: 3, S: 3, OH: 8, OW: 8, strideH: 1, strideW: 1, padH: 1, padW: 1,
      dilationH: 1, dilationW: 1, groups: 1,
    };
    const x = b.fromArray(new Float32Array(2 * 32 * 64).fill(0.5), [2, 32, 8, 8], 'float32');
    const w = b.fromArray(new Float32Array(32 * 32 * 9).fill(0.1), [32, 32, 3, 3], 'float32');
    const plainBytes = a.describe(w).bytes;
    const y = b.conv2d(x, w, null, g);  // leaves w a copy in the forward's weights layout
    const { dw } = b.conv2dBackwardWeights(x, y, g, false);
    b.free(y);
    const copyFormat = (a.implInfo('conv2d', { ...g, precision: 'fp32' }) as { weights: string }).weights;
    const mid = b.live().bytes;
    b.sgdUpdate(w, dw, null, [32, 32, 3, 3], { lr: 1e-3, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, initBuffer: false });
    assert.equal(a.describe(w).format, a.describe(dw).format, 'the update moves the weight to its gradient\'s layout');
    // The plain primary is gone; the copy that becomes the primary was counted already (or,
    // where the forward's layout differs, a new one is made and counted now).
    const fresh = copyFormat === a.describe(dw).format ? 0 : a.describe(w).bytes;
    assert.equal(b.live().bytes - mid, fresh - plainBytes);
    for (const s of [x, w, dw]) b.free(s);
  });

  it('the buffer pool: a large request takes a cached buffer up to a quarter larger; the buffer comes back at its own size', () => {
    const a = native();
    a.trimPool();
    const floats = (mb: number) => Math.round((mb * 1024 * 1024) / 4);
    const make = (n: number) => a.fromArray(new Float32Array(n).fill(1.5), [n]);
    const misses = () => a.poolStats().misses;
    a.free(make(floats(1)));                        // a 1 MiB buffer cached
    let m = misses();
    const near = make(floats(0.9));                 // 0.9 MiB: takes it
    assert.equal(misses(), m, '0.9 MiB from the cached 1 MiB buffer');
    assert.deepEqual(Array.from((a.read(near) as Float32Array).subarray(0, 3)), [1.5, 1.5, 1.5]);
    const far = make(floats(0.5));                  // 0.5 MiB: the 1 MiB buffer is in use; fresh
    assert.equal(misses(), m + 1);
    a.free(far);
    a.free(near);                                   // back as 1 MiB, so a 1 MiB request finds it
    m = misses();
    const again = make(floats(1));
    assert.equal(misses(), m, 'the 1 MiB request reuses the buffer the 0.9 MiB storage held');
    a.free(again);
    m = misses();
    a.free(make(floats(0.7)));                      // 0.7 MiB: 1 MiB is more than a quarter larger
    assert.equal(misses(), m + 1);
    a.trimPool();
    assert.equal(a.poolStats().cachedBytes, 0);
  });

  it('a blocked-layout conv output reads back as the plain computation', () => {
    const b = be();
    const a = native();
    const before = b.live();
    // x: [2, 3, 4, 4], w: [5, 3, 3, 3], stride 1, pad 1 -> y: [2, 5, 4, 4]; K=5 pads the channel block
    const g: Conv2dGeometry = {
      N: 2, C: 3, H: 4, W: 4, K: 5, R: 3, S: 3, OH: 4, OW: 4, strideH: 1, strideW: 1, padH: 1, padW: 1,
      dilationH: 1, dilationW: 1, groups: 1,
    };
    const xs = Float32Array.from({ length: 96 }, (_, i) => Math.sin(i));
    const ws = Float32Array.from({ length: 135 }, (_, i) => Math.cos(i * 0.7));
    const x = b.fromArray(xs, [2, 3, 4, 4], 'float32');
    const w = b.fromArray(ws, [5, 3, 3, 3], 'float32');
    const y = b.conv2d(x, w, null, g);
    assert.notEqual(a.describe(y).format, 'abcd', 'conv output should be in a blocked layout');
    const want = new Float32Array(160);
    for (let n = 0; n < 2; n++) for (let k = 0; k < 5; k++) for (let oh = 0; oh < 4; oh++) for (let ow = 0; ow < 4; ow++) {
      let s = 0;
      for (let c = 0; c < 3; c++) for (let r = 0; r < 3; r++) for (let q = 0; q < 3; q++) {
        const ih = oh - 1 + r, iw = ow - 1 + q;
        if (ih >= 0 && ih < 4 && iw >= 0 && iw < 4) s += xs[((n * 3 + c) * 4 + ih) * 4 + iw] * ws[((k * 3 + c) * 3 + r) * 3 + q];
      }
      want[((n * 5 + k) * 4 + oh) * 4 + ow] = s;
    }
    const got = b.read(y, [2, 5, 4, 4], 'float32');
    for (let i = 0; i < 160; i++) assert.ok(Math.abs(got[i] - want[i]) < 1e-4, `y[${i}] = ${got[i]}, want ${want[i]}`);
    // channel padding stays zero through an elementwise op with a nonzero constant
    const z = b.affineScalar(y, [2, 5, 4, 4], 1, 1);
    const total = b.sum(z, [2, 5, 4, 4]);
    const expected = want.reduce((p, v) => p + v, 0) + 160;
    assert.ok(Math.abs(b.read(total, [], 'float32')[0] - expected) < 1e-3);
    // an in-place SGD step on w (which has a cached blocked copy) is seen by the next conv
    const grad = b.full([5, 3, 3, 3], 'float32', 1);
    b.sgdUpdate(w, grad, null, [5, 3, 3, 3],
      { lr: 0.5, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, initBuffer: false });
    const y2 = b.conv2d(x, w, null, g);
    const got2 = b.read(y2, [2, 5, 4, 4], 'float32');
    const onesW = b.full([5, 3, 3, 3], 'float32', 1);
    const ones = b.conv2d(x, onesW, null, g);
    const onesOut = b.read(ones, [2, 5, 4, 4], 'float32');
    for (let i = 0; i < 160; i++) assert.ok(Math.abs(got2[i] - (want[i] - 0.5 * onesOut[i])) < 1e-4);
    for (const s of [x, w, y, z, total, grad, y2, onesW, ones]) b.free(s);
    assert.deepEqual(b.live(), before);
  });

  it('native failures become NativeError naming the op, never a crash', () => {
    const b = be();
    const g: Conv2dGeometry = {
      N: 1, C: 2, H: 3, W: 3, K: 2, R: 1, S: 1, OH: 3, OW: 3, strideH: 1, strideW: 1, padH: 0, padW: 0,
      dilationH: 1, dilationW: 1, groups: 1,
    };
    const x = b.fromArray(new Float32Array(18), [1, 2, 3, 3], 'float32');
    const wrong = b.fromArray(new Float32Array(3), [3], 'float32');
    const expectNative = (op: string, f: () => unknown) =>
      assert.throws(f, (e: unknown) => e instanceof NativeError && e.code === 'ERR_NATIVE' && e.message.startsWith(`${op}:`));
    expectNative('conv2d', () => b.conv2d(x, wrong, null, g));
    expectNative('conv2d', () => b.conv2d(x, {} as never, null, g));
    expectNative('conv2d', () => b.conv2d(x, x, null, { ...g, groups: 0 }));
    expectNative('maxPool2dBackward', () => b.maxPool2dBackward(x, x, {
      N: 1, C: 2, H: 3, W: 3, OH: 1, OW: 1, kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, padH: 0, padW: 0,
    }));
    const labels = b.fromArray(Int32Array.from([5]), [1], 'int32');
    const logits = b.fromArray(new Float32Array(3), [1, 3], 'float32');
    expectNative('softmaxCrossEntropy', () => b.softmaxCrossEntropy(logits, labels, 1, 3, 0));
    b.free(wrong);
    expectNative('read', () => b.read(wrong, [3], 'float32'));
    expectNative('relu', () => b.relu(wrong, [3]));
    assert.throws(() => native().implInfo('nope' as never, {}), /implInfo: unknown kind/);
    for (const s of [x, labels, logits]) b.free(s);
  });

  it('worker threads run the addon side by side, each with its own stream, cache and OpenMP team', async () => {
    // Two workers and the main thread run the same convolution, batch norm and ReLU chain at
    // once, many times (the pool, the primitive cache and the scratchpad under contention);
    // every result must equal the main thread's first one, bit for bit.
    const path = JSON.stringify(new URL('../build/Release/resnet_native.node', import.meta.url).pathname);
    const body = `
      const N = 4, C = 16, H = 20, W = 20, K = 32;
      const g = { N, C, H, W, K, R: 3, S: 3, OH: H, OW: W, strideH: 1, strideW: 1, padH: 1, padW: 1, dilationH: 1, dilationW: 1, groups: 1 };
      const fill = (n, seed) => { const a = new Float32Array(n); let s = seed; for (let i = 0; i < n; i++) { s = (s * 1664525 + 1013904223) >>> 0; a[i] = s / 4294967296 - 0.5; } return a; };
      function chain(a) {
        const x = a.fromArray(fill(N * C * H * W, 1), [N, C, H, W]);
        const w = a.fromArray(fill(K * C * 9, 2), [K, C, 3, 3]);
        const y = a.conv2d(x, w, null, g);
        const r = a.relu(y);
        const out = a.read(r);
        for (const s of [x, w, y, r]) a.free(s);
        return out;
      }`;
    const w = (threads: number) => new Worker(`
      const { parentPort } = require('node:worker_threads');
      const a = require(${path});
      ${body}
      const team = a.setThreads(${threads});
      let first = null, same = true;
      for (let k = 0; k < 30; k++) { const o = chain(a); if (!first) first = o; else if (Buffer.compare(Buffer.from(o.buffer), Buffer.from(first.buffer)) !== 0) same = false; }
      parentPort.postMessage({ team, same, info: a.info(), ftz: a.ftzStatus(), out: first });`, { eval: true });
    const a = native();
    const mainTeam = a.info().threads;
    // eslint-disable-next-line @typescript-eslint/no-implied-eval
    const chain = new Function('a', `${body}; return chain(a);`) as (a: NativeAddon) => Float32Array;
    const want = chain(a);
    const workers = [w(1), w(1)];
    const replies = workers.map((wk) => new Promise<{ team: number; same: boolean; info: { threads: number }; ftz: { ftz: boolean; daz: boolean }[]; out: Float32Array }>((resolve, reject) => {
      wk.once('message', resolve);
      wk.once('error', reject);
    }));
    for (let k = 0; k < 10; k++) assert.deepEqual(chain(a), want, `main thread, run ${k}`);
    for (const [i, r] of (await Promise.all(replies)).entries()) {
      assert.equal(r.team, 1, `worker ${i}: setThreads`);
      assert.equal(r.info.threads, 1, `worker ${i}: its team is its own`);
      assert.ok(r.ftz.length === 1 && r.ftz[0].ftz && r.ftz[0].daz, `worker ${i}: FTZ/DAZ in its team`);
      assert.ok(r.same, `worker ${i}: its 30 runs agree`);
      assert.deepEqual(r.out, want, `worker ${i}: equal to the main thread's`);
    }
    await Promise.all(workers.map((wk) => wk.terminate()));
    assert.equal(a.info().threads, mainTeam, "the workers' setThreads left the main thread's team alone");
    assert.throws(() => a.setThreads(0), /setThreads: 'n' must be an integer from 1 to 4096/);
  });

  it('FTZ/DAZ are on in every OpenMP thread, while JS keeps IEEE subnormals', () => {
    const st = native().ftzStatus();
    assert.ok(st.length >= 1);
    for (const t of st) assert.ok(t.ftz && t.daz, `thread ${t.thread}: ftz=${t.ftz} daz=${t.daz}`);
    const tiny = Number.MIN_VALUE; // a subnormal double
    assert.ok(tiny > 0 && tiny * 2 > tiny, 'the JS thread must not flush subnormals after native calls');
  });
});
