// BN-folded inference: a ResNet compiled into a chain of fused convolutions. Each conv and
// the BatchNorm after it become one conv with bias (w' = w * gamma / sqrt(var + eps),
// b' = beta - mean * gamma / sqrt(var + eps), from the running statistics), and a block's
// last conv takes the shortcut and the ReLU as oneDNN post-ops (conv2dFused):
//   post-activation block:  y = relu(conv2'(relu(conv1'(x))) + shortcut'(x))
//   pre-activation unit:    y = conv2(relu(conv1'(relu(bn1(x))))) + shortcut(pre or x)
// (a BN *before* a conv cannot be folded into it exactly at zero-padded borders, so a
// pre-activation unit keeps its bn1). Activations stay in oneDNN's blocked layouts from the
// stem to the pooling. The folded weights are a snapshot: fuse again after the model's
// weights or running statistics change. With precision 'bf16' the convolutions run in bf16
// (the folded weights are converted once, on first use, and kept) and the activations
// between them are bf16; the classifier runs in float32. Not here: training (there is no
// backward).

import type { Backend, Precision } from '../backend/backend.js';
import { InvalidArgumentError, ShapeError } from '../errors.js';
import { BatchNorm2d } from '../nn/batch_norm.js';
import { Conv2d } from '../nn/conv.js';
import type { Module } from '../nn/module.js';
import { Sequential } from '../nn/sequential.js';
import { noGrad } from '../tensor/autograd.js';
import { autocast, expectPrecision } from '../tensor/precision.js';
import { batchNorm } from '../tensor/ops/batch_norm.js';
import { conv2dFused } from '../tensor/ops/conv2d.js';
import { flatten } from '../tensor/ops/reshape.js';
import { fmt, type Conv2dOptions } from '../tensor/geometry.js';
import { keep } from '../tensor/scope.js';
import { tensor, type Tensor } from '../tensor/tensor.js';
import { BasicBlock, Bottleneck, PreActBasicBlock, PreActBottleneck, type Block } from './blocks.js';
import type { ResNet } from './resnet.js';
import { ShortcutA } from './shortcut.js';

/** A convolution with its following BatchNorm folded in (or none). */
class FoldedConv {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly opts: Conv2dOptions;

  constructor(conv: Conv2d, bn: BatchNorm2d | null, backend: Backend, eps = bn?.eps ?? 0) {
    const w = conv.weight.toArray() as Float32Array;
    const K = conv.outChannels;
    const per = w.length / K;
    const convBias = conv.bias ? (conv.bias.toArray() as Float32Array) : null;
    this.opts = { stride: conv.stride, padding: conv.padding, dilation: conv.dilation, groups: conv.groups };
    if (!bn) {
      this.weight = keep(tensor(w.slice(), conv.weight.shape, { backend }));
      this.bias = convBias ? keep(tensor(convBias.slice(), [K], { backend })) : null;
      return;
    }
    const gamma = bn.weight.toArray(), beta = bn.bias.toArray();
    const mean = bn.runningMean.toArray(), variance = bn.runningVar.toArray();
    const fw = new Float32Array(w.length);
    const fb = new Float32Array(K);
    for (let k = 0; k < K; k++) {
      const scale = gamma[k] / Math.sqrt(variance[k] + eps);
      for (let i = 0; i < per; i++) fw[k * per + i] = w[k * per + i] * scale;
      fb[k] = beta[k] + ((convBias ? convBias[k] : 0) - mean[k]) * scale;
    }
    this.weight = keep(tensor(fw, conv.weight.shape, { backend }));
    this.bias = keep(tensor(fb, [K], { backend }));
  }

  /** `residual` is the block's own intermediate: the output is summed into its memory. */
  run(x: Tensor, relu: boolean, residual: Tensor | null = null): Tensor {
    return conv2dFused(x, this.weight, this.bias, { ...this.opts, relu, residual, consumeResidual: residual !== null });
  }

  dispose(): void {
    this.weight.dispose();
    this.bias?.dispose();
  }
}

type Step = (x: Tensor) => Tensor;

/** relu(bn(x)) with the running statistics, whatever mode the module is in. */
function bnReluInfer(bn: BatchNorm2d, x: Tensor): Tensor {
  return batchNorm(x, bn.weight, bn.bias, bn.runningMean, bn.runningVar, { training: false, eps: bn.eps, relu: true });
}

/** @example const o: FuseOptions = { precision: 'fp32' }; */
export interface FuseOptions {
  /** Convolution precision (default 'fp32'); resolve 'auto' with backend/precision.ts first. */
  precision?: Precision;
  /** The eps of every folded BatchNorm instead of each module's own (torchvision's
   *  FrozenBatchNorm2d with overwrite_eps: 0 for its v1 COCO detection weights). */
  bnEps?: number;
}

/**
 * The inference form of a ResNet: same logits as `model.eval().forward(x)` (within float32
 * rounding; bf16 rounding with precision 'bf16'), fewer ops and one pass per conv. Dispose it
 * when done (it owns the folded weights); the model itself is untouched.
 * @example
 * const fast = fuseForInference(model, { precision: 'bf16' });
 * const logits = tidy(() => fast.forward(x));
 * fast.dispose();
 */
export class FusedResNet {
  private readonly folded: FoldedConv[] = [];
  private readonly steps: Step[] = [];
  /** Index in `steps` after which each stage's output is ready. */
  private readonly stageEnds: number[] = [];
  private stemEnd = 0;
  private disposed = false;
  readonly precision: Precision;

  constructor(readonly model: ResNet, opts: FuseOptions = {}) {
    this.precision = opts.precision ?? 'fp32';
    expectPrecision('fuseForInference', this.precision);
    const bnEps = opts.bnEps;
    if (bnEps !== undefined && !(bnEps >= 0)) throw new InvalidArgumentError(`fuseForInference: 'bnEps' must be a number >= 0, got ${String(bnEps)}`);
    const backend = model.conv1.weight.backend;
    const fold = (conv: Conv2d, bn: BatchNorm2d | null): FoldedConv => {
      const f = new FoldedConv(conv, bn, backend, bn ? bnEps ?? bn.eps : 0);
      this.folded.push(f);
      return f;
    };
    try {
      const stem = fold(model.conv1, model.bn1);
      this.steps.push((x) => stem.run(x, model.bn1 !== null));
      if (model.maxpool) { const mp = model.maxpool; this.steps.push((x) => mp.forward(x)); }
      let stage = 0;
      this.stemEnd = this.steps.length;
      for (const { name, block, stage: s } of model.blocks()) {
        if (s !== stage) { this.stageEnds.push(this.steps.length); stage = s; }
        this.steps.push(this.blockStep(name, block, fold));
      }
      this.stageEnds.push(this.steps.length);
      if (model.bn) { const bn = model.bn; this.steps.push((x) => bnReluInfer(bn, x)); }
    } catch (e) {
      this.dispose();
      throw e;
    }
  }

  private shortcutStep(name: string, m: Module | null, fold: (c: Conv2d, bn: BatchNorm2d | null) => FoldedConv): Step | null {
    if (m === null) return null;
    if (m instanceof ShortcutA) return (x) => m.forward(x);
    if (m instanceof Sequential) {
      const parts = [...m];
      if (parts[0] instanceof Conv2d && (parts.length === 1 || (parts.length === 2 && parts[1] instanceof BatchNorm2d))) {
        const f = fold(parts[0], parts.length === 2 ? (parts[1] as BatchNorm2d) : null);
        return (x) => f.run(x, false);
      }
    }
    throw new InvalidArgumentError(`fuseForInference: ${name}: no fused form for the shortcut ${m.constructor.name}; supported: option A, Sequential(Conv2d[, BatchNorm2d])`);
  }

  private blockStep(name: string, b: Block, fold: (c: Conv2d, bn: BatchNorm2d | null) => FoldedConv): Step {
    const shortcut = this.shortcutStep(name, b.shortcutModule, fold);
    // The residual each block adds: the shortcut of `input` (identity when null); none when plain.
    const residualOf = (input: Tensor): Tensor | null => (b.plain ? null : shortcut ? shortcut(input) : input);
    if (b instanceof Bottleneck) {
      const c1 = fold(b.conv1, b.bn1), c2 = fold(b.conv2, b.bn2), c3 = fold(b.conv3, b.bn3);
      return (x) => c3.run(c2.run(c1.run(x, true), true), true, residualOf(x));
    }
    if (b instanceof BasicBlock) {
      const c1 = fold(b.conv1, b.bn1), c2 = fold(b.conv2, b.bn2);
      return (x) => c2.run(c1.run(x, true), true, residualOf(x));
    }
    if (b instanceof PreActBasicBlock || b instanceof PreActBottleneck) {
      const bn1 = b.bn1;
      const convs = b instanceof PreActBasicBlock
        ? [fold(b.conv1, b.bn2), fold(b.conv2, null)]
        : [fold(b.conv1, b.bn2), fold(b.conv2, b.bn3), fold(b.conv3, null)];
      return (x) => {
        const pre = bnReluInfer(bn1, x);
        let h = pre;
        for (let i = 0; i < convs.length - 1; i++) h = convs[i].run(h, true);
        // A changing shortcut takes the pre-activated input; the identity takes x.
        const residual = b.plain ? null : shortcut ? shortcut(pre) : x;
        return convs[convs.length - 1].run(h, false, residual);
      };
    }
    throw new InvalidArgumentError(`fuseForInference: ${name}: no fused form for ${b.constructor.name}; supported: BasicBlock, Bottleneck and their pre-activation and plain forms`);
  }

  /** Logits [N, numClasses]; runs without autograd. Intermediates are freed as it goes
   *  when called inside tidy(). */
  forward(x: Tensor): Tensor {
    if (this.disposed) throw new InvalidArgumentError('FusedResNet: used after dispose()');
    const c = this.model.inChannels;
    if (x.shape.length !== 4 || x.shape[1] !== c) {
      throw new ShapeError(`${this.model.name} (fused): input must be [N, ${c}, H, W], got ${fmt(x.shape)}`);
    }
    return noGrad(() => {
      let h = x;
      autocast(this.precision, () => { for (const step of this.steps) h = step(h); });
      return this.model.head.forward(flatten(this.model.avgpool.forward(h)));
    });
  }

  private checkLive(x: Tensor, c: number): void {
    if (this.disposed) throw new InvalidArgumentError('FusedResNet: used after dispose()');
    if (x.shape.length !== 4 || x.shape[1] !== c) {
      throw new ShapeError(`${this.model.name} (fused): input must be [N, ${c}, H, W], got ${fmt(x.shape)}`);
    }
  }

  private runSteps(x: Tensor, from: number, to: number, ends: readonly number[]): Tensor[] {
    return noGrad(() => {
      const out: Tensor[] = [];
      let h = x;
      autocast(this.precision, () => {
        for (let i = from; i < to; i++) {
          h = this.steps[i](h);
          if (ends.includes(i + 1)) out.push(h);
        }
      });
      return out;
    });
  }

  /** Each stage's output (layer1, layer2, ...), as ResNet.features(x).maps minus the stem,
   *  without the pooling and the classifier (a pre-activation net's final BN-ReLU is not
   *  applied); `stages` stops after that many (a C4 detector's trunk: 3). Runs without
   *  autograd.
   * @example
   * const fast = fuseForInference(model.eval());
   * const [c2, c3, c4, c5] = tidy(() => fast.features(x));
   */
  features(x: Tensor, stages = this.stageEnds.length): Tensor[] {
    this.checkLive(x, this.model.inChannels);
    if (!Number.isInteger(stages) || stages < 1 || stages > this.stageEnds.length) {
      throw new InvalidArgumentError(`FusedResNet.features: 'stages' must be 1..${this.stageEnds.length}, got ${String(stages)}`);
    }
    return this.runSteps(x, 0, this.stageEnds[stages - 1], this.stageEnds);
  }

  /** Stage `index` (0 = layer1) alone on its input (a C4 detector's per-region head runs
   *  layer4 on pooled regions).
   * @example
   * const fast = fuseForInference(model.eval());
   * const c5 = tidy(() => fast.runStage(x, 3));  // x: layer3's output, or 14x14 regions of it
   */
  runStage(x: Tensor, index: number): Tensor {
    const n = this.stageEnds.length;
    if (!Number.isInteger(index) || index < 0 || index >= n) throw new InvalidArgumentError(`FusedResNet.runStage: index must be 0..${n - 1}, got ${String(index)}`);
    const inC = index === 0 ? this.model.stages[0].at(0).inChannels : this.model.stages[index - 1].at(-1).outChannels;
    this.checkLive(x, inC);
    const from = index === 0 ? this.stemEnd : this.stageEnds[index - 1];
    return this.runSteps(x, from, this.stageEnds[index], [this.stageEnds[index]])[0];
  }

  dispose(): void {
    for (const f of this.folded) f.dispose();
    this.folded.length = 0;
    this.disposed = true;
  }
}

/** Folds every BatchNorm of `model` into its conv and fuses the residual additions and
 *  ReLUs; see FusedResNet.
 * @example
 * const fast = fuseForInference(model.eval());
 * const logits = tidy(() => noGrad(() => fast.forward(x)));
 * fast.dispose();
 */
export function fuseForInference(model: ResNet, opts: FuseOptions = {}): FusedResNet {
  return new FusedResNet(model, opts);
}
