// The reference backend: the pure kernels of this folder over float32 (and int32) storage.
// Slow, obvious and correct; the judge the native backend is tested against. It validates
// nothing about shapes (the tensor layer has) but does catch its own lifetime bugs: a freed
// storage throws DisposedError when used or freed again. Storage is plain row-major always.
// NOTE: with fuseRelu, batchNormTrain's `saved` is a copy of beta: batchNormBackward is not
// given beta and needs it to recompute the ReLU mask.

import type {
  AdamwParams, Backend, BackendInfo, Conv2dGeometry, DType, InterpolateGeometry, Pool2dGeometry, Precision, RoiGeometry,
  SgdParams, Shape, Storage,
} from '../backend.js';
import { numel } from '../backend.js';
import { DisposedError, DTypeError, InvalidArgumentError } from '../../errors.js';
import { batchNormBackward, batchNormInfer, batchNormTrain } from './batch_norm.js';
import { atPrecision } from './bf16.js';
import { conv2d, conv2dBackwardData, conv2dBackwardWeights } from './conv.js';
import { interpolate, interpolateBackward, roiAlign, roiAlignBackward, roiPool, roiPoolBackward } from './detect.js';
import { add, affineScalar, axpbyInPlace, mul, relu, reluBackward } from './eltwise.js';
import { nms } from './nms.js';
import { linear, linearBackwardData, linearBackwardWeights } from './linear.js';
import { softmaxCrossEntropy, softmaxCrossEntropyBackward } from './loss.js';
import { avgPool2d, avgPool2dBackward, maxPool2d, maxPool2dBackward } from './pool.js';
import { sum } from './reduce.js';
import { adamwUpdate } from './adamw.js';
import { sgdUpdate } from './sgd.js';

/** What a reference Storage handle really is. `data` is null once freed. */
class RefStorage {
  data: Float32Array | Int32Array | null;
  constructor(data: Float32Array | Int32Array) { this.data = data; }
}

export class ReferenceBackend implements Backend {
  readonly name = 'reference' as const;
  private liveCount = 0;
  private liveBytes = 0;

  info(): BackendInfo {
    return { backend: 'reference', onednn: null, threads: 1, isa: 'none' };
  }

  // ---- memory -------------------------------------------------------------------------

  private wrap(data: Float32Array | Int32Array): Storage {
    this.liveCount++;
    this.liveBytes += data.byteLength;
    return new RefStorage(data) as unknown as Storage;
  }

  private data(s: Storage, op: string): Float32Array | Int32Array {
    if (!(s instanceof RefStorage)) {
      throw new InvalidArgumentError(`reference.${op}: storage was not made by the reference backend`);
    }
    if (s.data === null) throw new DisposedError(`reference.${op}: storage used after free()`);
    return s.data;
  }

  private f32(s: Storage, op: string): Float32Array {
    const d = this.data(s, op);
    if (!(d instanceof Float32Array)) throw new DTypeError(`reference.${op}: expected float32 storage, got int32`);
    return d;
  }

  private i32(s: Storage, op: string): Int32Array {
    const d = this.data(s, op);
    if (!(d instanceof Int32Array)) throw new DTypeError(`reference.${op}: expected int32 storage, got float32`);
    return d;
  }

  /** Kernels given float32 inputs return float32; this narrows their FloatArray result. */
  private out(a: Float32Array | Float64Array): Storage {
    return this.wrap(a instanceof Float32Array ? a : Float32Array.from(a));
  }

  fromArray(data: Float32Array | Int32Array, _shape: Shape, dtype: DType): Storage {
    return this.wrap(dtype === 'float32' ? Float32Array.from(data) : Int32Array.from(data));
  }

  read(s: Storage, _shape: Shape, dtype: DType): Float32Array | Int32Array {
    return dtype === 'float32' ? this.f32(s, 'read').slice() : this.i32(s, 'read').slice();
  }

  full(shape: Shape, dtype: DType, value: number): Storage {
    const n = numel(shape);
    return this.wrap(dtype === 'float32' ? new Float32Array(n).fill(value) : new Int32Array(n).fill(value));
  }

  free(s: Storage): void {
    if (s instanceof RefStorage && s.data === null) throw new DisposedError('reference.free: storage freed twice');
    const d = this.data(s, 'free');
    this.liveCount--;
    this.liveBytes -= d.byteLength;
    (s as unknown as RefStorage).data = null;
  }

  reshape(s: Storage, _from: Shape, _to: Shape): Storage {
    return this.wrap(this.data(s, 'reshape').slice());
  }

  live(): { count: number; bytes: number } {
    return { count: this.liveCount, bytes: this.liveBytes };
  }

  // ---- convolution ----------------------------------------------------------------------

  // bf16 (the judge of native bf16): inputs rounded to bf16, sums in float64, the output
  // rounded to bf16 as native's bf16 storage holds it; weight gradients stay float32.
  conv2d(x: Storage, w: Storage, b: Storage | null, g: Conv2dGeometry, precision: Precision = 'fp32'): Storage {
    const op = 'conv2d';
    const at = atPrecision(precision);
    return this.out(at.out(conv2d(at.in(this.f32(x, op)), at.in(this.f32(w, op)), b ? this.f32(b, op) : null, g)));
  }

  conv2dFused(x: Storage, w: Storage, b: Storage | null, g: Conv2dGeometry, residual: Storage | null, fuseRelu: boolean,
    precision: Precision = 'fp32'): Storage {
    const op = 'conv2dFused';
    const at = atPrecision(precision);
    let y = conv2d(at.in(this.f32(x, op)), at.in(this.f32(w, op)), b ? this.f32(b, op) : null, g);
    if (residual) {
      const r = at.in(this.f32(residual, op)); // native adds it from the bf16 output buffer
      if (r.length !== y.length) throw new InvalidArgumentError(`reference.${op}: residual has ${r.length} elements, the output ${y.length}`);
      y = add(y, r);
    }
    return this.out(at.out(fuseRelu ? relu(y) : y));
  }

  conv2dBackwardData(dy: Storage, w: Storage, g: Conv2dGeometry, precision: Precision = 'fp32'): Storage {
    const op = 'conv2dBackwardData';
    const at = atPrecision(precision);
    return this.out(at.out(conv2dBackwardData(at.in(this.f32(dy, op)), at.in(this.f32(w, op)), g)));
  }

  conv2dBackwardWeights(x: Storage, dy: Storage, g: Conv2dGeometry, withBias: boolean, precision: Precision = 'fp32'):
    { dw: Storage; db: Storage | null } {
    const op = 'conv2dBackwardWeights';
    const at = atPrecision(precision);
    const { dw, db } = conv2dBackwardWeights(at.in(this.f32(x, op)), at.in(this.f32(dy, op)), g, withBias);
    return { dw: this.out(dw), db: db ? this.out(db) : null };
  }

  // ---- batch norm -----------------------------------------------------------------------

  batchNormTrain(x: Storage, gamma: Storage, beta: Storage, shape: Shape, eps: number, fuseRelu: boolean):
    { y: Storage; mean: Storage; variance: Storage; saved: Storage | null } {
    const op = 'batchNormTrain';
    const betaData = this.f32(beta, op);
    const r = batchNormTrain(this.f32(x, op), this.f32(gamma, op), betaData, shape, eps, fuseRelu);
    return {
      y: this.out(r.y), mean: this.out(r.mean), variance: this.out(r.variance),
      saved: fuseRelu ? this.wrap(betaData.slice()) : null,
    };
  }

  batchNormInfer(x: Storage, gamma: Storage, beta: Storage, mean: Storage, variance: Storage, shape: Shape,
    eps: number, fuseRelu: boolean): Storage {
    const op = 'batchNormInfer';
    return this.out(batchNormInfer(this.f32(x, op), this.f32(gamma, op), this.f32(beta, op), this.f32(mean, op),
      this.f32(variance, op), shape, eps, fuseRelu));
  }

  batchNormBackward(dy: Storage, x: Storage, gamma: Storage, mean: Storage, variance: Storage,
    saved: Storage | null, shape: Shape, eps: number, fuseRelu: boolean):
    { dx: Storage; dgamma: Storage; dbeta: Storage } {
    const op = 'batchNormBackward';
    if (fuseRelu && saved === null) {
      throw new InvalidArgumentError(`reference.${op}: fuseRelu needs the 'saved' storage from batchNormTrain, got null`);
    }
    const beta = fuseRelu && saved ? this.f32(saved, op) : null;
    const r = batchNormBackward(this.f32(dy, op), this.f32(x, op), this.f32(gamma, op), beta, this.f32(mean, op),
      this.f32(variance, op), shape, eps, fuseRelu);
    return { dx: this.out(r.dx), dgamma: this.out(r.dgamma), dbeta: this.out(r.dbeta) };
  }

  // ---- elementwise ----------------------------------------------------------------------

  relu(x: Storage, _shape: Shape): Storage {
    return this.out(relu(this.f32(x, 'relu')));
  }

  reluBackward(dy: Storage, y: Storage, _shape: Shape): Storage {
    return this.out(reluBackward(this.f32(dy, 'reluBackward'), this.f32(y, 'reluBackward')));
  }

  add(a: Storage, b: Storage, _shape: Shape, fuseRelu = false): Storage {
    const y = add(this.f32(a, 'add'), this.f32(b, 'add'));
    return this.out(fuseRelu ? relu(y) : y);
  }

  mul(a: Storage, b: Storage, _shape: Shape): Storage {
    return this.out(mul(this.f32(a, 'mul'), this.f32(b, 'mul')));
  }

  affineScalar(x: Storage, _shape: Shape, alpha: number, beta: number): Storage {
    return this.out(affineScalar(this.f32(x, 'affineScalar'), alpha, beta));
  }

  axpbyInPlace(y: Storage, x: Storage, _shape: Shape, alpha: number, beta: number): void {
    axpbyInPlace(this.f32(y, 'axpbyInPlace'), this.f32(x, 'axpbyInPlace'), alpha, beta);
  }

  // ---- pooling ----------------------------------------------------------------------------

  maxPool2d(x: Storage, g: Pool2dGeometry): { y: Storage; saved: Storage } {
    const { y, argmax } = maxPool2d(this.f32(x, 'maxPool2d'), g);
    return { y: this.out(y), saved: this.wrap(argmax) };
  }

  maxPool2dBackward(dy: Storage, saved: Storage, g: Pool2dGeometry): Storage {
    const op = 'maxPool2dBackward';
    return this.out(maxPool2dBackward(this.f32(dy, op), this.i32(saved, op), g));
  }

  avgPool2d(x: Storage, g: Pool2dGeometry, countIncludePad: boolean): Storage {
    return this.out(avgPool2d(this.f32(x, 'avgPool2d'), g, countIncludePad));
  }

  avgPool2dBackward(dy: Storage, g: Pool2dGeometry, countIncludePad: boolean): Storage {
    return this.out(avgPool2dBackward(this.f32(dy, 'avgPool2dBackward'), g, countIncludePad));
  }

  // ---- linear -----------------------------------------------------------------------------

  // bf16: the inputs rounded to bf16, the outputs float32 (as native's).
  linear(x: Storage, w: Storage, b: Storage | null, N: number, I: number, O: number, precision: Precision = 'fp32'): Storage {
    const at = atPrecision(precision);
    return this.out(linear(at.in(this.f32(x, 'linear')), at.in(this.f32(w, 'linear')), b ? this.f32(b, 'linear') : null, N, I, O));
  }

  linearBackwardData(dy: Storage, w: Storage, N: number, I: number, O: number, precision: Precision = 'fp32'): Storage {
    const op = 'linearBackwardData';
    const at = atPrecision(precision);
    return this.out(linearBackwardData(at.in(this.f32(dy, op)), at.in(this.f32(w, op)), N, I, O));
  }

  linearBackwardWeights(x: Storage, dy: Storage, N: number, I: number, O: number, withBias: boolean, precision: Precision = 'fp32'):
    { dw: Storage; db: Storage | null } {
    const op = 'linearBackwardWeights';
    const at = atPrecision(precision);
    const { dw, db } = linearBackwardWeights(at.in(this.f32(x, op)), at.in(this.f32(dy, op)), N, I, O, withBias);
    return { dw: this.out(dw), db: db ? this.out(db) : null };
  }

  // ---- loss -------------------------------------------------------------------------------

  softmaxCrossEntropy(logits: Storage, labels: Storage, N: number, K: number, smoothing: number):
    { loss: Storage; probs: Storage } {
    const op = 'softmaxCrossEntropy';
    const { loss, probs } = softmaxCrossEntropy(this.f32(logits, op), this.i32(labels, op), N, K, smoothing);
    return { loss: this.out(loss), probs: this.out(probs) };
  }

  softmaxCrossEntropyBackward(probs: Storage, labels: Storage, N: number, K: number, smoothing: number,
    dloss: number): Storage {
    const op = 'softmaxCrossEntropyBackward';
    return this.out(softmaxCrossEntropyBackward(this.f32(probs, op), this.i32(labels, op), N, K, smoothing, dloss));
  }

  // ---- reductions -------------------------------------------------------------------------

  sum(x: Storage, _shape: Shape): Storage {
    return this.out(sum(this.f32(x, 'sum')));
  }

  // ---- detection ----------------------------------------------------------------------

  roiAlign(x: Storage, rois: Storage, g: RoiGeometry): Storage {
    return this.out(roiAlign(this.f32(x, 'roiAlign'), this.f32(rois, 'roiAlign'), g));
  }

  roiAlignBackward(dy: Storage, rois: Storage, g: RoiGeometry): Storage {
    const op = 'roiAlignBackward';
    return this.out(roiAlignBackward(this.f32(dy, op), this.f32(rois, op), g));
  }

  roiPool(x: Storage, rois: Storage, g: RoiGeometry): { y: Storage; saved: Storage } {
    const { y, argmax } = roiPool(this.f32(x, 'roiPool'), this.f32(rois, 'roiPool'), g);
    return { y: this.out(y), saved: this.wrap(argmax) };
  }

  roiPoolBackward(dy: Storage, rois: Storage, saved: Storage, g: RoiGeometry): Storage {
    const op = 'roiPoolBackward';
    return this.out(roiPoolBackward(this.f32(dy, op), this.f32(rois, op), this.i32(saved, op), g));
  }

  interpolate(x: Storage, g: InterpolateGeometry): Storage {
    return this.out(interpolate(this.f32(x, 'interpolate'), g));
  }

  interpolateBackward(dy: Storage, g: InterpolateGeometry): Storage {
    return this.out(interpolateBackward(this.f32(dy, 'interpolateBackward'), g));
  }

  nms(boxes: Float32Array, scores: Float32Array, iouThreshold: number): Int32Array {
    return nms(boxes, scores, iouThreshold);
  }

  // ---- optimiser --------------------------------------------------------------------------

  sgdUpdate(param: Storage, grad: Storage, buf: Storage | null, _shape: Shape, p: SgdParams): void {
    const op = 'sgdUpdate';
    sgdUpdate(this.f32(param, op), this.f32(grad, op), buf ? this.f32(buf, op) : null, p);
  }

  sgdUpdateMany(params: Storage[], grads: Storage[], bufs: Storage[] | null, shapes: Shape[], p: SgdParams): void {
    params.forEach((param, i) => this.sgdUpdate(param, grads[i], bufs ? bufs[i] : null, shapes[i], p));
  }

  adamwUpdate(param: Storage, grad: Storage, expAvg: Storage, expAvgSq: Storage, maxExpAvgSq: Storage | null,
    _shape: Shape, p: AdamwParams): void {
    const op = 'adamwUpdate';
    adamwUpdate(this.f32(param, op), this.f32(grad, op), this.f32(expAvg, op), this.f32(expAvgSq, op),
      maxExpAvgSq ? this.f32(maxExpAvgSq, op) : null, p);
  }
}
