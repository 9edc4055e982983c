// The `native` backend: a thin TypeScript face over the oneDNN addon
// (build/Release/resnet_native.node, sources in native/). It validates nothing about shapes
// (the tensor layer has done that) and turns every native failure into a NativeError naming
// the op. Storages are the addon's NativeStorage objects; their memory may be in any oneDNN
// layout between calls, and is plain row-major whenever it crosses this boundary as data.

import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { NativeError, NativeLoadError } from '../errors.js';
import type {
  AdamwParams, Backend, BackendInfo, Conv2dGeometry, ConvChain, ConvChainSpec, DType, InterpolateGeometry, Pool2dGeometry, Precision, RoiGeometry,
  SgdParams, Shape, Storage,
} from './backend.js';

/** Where a storage's memory is and how it is laid out (tests and debugging). */
export interface NativeStorageInfo {
  readonly dims: number[];
  /** 'bfloat16': a bf16 result standing in for float32 (mixed precision). */
  readonly dtype: 'float32' | 'int32' | 'bfloat16' | 'uint8' | 'other';
  /** oneDNN's tag name of the layout, e.g. "abcd" (plain NCHW) or "aBcd16b" (nChw16c). */
  readonly format: string;
  readonly bytes: number;
}

/** The oneDNN implementation an op would run with, and the layouts it chose. */
export interface NativeImplInfo {
  /** oneDNN's impl_info_str(), e.g. "jit:avx512_core", "brgconv:avx512_core_amx". */
  readonly impl: string;
  readonly [arg: string]: string;
}

/** Kinds accepted by `implInfo`, and their params. */
export type NativeImplKind =
  | 'conv2d' | 'conv2dBackwardData' | 'conv2dBackwardWeights'         // Conv2dGeometry & { withBias?, precision? }
  | 'conv2dFused'                                                      // Conv2dGeometry & { withBias?, residual?, relu?, precision? }
  | 'batchNormTrain' | 'batchNormInfer' | 'batchNormBackward'       // { shape, format?, fuseRelu?, precision? }
  | 'relu' | 'reluBackward' | 'affineScalar'                        // { shape, format?, precision? }
  | 'maxPool2d' | 'maxPool2dBackward' | 'avgPool2d' | 'avgPool2dBackward'; // Pool2dGeometry & { format?, countIncludePad?, precision? }

/** The builds of our own kernels (native/batch_norm.cc), widest first. */
export type KernelSet = 'avx512' | 'avx2' | 'baseline';

export type ConvPass = 'forward' | 'backward_data' | 'backward_weights';

/** The addon's handle of a compiled conv chain (native/chain.cc). */
export interface NativeChain {
  readonly __chain: never;
}

/** The addon's JS API (native/addon.cc lists the same functions). */
export interface NativeAddon {
  info(): { onednn: string; threads: number; isa: string; cachedPrimitives: number; winograd: boolean };
  /** FTZ/DAZ state of the calling thread (inside a native call) and every OpenMP thread. */
  ftzStatus(): { thread: number; ftz: boolean; daz: boolean }[];
  /** The calling JS thread's OpenMP team from now on (each thread that loads the addon has its
   *  own stream, primitive cache and team; RESNET_NUM_THREADS sets it as the thread loads it).
   *  Returns the team's size. */
  setThreads(n: number): number;
  /** Linux thread ids of the threads that run the calling JS thread's kernels: itself, then
   *  the rest of its OpenMP team. */
  threadIds(): number[];
  /** Gives these threads of this process SCHED_IDLE (they run only on cores nothing else
   *  wants); ended ones are skipped. Returns how many were lowered. Linux only. */
  idleThreads(ids: number[]): number;

  fromArray(data: Float32Array | Int32Array, shape: Shape): Storage;
  read(s: Storage): Float32Array | Int32Array;
  full(shape: Shape, dtype: DType, value: number): Storage;
  /** true if released now, false if it had been freed already. */
  free(s: Storage): boolean;
  reshape(s: Storage, to: Shape): Storage;
  live(): { count: number; bytes: number };
  describe(s: Storage): NativeStorageInfo;
  /** The buffer pool keeps freed buffers for reuse (capped by RESNET_POOL_MB). */
  poolStats(): { cachedBytes: number; capBytes: number; hits: number; misses: number; missBytes: number; reportedBytes: number };
  trimPool(): void;
  /** While on, native allocations are not reported to V8; turning it off reports the net change. */
  deferExternalMemory(on: boolean): void;

  // A geometry is an object or (faster) a Float64Array of its fields in declaration order.
  conv2d(x: Storage, w: Storage, b: Storage | null, g: Conv2dGeometry | Float64Array, precision?: Precision): Storage;
  conv2dFused(x: Storage, w: Storage, b: Storage | null, g: Conv2dGeometry | Float64Array, residual: Storage | null,
    relu: boolean, precision?: Precision, consumeResidual?: boolean): Storage;
  conv2dBackwardData(dy: Storage, w: Storage, g: Conv2dGeometry | Float64Array, precision?: Precision): Storage;
  conv2dBackwardWeights(x: Storage, dy: Storage, g: Conv2dGeometry | Float64Array, withBias: boolean,
    precision?: Precision): { dw: Storage; db: Storage | null };
  convChain(spec: ConvChainSpec): NativeChain;
  convChainRun(chain: NativeChain, x: Storage): Storage[];
  convChainFree(chain: NativeChain): void;

  batchNormTrain(x: Storage, gamma: Storage, beta: Storage, eps: number, fuseRelu: boolean):
    { y: Storage; mean: Storage; variance: Storage; saved: Storage | null };
  batchNormInfer(x: Storage, gamma: Storage, beta: Storage, mean: Storage, variance: Storage, eps: number,
    fuseRelu: boolean): Storage;
  batchNormBackward(dy: Storage, x: Storage, gamma: Storage, mean: Storage, variance: Storage,
    saved: Storage | null, eps: number, fuseRelu: boolean): { dx: Storage; dgamma: Storage; dbeta: Storage };

  relu(x: Storage): Storage;
  reluBackward(dy: Storage, y: Storage): Storage;
  add(a: Storage, b: Storage, relu?: boolean): Storage;
  mul(a: Storage, b: Storage): Storage;
  affineScalar(x: Storage, alpha: number, beta: number): Storage;
  axpbyInPlace(y: Storage, x: Storage, alpha: number, beta: number): void;

  maxPool2d(x: Storage, g: Pool2dGeometry | Float64Array): { y: Storage; saved: Storage };
  maxPool2dBackward(dy: Storage, saved: Storage, g: Pool2dGeometry | Float64Array): Storage;
  avgPool2d(x: Storage, g: Pool2dGeometry | Float64Array, countIncludePad: boolean): Storage;
  avgPool2dBackward(dy: Storage, g: Pool2dGeometry | Float64Array, countIncludePad: boolean): Storage;

  linear(x: Storage, w: Storage, b: Storage | null, N: number, I: number, O: number, precision?: Precision): Storage;
  linearBackwardData(dy: Storage, w: Storage, N: number, I: number, O: number, precision?: Precision): Storage;
  linearBackwardWeights(x: Storage, dy: Storage, N: number, I: number, O: number, withBias: boolean, precision?: Precision):
    { dw: Storage; db: Storage | null };

  softmaxCrossEntropy(logits: Storage, labels: Storage, N: number, K: number, smoothing: number):
    { loss: Storage; probs: Storage };
  softmaxCrossEntropyBackward(probs: Storage, labels: Storage, N: number, K: number, smoothing: number,
    dloss: number): Storage;

  sum(x: Storage): Storage;

  // native/detect.cc
  roiAlign(x: Storage, rois: Storage, g: RoiGeometry): Storage;
  roiAlignBackward(dy: Storage, rois: Storage, g: RoiGeometry): Storage;
  roiPool(x: Storage, rois: Storage, g: RoiGeometry): { y: Storage; saved: Storage };
  roiPoolBackward(dy: Storage, rois: Storage, saved: Storage, g: RoiGeometry): Storage;
  interpolate(x: Storage, g: InterpolateGeometry): Storage;
  interpolateBackward(dy: Storage, g: InterpolateGeometry): Storage;
  nms(boxes: Float32Array, scores: Float32Array, iouThreshold: number): Int32Array;

  sgdUpdate(param: Storage, grad: Storage, buf: Storage | null, p: SgdParams): void;
  sgdUpdateMany(params: Storage[], grads: Storage[], bufs: Storage[] | null, p: SgdParams): void;
  adamwUpdate(param: Storage, grad: Storage, expAvg: Storage, expAvgSq: Storage, maxExpAvgSq: Storage | null, p: AdamwParams): void;

  implInfo(kind: NativeImplKind, params: object): NativeImplInfo;
  /** The instruction set our own loops (training batch norm, the SGD step) run with: the
   *  widest the CPU has of 'avx512', 'avx2' (+FMA) and 'baseline' (binding.gyp's x86-64);
   *  pass one to switch (tests of each). The SGD step has no AVX-512 build: it runs its AVX2
   *  one under 'avx512'. */
  kernelIsa(set?: KernelSet): KernelSet;
  /** Bare oneDNN timing of one conv pass: per-iteration milliseconds (bench/ops.ts). */
  benchConv(g: Conv2dGeometry, pass: ConvPass, iters: number, warmup?: number): Float64Array;
  benchRelease(): void;
}

const INSTALL_HINT =
  'To build it: install a C++ toolchain and oneDNN 2.x (Debian/Ubuntu: apt-get install g++ make libdnnl-dev), ' +
  'then `npm rebuild resnet-ts` (in the repository: `npm run build:native`); ' +
  'RESNET_BACKEND=reference chooses the TypeScript backend without this message.';

/** What scripts/build_native.mjs left in build/native_status.json. */
interface BuildStatus { built: boolean; reason?: string; optIn?: string }

function readBuildStatus(root: string): BuildStatus | null {
  try {
    return JSON.parse(readFileSync(join(root, 'build', 'native_status.json'), 'utf8')) as BuildStatus;
  } catch {
    return null;
  }
}

let loaded: NativeAddon | null = null;

/** The package root: the nearest directory above this file holding package.json
 *  (this file runs as src/backend/native.ts under tsx and as dist/backend/native.js). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new NativeLoadError(`native backend: no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

/**
 * libgomp's default wait policy spins at every barrier; where the cores are shared (another
 * job, our own data workers, V8's GC threads) a spinning thread holds the core the thread it
 * waits for needs, and a resnet18 inference measured 7-10x slower than with sleeping waits
 * (README, "Threads"). So unless the user set OMP_WAIT_POLICY or GOMP_SPINCOUNT, waits are
 * passive. libgomp reads its environment when it loads, i.e. with the addon: set it first.
 * Only the main thread's process.env reaches the C environment (a worker thread's is a copy
 * native code never sees), so code that loads the addon in a worker thread (resnet serve's
 * engine) calls this on the main thread before starting it.
 * @example preferPassiveOpenMp(); const w = new Worker(...);  // the worker loads the addon
 */
export function preferPassiveOpenMp(): void {
  if (process.env.OMP_WAIT_POLICY === undefined && process.env.GOMP_SPINCOUNT === undefined) {
    process.env.OMP_WAIT_POLICY = 'PASSIVE';
  }
}

/** Why the addon did not load, in a few words (`resnet info`); null until a load failed. */
let loadFailure: string | null = null;

/** Why the native addon could not be loaded, e.g. "native addon not built: the C++ compiler
 *  'g++' was not found; RESNET_ALLOW_REFERENCE=1", or null if it loaded or was not tried. */
export function nativeLoadFailure(): string | null {
  return loadFailure;
}

/** Loads build/Release/resnet_native.node once, or throws NativeLoadError saying why and how
 *  to get it. */
export function loadNativeAddon(): NativeAddon {
  if (loaded) return loaded;
  const root = packageRoot();
  const path = join(root, 'build', 'Release', 'resnet_native.node');
  if (!existsSync(path)) {
    const status = readBuildStatus(root);
    loadFailure = status && !status.built && status.reason
      ? `native addon not built: ${status.reason}${status.optIn ? `; ${status.optIn}` : ''}`
      : status === null
        // No status at all: our install script never ran. npm 11 runs a dependency's install
        // script only once approved, and --ignore-scripts skips it.
        ? `native addon not built: ${path} is missing and the install script never ran (npm 11 runs it only once approved: \`npm install-scripts approve resnet-ts\`; or the install used --ignore-scripts)`
        : `native addon not built: ${path} is missing`;
    throw new NativeLoadError(`native backend unavailable (${loadFailure}). ${INSTALL_HINT}`);
  }
  preferPassiveOpenMp();
  try {
    loaded = createRequire(import.meta.url)(path) as NativeAddon;
  } catch (cause) {
    const why = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
    loadFailure = `native addon failed to load: ${path}: ${why}`;
    throw new NativeLoadError(`native backend unavailable (${loadFailure}). ${INSTALL_HINT}`, { cause });
  }
  loadFailure = null;
  return loaded;
}

// Geometries cross N-API packed in these (reused) arrays: reading 16 named properties from a
// JS object in C++ cost about as much as the rest of a small conv call. Field order is the
// addon's (native/conv.cc kConvFields, native/pool.cc kPoolFields).
const CONV_PACK = new Float64Array(16);
const POOL_PACK = new Float64Array(12);

function packConv(g: Conv2dGeometry): Float64Array {
  const p = CONV_PACK;
  p[0] = g.N; p[1] = g.C; p[2] = g.H; p[3] = g.W; p[4] = g.K; p[5] = g.R; p[6] = g.S; p[7] = g.OH; p[8] = g.OW;
  p[9] = g.strideH; p[10] = g.strideW; p[11] = g.padH; p[12] = g.padW; p[13] = g.dilationH; p[14] = g.dilationW;
  p[15] = g.groups;
  return p;
}

function packPool(g: Pool2dGeometry): Float64Array {
  const p = POOL_PACK;
  p[0] = g.N; p[1] = g.C; p[2] = g.H; p[3] = g.W; p[4] = g.OH; p[5] = g.OW; p[6] = g.kernelH; p[7] = g.kernelW;
  p[8] = g.strideH; p[9] = g.strideW; p[10] = g.padH; p[11] = g.padW;
  return p;
}

function toNativeError(op: string, e: unknown): NativeError {
  if (e instanceof NativeError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new NativeError(msg.startsWith(`${op}:`) ? msg : `${op}: ${msg}`);
}

/**
 * The oneDNN backend.
 * @example
 * const be = new NativeBackend();
 * const s = be.fromArray(new Float32Array([1, -2]), [2], 'float32');
 * be.read(be.relu(s, [2]), [2], 'float32'); // Float32Array [1, 0]
 */
export class NativeBackend implements Backend {
  readonly name = 'native' as const;
  readonly addon: NativeAddon;

  constructor(addon: NativeAddon = loadNativeAddon()) {
    this.addon = addon;
  }

  private call<T>(op: string, f: () => T): T {
    try {
      return f();
    } catch (e) {
      throw toNativeError(op, e);
    }
  }

  private bf16Impl: string | null | undefined;

  info(): BackendInfo {
    const i = this.call('info', () => this.addon.info());
    if (this.bf16Impl === undefined) {
      // a typical ResNet layer (64 -> 64, 3x3), asked once: which kernel bf16 would get
      const g = { N: 16, C: 64, H: 56, W: 56, K: 64, R: 3, S: 3, OH: 56, OW: 56, strideH: 1, strideW: 1, padH: 1, padW: 1,
        dilationH: 1, dilationW: 1, groups: 1, precision: 'bf16' };
      try {
        this.bf16Impl = i.isa.startsWith('avx512') ? this.addon.implInfo('conv2d', g).impl : null;
      } catch {
        this.bf16Impl = null;  // oneDNN has no bf16 convolution here
      }
    }
    return { backend: 'native', onednn: i.onednn, threads: i.threads, isa: i.isa, bf16ConvImpl: this.bf16Impl, winograd: i.winograd };
  }

  // ---- memory -------------------------------------------------------------------------
  fromArray(data: Float32Array | Int32Array, shape: Shape, dtype: DType): Storage {
    const typed = dtype === 'float32'
      ? (data instanceof Float32Array ? data : Float32Array.from(data))
      : (data instanceof Int32Array ? data : Int32Array.from(data));
    return this.call('fromArray', () => this.addon.fromArray(typed, shape));
  }
  read(s: Storage, _shape: Shape, _dtype: DType): Float32Array | Int32Array {
    return this.call('read', () => this.addon.read(s));
  }
  full(shape: Shape, dtype: DType, value: number): Storage {
    return this.call('full', () => this.addon.full(shape, dtype, value));
  }
  /** NOTE: freeing twice is tolerated (the second call does nothing). */
  free(s: Storage): void {
    this.call('free', () => this.addon.free(s));
  }
  reshape(s: Storage, _from: Shape, to: Shape): Storage {
    return this.call('reshape', () => this.addon.reshape(s, to));
  }
  live(): { count: number; bytes: number } {
    return this.call('live', () => this.addon.live());
  }

  // ---- convolution --------------------------------------------------------------------
  conv2d(x: Storage, w: Storage, b: Storage | null, g: Conv2dGeometry, precision: Precision = 'fp32'): Storage {
    return this.call('conv2d', () => this.addon.conv2d(x, w, b, packConv(g), precision));
  }
  conv2dFused(x: Storage, w: Storage, b: Storage | null, g: Conv2dGeometry, residual: Storage | null, relu: boolean,
    precision: Precision = 'fp32', consumeResidual = false): Storage {
    return this.call('conv2dFused',
      () => this.addon.conv2dFused(x, w, b, packConv(g), residual, relu, precision, consumeResidual));
  }
  convChain(spec: ConvChainSpec): ConvChain {
    const handle = this.call('convChain', () => this.addon.convChain(spec));
    return {
      run: (x) => this.call('convChainRun', () => this.addon.convChainRun(handle, x)),
      free: () => this.call('convChainFree', () => this.addon.convChainFree(handle)),
    };
  }
  conv2dBackwardData(dy: Storage, w: Storage, g: Conv2dGeometry, precision: Precision = 'fp32'): Storage {
    return this.call('conv2dBackwardData', () => this.addon.conv2dBackwardData(dy, w, packConv(g), precision));
  }
  conv2dBackwardWeights(x: Storage, dy: Storage, g: Conv2dGeometry, withBias: boolean, precision: Precision = 'fp32'):
    { dw: Storage; db: Storage | null } {
    return this.call('conv2dBackwardWeights',
      () => this.addon.conv2dBackwardWeights(x, dy, packConv(g), withBias, precision));
  }

  // ---- batch norm -----------------------------------------------------------------------
  batchNormTrain(x: Storage, gamma: Storage, beta: Storage, _shape: Shape, eps: number, fuseRelu: boolean):
    { y: Storage; mean: Storage; variance: Storage; saved: Storage | null } {
    return this.call('batchNormTrain', () => this.addon.batchNormTrain(x, gamma, beta, eps, fuseRelu));
  }
  batchNormInfer(x: Storage, gamma: Storage, beta: Storage, mean: Storage, variance: Storage, _shape: Shape,
    eps: number, fuseRelu: boolean): Storage {
    return this.call('batchNormInfer', () => this.addon.batchNormInfer(x, gamma, beta, mean, variance, eps, fuseRelu));
  }
  batchNormBackward(dy: Storage, x: Storage, gamma: Storage, mean: Storage, variance: Storage,
    saved: Storage | null, _shape: Shape, eps: number, fuseRelu: boolean):
    { dx: Storage; dgamma: Storage; dbeta: Storage } {
    return this.call('batchNormBackward',
      () => this.addon.batchNormBackward(dy, x, gamma, mean, variance, saved, eps, fuseRelu));
  }

  // ---- elementwise ----------------------------------------------------------------------
  relu(x: Storage, _shape: Shape): Storage {
    return this.call('relu', () => this.addon.relu(x));
  }
  reluBackward(dy: Storage, y: Storage, _shape: Shape): Storage {
    return this.call('reluBackward', () => this.addon.reluBackward(dy, y));
  }
  add(a: Storage, b: Storage, _shape: Shape, relu = false): Storage {
    return this.call('add', () => this.addon.add(a, b, relu));
  }
  mul(a: Storage, b: Storage, _shape: Shape): Storage {
    return this.call('mul', () => this.addon.mul(a, b));
  }
  affineScalar(x: Storage, _shape: Shape, alpha: number, beta: number): Storage {
    return this.call('affineScalar', () => this.addon.affineScalar(x, alpha, beta));
  }
  axpbyInPlace(y: Storage, x: Storage, _shape: Shape, alpha: number, beta: number): void {
    this.call('axpbyInPlace', () => this.addon.axpbyInPlace(y, x, alpha, beta));
  }

  // ---- pooling ------------------------------------------------------------------------
  maxPool2d(x: Storage, g: Pool2dGeometry): { y: Storage; saved: Storage } {
    return this.call('maxPool2d', () => this.addon.maxPool2d(x, packPool(g)));
  }
  maxPool2dBackward(dy: Storage, saved: Storage, g: Pool2dGeometry): Storage {
    return this.call('maxPool2dBackward', () => this.addon.maxPool2dBackward(dy, saved, packPool(g)));
  }
  avgPool2d(x: Storage, g: Pool2dGeometry, countIncludePad: boolean): Storage {
    return this.call('avgPool2d', () => this.addon.avgPool2d(x, packPool(g), countIncludePad));
  }
  avgPool2dBackward(dy: Storage, g: Pool2dGeometry, countIncludePad: boolean): Storage {
    return this.call('avgPool2dBackward', () => this.addon.avgPool2dBackward(dy, packPool(g), countIncludePad));
  }

  // ---- linear ---------------------------------------------------------------------------
  linear(x: Storage, w: Storage, b: Storage | null, N: number, I: number, O: number, precision: Precision = 'fp32'): Storage {
    return this.call('linear', () => this.addon.linear(x, w, b, N, I, O, precision));
  }
  linearBackwardData(dy: Storage, w: Storage, N: number, I: number, O: number, precision: Precision = 'fp32'): Storage {
    return this.call('linearBackwardData', () => this.addon.linearBackwardData(dy, w, N, I, O, precision));
  }
  linearBackwardWeights(x: Storage, dy: Storage, N: number, I: number, O: number, withBias: boolean, precision: Precision = 'fp32'):
    { dw: Storage; db: Storage | null } {
    return this.call('linearBackwardWeights', () => this.addon.linearBackwardWeights(x, dy, N, I, O, withBias, precision));
  }

  // ---- loss -----------------------------------------------------------------------------
  softmaxCrossEntropy(logits: Storage, labels: Storage, N: number, K: number, smoothing: number):
    { loss: Storage; probs: Storage } {
    return this.call('softmaxCrossEntropy', () => this.addon.softmaxCrossEntropy(logits, labels, N, K, smoothing));
  }
  softmaxCrossEntropyBackward(probs: Storage, labels: Storage, N: number, K: number, smoothing: number,
    dloss: number): Storage {
    return this.call('softmaxCrossEntropyBackward',
      () => this.addon.softmaxCrossEntropyBackward(probs, labels, N, K, smoothing, dloss));
  }

  // ---- detection ------------------------------------------------------------------------
  roiAlign(x: Storage, rois: Storage, g: RoiGeometry): Storage {
    return this.call('roiAlign', () => this.addon.roiAlign(x, rois, g));
  }
  roiAlignBackward(dy: Storage, rois: Storage, g: RoiGeometry): Storage {
    return this.call('roiAlignBackward', () => this.addon.roiAlignBackward(dy, rois, g));
  }
  roiPool(x: Storage, rois: Storage, g: RoiGeometry): { y: Storage; saved: Storage } {
    return this.call('roiPool', () => this.addon.roiPool(x, rois, g));
  }
  roiPoolBackward(dy: Storage, rois: Storage, saved: Storage, g: RoiGeometry): Storage {
    return this.call('roiPoolBackward', () => this.addon.roiPoolBackward(dy, rois, saved, g));
  }
  interpolate(x: Storage, g: InterpolateGeometry): Storage {
    return this.call('interpolate', () => this.addon.interpolate(x, g));
  }
  interpolateBackward(dy: Storage, g: InterpolateGeometry): Storage {
    return this.call('interpolateBackward', () => this.addon.interpolateBackward(dy, g));
  }
  nms(boxes: Float32Array, scores: Float32Array, iouThreshold: number): Int32Array {
    return this.call('nms', () => this.addon.nms(boxes, scores, iouThreshold));
  }

  // ---- reductions and optimiser -----------------------------------------------------------
  sum(x: Storage, _shape: Shape): Storage {
    return this.call('sum', () => this.addon.sum(x));
  }
  sgdUpdate(param: Storage, grad: Storage, buf: Storage | null, _shape: Shape, p: SgdParams): void {
    this.call('sgdUpdate', () => this.addon.sgdUpdate(param, grad, buf, p));
  }
  sgdUpdateMany(params: Storage[], grads: Storage[], bufs: Storage[] | null, _shapes: Shape[], p: SgdParams): void {
    this.call('sgdUpdateMany', () => this.addon.sgdUpdateMany(params, grads, bufs, p));
  }
  adamwUpdate(param: Storage, grad: Storage, expAvg: Storage, expAvgSq: Storage, maxExpAvgSq: Storage | null,
    _shape: Shape, p: AdamwParams): void {
    this.call('adamwUpdate', () => this.addon.adamwUpdate(param, grad, expAvg, expAvgSq, maxExpAvgSq, p));
  }
}
