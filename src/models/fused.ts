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
// between them are bf16; the classifier runs in float32. On a backend with conv chains
// (native) the convolutions and the max pool run as one call per forward (backend ConvChain:
// ~2 ms of a resnet50's 26 at batch 1 went to crossing into JS between its 57 primitives),
// where the net has that form (post-activation blocks, any shortcut option);
// else op by op, with the same results. Not here: training (there is no backward).

import type { Backend, ConvChain, ConvChainNode, Precision } from '../backend/backend.js';
import { InvalidArgumentError, ShapeError } from '../errors.js';
import { BatchNorm2d } from '../nn/batch_norm.js';
import { Conv2d } from '../nn/conv.js';
import type { Module } from '../nn/module.js';
import { MaxPool2d } from '../nn/pooling.js';
import { Sequential } from '../nn/sequential.js';
import { noGrad } from '../tensor/autograd.js';
import { autocast, expectPrecision } from '../tensor/precision.js';
import { batchNorm } from '../tensor/ops/batch_norm.js';
import { conv2dFused } from '../tensor/ops/conv2d.js';
import { flatten } from '../tensor/ops/reshape.js';
import { conv2dGeometry, fmt, pool2dGeometry, type Conv2dOptions, type Pool2dOptions } from '../tensor/geometry.js';
import { keep } from '../tensor/scope.js';
import { fromStorage, tensor, type Tensor } from '../tensor/tensor.js';
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

/** A convolution of the chain: a folded one, or option A's fixed selection. */
type ChainConv = Pick<FoldedConv, 'weight' | 'bias' | 'opts'>;

/** A node of the network's conv chain (backend ConvChainNode before its storages and
 *  renumbering): `src` and `residual` index the chain's nodes, -1 is the network's input. */
type ChainDraft =
  | { conv: ChainConv; src: number; residual?: number; relu: boolean }
  | { pool: Pool2dOptions; src: number };

/** A compiled piece of the chain: its nodes and the shapes of its outputs per input shape. */
interface CompiledChain {
  chain: ConvChain;
  drafts: ChainDraft[];
  /** Index of the piece's first node in the whole chain; node first-1 is its input. */
  first: number;
  outputs: number[];
  shapes: Map<string, number[][]>;
}

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
  /** Run the convolutions and max pool as one backend call (a ConvChain: one crossing per
   *  forward, intermediates in an arena of their own) where the backend has it and the net has
   *  that form (default true); false: op by op. Same results either way. */
  chain?: boolean;
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
  /** The steps as one chain of conv and max-pool nodes, where every step has that form (post-
   *  activation blocks, any shortcut option: torchvision's and the paper's ImageNet and CIFAR
   *  nets); null where one does not (pre-activation units keep a batch norm). */
  private drafts: ChainDraft[] | null = [];
  /** The node holding each step's output. */
  private readonly stepNode: number[] = [];
  /** Compiled chains by the step range and outputs they run (backends with convChain). */
  private readonly chains = new Map<string, CompiledChain>();
  readonly precision: Precision;

  constructor(readonly model: ResNet, opts: FuseOptions = {}) {
    this.precision = opts.precision ?? 'fp32';
    if (opts.chain === false) this.drafts = null;
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
      this.draft({ conv: stem, src: -1, relu: model.bn1 !== null });
      this.pushStep((x) => stem.run(x, model.bn1 !== null));
      if (model.maxpool) {
        const mp = model.maxpool;
        if (mp instanceof MaxPool2d) this.draft({ pool: mp.options, src: this.lastNode() });
        else this.drafts = null;
        this.pushStep((x) => mp.forward(x));
      }
      let stage = 0;
      this.stemEnd = this.steps.length;
      for (const { name, block, stage: s } of model.blocks()) {
        if (s !== stage) { this.stageEnds.push(this.steps.length); stage = s; }
        this.pushStep(this.blockStep(name, block, fold));
      }
      this.stageEnds.push(this.steps.length);
      if (model.bn) { const bn = model.bn; this.drafts = null; this.pushStep((x) => bnReluInfer(bn, x)); }
    } catch (e) {
      this.dispose();
      throw e;
    }
  }

  private pushStep(step: Step): void {
    this.steps.push(step);
    this.stepNode.push(this.lastNode());
  }

  /** Appends a node to the chain (when there is one); its index. */
  private draft(d: ChainDraft): number {
    this.drafts?.push(d);
    return this.lastNode();
  }

  private lastNode(): number {
    return this.drafts ? this.drafts.length - 1 : -1;
  }

  private shortcutStep(name: string, m: Module | null, fold: (c: Conv2d, bn: BatchNorm2d | null) => FoldedConv): { step: Step; conv: ChainConv } | null {
    if (m === null) return null;
    // Option A is a 1x1 convolution with a fixed 0/1 selection weight (models/shortcut.ts).
    if (m instanceof ShortcutA) return { step: (x) => m.forward(x), conv: { weight: m.getBuffer('selection'), bias: null, opts: { stride: m.stride } } };
    if (m instanceof Sequential) {
      const parts = [...m];
      if (parts[0] instanceof Conv2d && (parts.length === 1 || (parts.length === 2 && parts[1] instanceof BatchNorm2d))) {
        const f = fold(parts[0], parts.length === 2 ? (parts[1] as BatchNorm2d) : null);
        return { step: (x) => f.run(x, false), conv: f };
      }
    }
    throw new InvalidArgumentError(`fuseForInference: ${name}: no fused form for the shortcut ${m.constructor.name}; supported: option A, Sequential(Conv2d[, BatchNorm2d])`);
  }

  private blockStep(name: string, b: Block, fold: (c: Conv2d, bn: BatchNorm2d | null) => FoldedConv): Step {
    const sc = this.shortcutStep(name, b.shortcutModule, fold);
    const shortcut = sc?.step ?? null;
    // The residual each block adds: the shortcut of `input` (identity when null); none when plain.
    const residualOf = (input: Tensor): Tensor | null => (b.plain ? null : shortcut ? shortcut(input) : input);
    if (b instanceof Bottleneck || b instanceof BasicBlock) {
      const convs = b instanceof Bottleneck
        ? [fold(b.conv1, b.bn1), fold(b.conv2, b.bn2), fold(b.conv3, b.bn3)]
        : [fold(b.conv1, b.bn1), fold(b.conv2, b.bn2)];
      // The chain's nodes, in the order the step runs them: the convs but the last, the
      // shortcut, the last conv with the residual.
      if (this.drafts) {
        const input = this.lastNode();
        let h = input;
        for (let i = 0; i < convs.length - 1; i++) h = this.draft({ conv: convs[i], src: h, relu: true });
        const residual = b.plain ? undefined : sc ? this.draft({ conv: sc.conv, src: input, relu: false }) : input;
        this.draft({ conv: convs[convs.length - 1], src: h, residual, relu: true });
      }
      return (x) => {
        let h = x;
        for (let i = 0; i < convs.length - 1; i++) h = convs[i].run(h, true);
        return convs[convs.length - 1].run(h, true, residualOf(x));
      };
    }
    this.drafts = null;
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
      const [h] = this.runSteps(x, 0, this.steps.length, [this.steps.length]);
      return this.model.head.forward(flatten(this.model.avgpool.forward(h)));
    });
  }

  private checkLive(x: Tensor, c: number): void {
    if (this.disposed) throw new InvalidArgumentError('FusedResNet: used after dispose()');
    if (x.shape.length !== 4 || x.shape[1] !== c) {
      throw new ShapeError(`${this.model.name} (fused): input must be [N, ${c}, H, W], got ${fmt(x.shape)}`);
    }
  }

  /** The outputs of steps from..to-1 that end at `ends`, on x: one conv chain call where the
   *  backend has them and the steps have that form, else step by step. */
  private runSteps(x: Tensor, from: number, to: number, ends: readonly number[]): Tensor[] {
    const compiled = this.chainFor(x, from, to, ends);
    if (compiled) {
      const key = x.shape.join();
      let shapes = compiled.shapes.get(key);
      if (!shapes) { shapes = this.traceShapes(compiled, x.shape); compiled.shapes.set(key, shapes); }
      const ys = compiled.chain.run(x.storage);
      return ys.map((y, i) => fromStorage(x.backend, y, shapes[i]));
    }
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

  /** The compiled chain of steps from..to-1 returning the outputs at `ends`, or null where the
   *  steps or the backend have no chain (then they run one by one). */
  private chainFor(x: Tensor, from: number, to: number, ends: readonly number[]): CompiledChain | null {
    const backend = this.model.conv1.weight.backend;
    if (!this.drafts || !backend.convChain || x.backend !== backend || x.dtype !== 'float32') return null;
    const outs = ends.filter((e) => e > from && e <= to);
    const key = `${from}:${to}:${outs.join(',')}`;
    const known = this.chains.get(key);
    if (known) return known;
    const all = this.drafts;
    const input = from === 0 ? -1 : this.stepNode[from - 1];
    const first = input + 1;
    const last = this.stepNode[to - 1];
    const local = (n: number): number => {
      if (n === input) return -1;
      if (n < first || n > last) throw new Error(`FusedResNet: node ${n} is outside the chain's nodes ${first}..${last}`);
      return n - first;
    };
    const drafts = all.slice(first, last + 1);
    const nodes: ConvChainNode[] = drafts.map((d): ConvChainNode => {
      if ('pool' in d) {
        const g = pool2dGeometry('maxPool2d', [1, 1, 1e9, 1e9], d.pool);
        return { op: 'maxpool', src: local(d.src), R: g.kernelH, S: g.kernelW, strideH: g.strideH, strideW: g.strideW, padH: g.padH, padW: g.padW };
      }
      const w = d.conv.weight.shape;
      const g = conv2dGeometry([1, w[1] * (d.conv.opts.groups ?? 1), 1e9, 1e9], w, null, d.conv.opts);
      return {
        op: 'conv', src: local(d.src), ...(d.residual === undefined ? {} : { residual: local(d.residual) }), relu: d.relu,
        weight: d.conv.weight.storage, bias: d.conv.bias ? d.conv.bias.storage : null, K: g.K, R: g.R, S: g.S,
        strideH: g.strideH, strideW: g.strideW, padH: g.padH, padW: g.padW, dilationH: g.dilationH, dilationW: g.dilationW, groups: g.groups,
      };
    });
    const outputs = outs.map((e) => local(this.stepNode[e - 1]));
    const chain = backend.convChain({ nodes, outputs, inChannels: x.shape[1], precision: this.precision });
    const compiled: CompiledChain = { chain, drafts, first, outputs, shapes: new Map() };
    this.chains.set(key, compiled);
    return compiled;
  }

  /** The outputs' shapes of a chain on input shape x (and its geometry checked, with the
   *  messages of the ops it fuses). */
  private traceShapes(c: CompiledChain, x: readonly number[]): number[][] {
    const shapes: number[][] = [];
    c.drafts.forEach((d, i) => {
      const s = d.src - c.first < 0 ? x : shapes[d.src - c.first];
      if ('pool' in d) {
        const g = pool2dGeometry('maxPool2d', s, d.pool);
        shapes[i] = [g.N, g.C, g.OH, g.OW];
      } else {
        const g = conv2dGeometry(s, d.conv.weight.shape, d.conv.bias ? d.conv.bias.shape : null, d.conv.opts);
        shapes[i] = [g.N, g.K, g.OH, g.OW];
      }
    });
    return c.outputs.map((o) => shapes[o]);
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
    for (const c of this.chains.values()) c.chain.free();
    this.chains.clear();
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
