// The Backend contract: the small set of kernels every backend implements.
// A backend owns storage (opaque to everyone above it) and computes; it never validates
// shapes (the tensor layer has done that, and resolved every output size, before a call)
// and knows nothing of autograd. Public data crossing this boundary is always plain
// row-major (NCHW for 4-D); a backend may keep storage in an internal layout between calls.

/** @example const t: DType = tensor([1, 2], [2], { dtype: 'int32' }).dtype; */
export type DType = 'float32' | 'int32';

/** A convolution's compute precision. 'bf16' is mixed precision (Kalamkar et al. 2019): its
 *  inputs are rounded to bfloat16 (round to nearest even) and its output is bfloat16, summed
 *  in float32 (native) or float64 (reference); weight and bias gradients stay float32. A
 *  backend may keep a bf16 result in bf16 storage: the tensor above still says float32 and
 *  reads back as float32.
 * @example
 * const p: Precision = 'bf16';
 * const logits = autocast(p, () => model.forward(x));
 */
export type Precision = 'fp32' | 'bf16';
/** @example const s: Shape = x.shape;  // readonly [N, C, H, W] */
export type Shape = readonly number[];
export type TypedArrayFor<D extends DType> = D extends 'float32' ? Float32Array : Int32Array;

/**
 * Opaque handle to backend-owned memory. Only the backend that made it may use it.
 * @example const s: Storage = x.storage;  // opaque: owned by x.backend
 */
export interface Storage {
  readonly __storage: never;
}

/** Conv geometry, fully resolved above the backends (see tensor/geometry.ts).
 *  x: [N, C, H, W], w: [K, C/groups, R, S], y: [N, K, OH, OW].
 * @example const { OH, OW }: Conv2dGeometry = conv2dGeometry([1, 3, 224, 224], [64, 3, 7, 7], null, { stride: 2, padding: 3 });  // 112, 112
 */
export interface Conv2dGeometry {
  readonly N: number; readonly C: number; readonly H: number; readonly W: number;
  readonly K: number; readonly R: number; readonly S: number;
  readonly OH: number; readonly OW: number;
  readonly strideH: number; readonly strideW: number;
  readonly padH: number; readonly padW: number;
  readonly dilationH: number; readonly dilationW: number;
  readonly groups: number;
}

/**
 * Pool geometry, symmetric padding, floor mode. x: [N, C, H, W], y: [N, C, OH, OW].
 * @example const { OH }: Pool2dGeometry = pool2dGeometry('maxPool2d', [1, 64, 112, 112], { kernelSize: 3, stride: 2, padding: 1 });  // 56
 */
export interface Pool2dGeometry {
  readonly N: number; readonly C: number; readonly H: number; readonly W: number;
  readonly OH: number; readonly OW: number;
  readonly kernelH: number; readonly kernelW: number;
  readonly strideH: number; readonly strideW: number;
  readonly padH: number; readonly padW: number;
}

/** RoIAlign / RoIPool geometry, resolved by src/detect/ops. x: [N, C, H, W], rois: [K, 5]
 *  float32 rows (batchIndex, x1, y1, x2, y2) with every batch index already checked to be in
 *  [0, N), y: [K, C, OH, OW]. roiPool ignores samplingRatio and aligned.
 * @example const g: RoiGeometry = { N: 1, C: 256, H: 50, W: 68, K: 512, OH: 7, OW: 7, spatialScale: 0.25, samplingRatio: 2, aligned: false };
 */
export interface RoiGeometry {
  readonly N: number; readonly C: number; readonly H: number; readonly W: number;
  readonly K: number; readonly OH: number; readonly OW: number;
  readonly spatialScale: number;
  /** Sampling points per bin side; <= 0 is adaptive (ceil(roi size / output size)). */
  readonly samplingRatio: number;
  /** torchvision's aligned=True: pixel centres shift by -0.5. */
  readonly aligned: boolean;
}

/** Resize geometry (torch.nn.functional.interpolate on [N, C, H, W] -> [N, C, OH, OW]).
 *  scaleH / scaleW are the user's scale factors when they reach ATen (scale_factor given and
 *  recompute_scale_factor not set), else null (ATen then uses H / OH).
 * @example const g: InterpolateGeometry = { N: 1, C: 3, H: 10, W: 10, OH: 20, OW: 20, mode: 'bilinear', alignCorners: false, scaleH: null, scaleW: null };
 */
export interface InterpolateGeometry {
  readonly N: number; readonly C: number; readonly H: number; readonly W: number;
  readonly OH: number; readonly OW: number;
  readonly mode: 'nearest' | 'bilinear';
  readonly alignCorners: boolean;
  readonly scaleH: number | null;
  readonly scaleW: number | null;
}

/** PyTorch's torch.optim.SGD semantics (the update happens in place on param and buffer):
 *  d = g + weightDecay * p
 *  buf = initBuffer ? d : momentum * buf + (1 - dampening) * d
 *  d = nesterov ? d + momentum * buf : buf        (when momentum != 0)
 *  p = p - lr * d
 * @example const p: SgdParams = { lr: 0.1, momentum: 0.9, dampening: 0, weightDecay: 1e-4, nesterov: false, initBuffer: true };
 */
export interface SgdParams {
  readonly lr: number;
  readonly momentum: number;
  readonly dampening: number;
  readonly weightDecay: number;
  readonly nesterov: boolean;
  /** First step for this buffer: PyTorch sets buf = d instead of the momentum update. */
  readonly initBuffer: boolean;
}

/** PyTorch 1.13's torch.optim.AdamW (`_single_tensor_adamw`), in place on param and moments,
 *  every operation in float32, in torch's order; t = `step` (already counted, >= 1):
 *  p = p * (1 - lr * weightDecay)                       (decoupled weight decay, first)
 *  m = m * beta1;  m = m + (1 - beta1) * g
 *  v = v * beta2;  v = v + (1 - beta2) * g * g
 *  vmax = max(vmax, v)                                  (amsgrad: the denominator reads vmax)
 *  denom = sqrt(v) / sqrt(1 - beta2^t) + eps
 *  p = p + (-lr / (1 - beta1^t)) * m / denom
 *  The scalars in brackets are computed in float64 and rounded to float32 once, as PyTorch
 *  does with the Python floats it passes to the tensor ops.
 *  @example const p: AdamwParams = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 1e-2, step: 1, amsgrad: false }; */
export interface AdamwParams {
  readonly lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  /** This parameter's step count including the step being taken (1 on the first). */
  readonly step: number;
  readonly amsgrad: boolean;
}

/** @example const { backend, onednn, threads, isa }: BackendInfo = getBackend().info(); */
export interface BackendInfo {
  readonly backend: 'reference' | 'native';
  /** oneDNN version "2.6.3", or null for a backend without it. */
  readonly onednn: string | null;
  readonly threads: number;
  /** The ISA oneDNN dispatches to (e.g. "avx512_core_amx"), or "none". */
  readonly isa: string;
  /** The implementation a bf16 3x3 convolution gets here (e.g. "brgconv:avx512_core_amx"),
   *  or null where bf16 cannot run (no AVX-512) or the backend has no such notion. */
  readonly bf16ConvImpl?: string | null;
  /** Whether fp32 runs 3x3 stride-1 convolutions with Winograd (inference: all; training:
   *  those of >= 64 channels in and out). oneDNN has it on AVX-512; RESNET_WINOGRAD=0 turns it off. */
  readonly winograd?: boolean;
}

/** One node of a ConvChain: a conv2dFused (bias, residual and ReLU as its post-ops) or a max
 *  pool (floor mode). `src` and `residual` name an earlier node by index, or -1: the chain's
 *  input; no `residual`, nothing is added.
 * @example const n: ConvChainNode = { op: 'maxpool', src: 0, R: 3, S: 3, strideH: 2, strideW: 2, padH: 1, padW: 1 };
 */
export type ConvChainNode =
  | { op: 'conv'; src: number; residual?: number; relu: boolean; weight: Storage; bias: Storage | null;
    K: number; R: number; S: number; strideH: number; strideW: number; padH: number; padW: number;
    dilationH: number; dilationW: number; groups: number }
  | { op: 'maxpool'; src: number; R: number; S: number; strideH: number; strideW: number; padH: number; padW: number };

/** @example const spec: ConvChainSpec = { nodes, outputs: [nodes.length - 1], inChannels: 3, precision: 'fp32' }; */
export interface ConvChainSpec {
  nodes: ConvChainNode[];
  /** The nodes whose outputs run() returns, in this order. */
  outputs: number[];
  /** C of the input [N, C, H, W]. */
  inChannels: number;
  precision: Precision;
}

/** A compiled ConvChain: the weights are the spec's storages (free the chain before them).
 * @example const [y] = chain.run(x.storage); chain.free(); */
export interface ConvChain {
  /** The outputs' storages for input x ([N, inChannels, H, W]). */
  run(x: Storage): Storage[];
  free(): void;
}

/**
 * @example
 * const be: Backend = getBackend();
 * console.log(be.name, be.info().isa);
 */
export interface Backend {
  readonly name: 'reference' | 'native';
  info(): BackendInfo;

  // ---- memory -------------------------------------------------------------------------
  /** Copies `data` (plain row-major) into new storage. */
  fromArray(data: Float32Array | Int32Array, shape: Shape, dtype: DType): Storage;
  /** A plain row-major copy of the storage's contents. */
  read(s: Storage, shape: Shape, dtype: DType): Float32Array | Int32Array;
  /** New storage filled with `value`. */
  full(shape: Shape, dtype: DType, value: number): Storage;
  /** Releases the memory now. Calling it twice is a bug the backend may report. */
  free(s: Storage): void;
  /** A new storage with the same elements in plain row-major order, viewed as `to`. */
  reshape(s: Storage, from: Shape, to: Shape): Storage;
  /** Number of storages allocated and not yet freed, and their bytes. */
  live(): { count: number; bytes: number };

  // ---- convolution (x: [N, C, H, W], w: [K, C/groups, R, S], b: [K]) ---------------------
  // `precision` defaults to 'fp32'.
  conv2d(x: Storage, w: Storage, b: Storage | null, g: Conv2dGeometry, precision?: Precision): Storage;
  conv2dBackwardData(dy: Storage, w: Storage, g: Conv2dGeometry, precision?: Precision): Storage;
  conv2dBackwardWeights(x: Storage, dy: Storage, g: Conv2dGeometry, withBias: boolean, precision?: Precision):
    { dw: Storage; db: Storage | null };
  /** Inference only: y = conv(x, w) + b, plus `residual` ([N, K, OH, OW]) if given, then
   *  ReLU if `relu`; one pass (native: oneDNN sum and eltwise post-ops). No backward. With
   *  `consumeResidual` a backend may write y into the residual's memory (the residual storage
   *  is then freed, whoever else held it). */
  conv2dFused(x: Storage, w: Storage, b: Storage | null, g: Conv2dGeometry, residual: Storage | null, relu: boolean,
    precision?: Precision, consumeResidual?: boolean): Storage;
  /** Optional: a chain of conv2dFused and max pool ops compiled to run as one call (native: one
   *  crossing per run, intermediates in an arena of the chain's own). Where absent, the caller
   *  runs the ops one by one (the same results). */
  convChain?(spec: ConvChainSpec): ConvChain;

  // ---- batch norm (x: [N, C, H, W], gamma/beta/mean/variance: [C]) -----------------------
  /** Training mode: batch statistics (biased variance). `saved` is whatever the backward
   *  needs beyond x, mean and variance (oneDNN's workspace), or null. With fuseRelu,
   *  y = relu(bn(x)). */
  batchNormTrain(x: Storage, gamma: Storage, beta: Storage, shape: Shape, eps: number, fuseRelu: boolean):
    { y: Storage; mean: Storage; variance: Storage; saved: Storage | null };
  batchNormInfer(x: Storage, gamma: Storage, beta: Storage, mean: Storage, variance: Storage, shape: Shape,
    eps: number, fuseRelu: boolean): Storage;
  batchNormBackward(dy: Storage, x: Storage, gamma: Storage, mean: Storage, variance: Storage, saved: Storage | null,
    shape: Shape, eps: number, fuseRelu: boolean): { dx: Storage; dgamma: Storage; dbeta: Storage };

  // ---- elementwise (same shapes; `shape` given so a backend can build descriptors) --------
  relu(x: Storage, shape: Shape): Storage;
  /** dx = dy where y > 0, else 0 (y is relu's output). */
  reluBackward(dy: Storage, y: Storage, shape: Shape): Storage;
  /** a + b, or relu(a + b) with `relu` (a residual block's end, one pass). */
  add(a: Storage, b: Storage, shape: Shape, relu?: boolean): Storage;
  mul(a: Storage, b: Storage, shape: Shape): Storage;
  /** y = alpha * x + beta */
  affineScalar(x: Storage, shape: Shape, alpha: number, beta: number): Storage;
  /** In place: y = alpha * y + beta * x (gradient accumulation, running statistics). */
  axpbyInPlace(y: Storage, x: Storage, shape: Shape, alpha: number, beta: number): void;

  // ---- pooling ----------------------------------------------------------------------------
  /** `saved` is what the backward needs (argmax indices or oneDNN's workspace). */
  maxPool2d(x: Storage, g: Pool2dGeometry): { y: Storage; saved: Storage };
  maxPool2dBackward(dy: Storage, saved: Storage, g: Pool2dGeometry): Storage;
  /** countIncludePad as PyTorch's AvgPool2d(count_include_pad=...). */
  avgPool2d(x: Storage, g: Pool2dGeometry, countIncludePad: boolean): Storage;
  avgPool2dBackward(dy: Storage, g: Pool2dGeometry, countIncludePad: boolean): Storage;

  // ---- linear (x: [N, I], w: [O, I], b: [O], y: [N, O]) ---------------------------------
  //      precision bf16: x, w and dy enter rounded to bf16, sums in f32 (or wider), outputs f32.
  linear(x: Storage, w: Storage, b: Storage | null, N: number, I: number, O: number, precision?: Precision): Storage;
  linearBackwardData(dy: Storage, w: Storage, N: number, I: number, O: number, precision?: Precision): Storage;
  linearBackwardWeights(x: Storage, dy: Storage, N: number, I: number, O: number, withBias: boolean, precision?: Precision):
    { dw: Storage; db: Storage | null };

  // ---- loss (logits: [N, K] float32, labels: [N] int32) -----------------------------------
  /** Mean softmax cross-entropy with label smoothing (PyTorch's CrossEntropyLoss:
   *  target = (1 - s) * onehot + s / K). `loss` is a scalar (shape []), `probs` [N, K]. */
  softmaxCrossEntropy(logits: Storage, labels: Storage, N: number, K: number, smoothing: number):
    { loss: Storage; probs: Storage };
  /** dlogits = dloss * (probs - target) / N */
  softmaxCrossEntropyBackward(probs: Storage, labels: Storage, N: number, K: number, smoothing: number,
    dloss: number): Storage;

  // ---- reductions ---------------------------------------------------------------------
  /** Sum of all elements (float64 accumulation where the backend can), as a scalar storage. */
  sum(x: Storage, shape: Shape): Storage;

  // ---- detection (torchvision.ops, F.interpolate; geometry resolved in src/detect/ops) ------
  /** torchvision roi_align: y [K, C, OH, OW] from x [N, C, H, W] and rois [K, 5]. */
  roiAlign(x: Storage, rois: Storage, g: RoiGeometry): Storage;
  /** dx [N, C, H, W] from dy [K, C, OH, OW] (same rois and geometry). */
  roiAlignBackward(dy: Storage, rois: Storage, g: RoiGeometry): Storage;
  /** torchvision roi_pool: y [K, C, OH, OW]; `saved` is the int32 argmax (index into the H * W
   *  plane, -1 for an empty bin). */
  roiPool(x: Storage, rois: Storage, g: RoiGeometry): { y: Storage; saved: Storage };
  roiPoolBackward(dy: Storage, rois: Storage, saved: Storage, g: RoiGeometry): Storage;
  /** y [N, C, OH, OW] as ATen's upsample_nearest2d / upsample_bilinear2d. */
  interpolate(x: Storage, g: InterpolateGeometry): Storage;
  /** dx [N, C, H, W] from dy [N, C, OH, OW]. */
  interpolateBackward(dy: Storage, g: InterpolateGeometry): Storage;
  /** torchvision.ops.nms on host arrays: the indices of `boxes` ([n * 4], x1 y1 x2 y2) kept,
   *  by decreasing score (ties in index order, NaN scores last). */
  nms(boxes: Float32Array, scores: Float32Array, iouThreshold: number): Int32Array;

  // ---- optimiser ----------------------------------------------------------------------
  /** Fused SGD step, in place on `param` and `buf` (buf is null when momentum == 0). */
  sgdUpdate(param: Storage, grad: Storage, buf: Storage | null, shape: Shape, p: SgdParams): void;
  /** The same SGD step of many parameters in one call (PyTorch's multi-tensor `foreach` SGD):
   *  `bufs` is null when momentum == 0, else one per parameter; each param, grad and buf of
   *  `shapes[i]`. */
  sgdUpdateMany(params: Storage[], grads: Storage[], bufs: Storage[] | null, shapes: Shape[], p: SgdParams): void;
  /** Fused AdamW step, in place on `param`, `expAvg`, `expAvgSq` and `maxExpAvgSq` (null
   *  unless amsgrad). All five have `shape`; the moments start as zeros. */
  adamwUpdate(param: Storage, grad: Storage, expAvg: Storage, expAvgSq: Storage, maxExpAvgSq: Storage | null,
    shape: Shape, p: AdamwParams): void;
}

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
