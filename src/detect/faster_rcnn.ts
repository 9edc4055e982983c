// Faster R-CNN (Ren et al. 2015) with a ResNet + FPN backbone, inference, as torchvision's
// FasterRCNN / GeneralizedRCNN (v0.14): transform -> backbone (the registry's ResNet, its
// layer1..layer4 maps, then the FPN) -> RPN -> RoI heads -> boxes mapped back to each
// image's size. The paper's C4 form (He et al. 2015, section A, "ResNet-C4") instead shares
// conv1..layer3 (stride 16), runs the RPN on that one map and uses layer4 + global average
// pooling on 14x14 RoIAlign regions as the per-region head (keys `backbone.conv1..layer3`,
// `roi_heads.box_head.layer4`, as torchvision's FasterRCNN over such modules). Modules and state-dict keys as torchvision's (`backbone.body.*`,
// `backbone.fpn.*`, `rpn.head.*`, `roi_heads.box_head.*`, `roi_heads.box_predictor.*`), so its
// checkpoints load key for key (weights.ts). The backbone runs BN-folded (fused.ts) with the
// configured BatchNorm eps (1e-5: nn.BatchNorm2d in eval mode or FrozenBatchNorm2d; 0 for
// torchvision's v1 COCO weights). Training (losses(): the RPN's and the box head's, as
// torchvision's model(images, targets) in train mode) runs the backbone unfused through the
// autograd ops, its BatchNorm frozen or not as train/setup.ts sets the modes. Not here:
// masks, keypoints.

import type { Backend } from '../backend/backend.js';
import type { FloatImage } from '../data/dataset.js';
import { InvalidArgumentError } from '../errors.js';
import { Module } from '../nn/module.js';
import type { LoadReport, LoadStateDictOptions, StateDictInput } from '../nn/state_dict.js';
import { fuseForInference, type FusedResNet } from '../models/fused.js';
import { createModel } from '../models/registry.js';
import type { ResNet } from '../models/resnet.js';
import type { Random } from '../data/random.js';
import { noGrad } from '../tensor/autograd.js';
import { add } from '../tensor/ops/elementwise.js';
import { globalAvgPool2d } from '../tensor/ops/pool.js';
import { flatten } from '../tensor/ops/reshape.js';
import { tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import { AnchorGenerator } from './anchors.js';
import { FeaturePyramidNetwork, type NamedMap } from './fpn.js';
import { FastRCNNConvFCHead, FastRCNNPredictor, MultiScaleRoIAlign, RoIHeads, TwoMLPHead, type RawDetections, type RoiAlignPoolOptions, type RoiHeadsOptions } from './roi_heads.js';
import { RegionProposalNetwork, RPNHead, type DetectionTarget, type Proposals, type RpnOptions } from './rpn.js';
import { GeneralizedRCNNTransform, type ImageList, type TransformOptions } from './transform.js';

/** @example const c: FasterRCNNConfig = { backbone: 'resnet50', numClasses: 91 }; */
export interface FasterRCNNConfig {
  /** The detector's name (messages, the CLI). */
  name?: string;
  /** 'fpn' (default) or 'c4' (RPN on layer3, layer4 as the box head). */
  head?: 'fpn' | 'c4';
  /** A registered ImageNet-family ResNet arch ('resnet50', 'resnet18', ...). */
  backbone: string;
  /** Extra options of the backbone's ResNet (e.g. width, for small test nets). */
  backboneOptions?: { width?: number; groups?: number; widthPerGroup?: number };
  /** Classes including the background (91 for torchvision's COCO models). */
  numClasses?: number;
  /** FPN channels (256). */
  fpnOutChannels?: number;
  /** TwoMLPHead width (1024). */
  representationSize?: number;
  /** The FPN box head's MultiScaleRoIAlign level mapping (torchvision's LevelMapper): a box
   *  of side sqrt(area) = canonicalScale pools from level canonicalLevel (224 and 4: an
   *  ImageNet-sized object from P4, one half that size from P3). */
  roiPool?: Pick<RoiAlignPoolOptions, 'canonicalScale' | 'canonicalLevel'>;
  /** The side of a pooled region (MultiScaleRoIAlign output_size): 7 for an FPN head (its
   *  TwoMLPHead takes C x 7 x 7), 14 for C4 (layer4's stride 2 makes it 7 x 7). */
  roiOutputSize?: number;
  /** The v2 detector's parts (Li et al. 2021, torchvision's fasterrcnn_resnet50_fpn_v2):
   *  BatchNorm in the FPN, a 2-conv RPN head, a 4-conv + 1-fc box head with BatchNorm. */
  v2?: boolean;
  /** BatchNorm eps of the backbone (1e-5; torchvision's v1 COCO weights use 0). */
  bnEps?: number;
  /** Anchor sizes per FPN level, ((32,), (64,), (128,), (256,), (512,)) */
  anchorSizes?: readonly (readonly number[])[];
  aspectRatios?: readonly (readonly number[])[];
  transform?: TransformOptions;
  rpn?: RpnOptions;
  roiHeads?: RoiHeadsOptions;
  /** Names of the classes, background first (torchvision's COCO list for 91 classes). */
  categories?: readonly string[];
  backend?: Backend;
}

/**
 * The ResNet's stem and stages without its pooling and classifier (torchvision's
 * IntermediateLayerGetter over conv1..layer4): keys `conv1.weight`, `bn1.*`, `layerN.*`.
 * @example const body = new ResNetBody(createModel('resnet50', { init: 'none' }));
 */
export class ResNetBody extends Module {
  readonly numStages: number;

  /** `numStages` first stages (all by default; 3 for a C4 detector's trunk). */
  constructor(readonly resnet: ResNet, numStages = resnet.stages.length) {
    super();
    if (resnet.family !== 'imagenet') throw new InvalidArgumentError(`ResNetBody: the backbone must be an ImageNet-family ResNet, got ${resnet.name} (${resnet.family})`);
    this.numStages = numStages;
    this.registerModule('conv1', resnet.conv1);
    if (resnet.bn1) this.registerModule('bn1', resnet.bn1);
    resnet.stages.slice(0, numStages).forEach((s, i) => this.registerModule(`layer${i + 1}`, s));
  }

  /** Output channels of each stage. */
  stageChannels(): number[] {
    return this.resnet.stages.slice(0, this.numStages).map((s) => s.at(-1).outChannels);
  }
}

/**
 * The C4 per-region head: the ResNet's last stage on pooled regions, then global average
 * pooling ([K, C, 14, 14] -> [K, 2048] for resnet50). Key `layer4.*`.
 * @example
 * const resnet = createModel('resnet50', { init: 'none' });
 * const fused = fuseForInference(resnet.eval());
 * const head = new ResNetC4Head(resnet, () => fused);
 */
export class ResNetC4Head extends Module {
  readonly outChannels: number;

  constructor(readonly resnet: ResNet, private readonly fused: () => FusedResNet) {
    super();
    const last = resnet.stages.length;
    this.registerModule(`layer${last}`, resnet.stages[last - 1]);
    this.outChannels = resnet.numFeatures;
  }

  override forward(x: Tensor): Tensor {
    const last = this.resnet.stages.length - 1;
    let y: Tensor;
    if (this.training) {
      y = x;
      for (const block of this.resnet.stages[last]) y = block.forward(y);
    } else {
      y = this.fused().runStage(x, last);
    }
    return flatten(globalAvgPool2d(y));
  }
}

/**
 * torchvision's BackboneWithFPN: `body` (the ResNet) and `fpn`.
 * @example const b = new BackboneWithFPN(createModel('resnet50', { init: 'none' }), 256);
 */
export class BackboneWithFPN extends Module {
  readonly body: ResNetBody;
  readonly fpn: FeaturePyramidNetwork;
  readonly outChannels: number;

  constructor(resnet: ResNet, outChannels: number, backend?: Backend, norm = false) {
    super();
    this.body = this.registerModule('body', new ResNetBody(resnet));
    this.fpn = this.registerModule('fpn', new FeaturePyramidNetwork({ inChannelsList: this.body.stageChannels(), outChannels, norm, backend }));
    this.outChannels = outChannels;
  }
}

/** What one forward gives per image, before the boxes are mapped back.
 * @example const s: DetectionStages = createDetector('fasterrcnn_resnet50_fpn').stages([toFloatImage(img)]);
 */
export interface DetectionStages {
  list: ImageList;
  levels: NamedMap[];
  proposals: Proposals[];
  detections: RawDetections[];
}

/** The training losses of one batch, as torchvision's loss dict.
 * @example const detector = createDetector('fasterrcnn_resnet18_fpn', { numClasses: 3 }).train();
 * const image = { data: new Float32Array(3 * 64 * 64), channels: 3, height: 64, width: 64 };
 * const { loss, parts }: DetectionLosses = detector.losses([image], [{ boxes: new Float32Array([8, 8, 40, 40]), labels: Int32Array.of(1) }], new Random(0));
 */
export interface DetectionLosses {
  /** The sum of the four, a scalar in the graph: call backward() on it. */
  loss: Tensor;
  parts: { loss_objectness: number; loss_rpn_box_reg: number; loss_classifier: number; loss_box_reg: number };
  /** Proposals per image, sampled proposals and positives among them (for progress). */
  proposals: number;
  sampled: number;
  positives: number;
}

/** Detections of one image, boxes in its original pixel coordinates.
 * @example const { boxes, scores, labels }: Detections = createDetector('fasterrcnn_resnet50_fpn').detect([toFloatImage(img)])[0];
 */
export interface Detections {
  /** [K, 4] x1, y1, x2, y2. */
  boxes: Float32Array;
  scores: Float32Array;
  labels: Int32Array;
}

/**
 * @example
 * const model = createDetector('fasterrcnn_resnet50_fpn');
 * loadDetectionWeights(model, 'fasterrcnn_resnet50_fpn_coco.pth');
 * const [dets] = model.detect([toFloatImage(img)]);  // RGB in [0, 1]
 */
export class FasterRCNN extends Module {
  readonly name: string;
  readonly transform: GeneralizedRCNNTransform;
  /** BackboneWithFPN (body + fpn), or for 'c4' the trunk conv1..layer3 itself. */
  readonly backbone: BackboneWithFPN | ResNetBody;
  readonly head: 'fpn' | 'c4';
  readonly resnet: ResNet;
  readonly rpn: RegionProposalNetwork;
  readonly roiHeads: RoIHeads;
  readonly categories: string[] | null;
  /** The backbone ResNet's own options (width, groups), as configured. */
  readonly backboneOptions: { width?: number; groups?: number; widthPerGroup?: number };
  private _bnEps: number;
  private fused: FusedResNet | null = null;

  constructor(config: FasterRCNNConfig) {
    super();
    const head = this.head = config.head ?? 'fpn';
    if (head !== 'fpn' && head !== 'c4') throw new InvalidArgumentError(`FasterRCNN: unknown head '${String(head)}'; valid: fpn, c4`);
    this.name = config.name ?? `fasterrcnn_${config.backbone}_${head}`;
    const backend = config.backend;
    const numClasses = config.numClasses ?? 91;
    if (!Number.isInteger(numClasses) || numClasses < 2) throw new InvalidArgumentError(`${this.name}: numClasses must be an integer >= 2 (background included), got ${String(numClasses)}`);
    this._bnEps = config.bnEps ?? 1e-5;
    if (!(this._bnEps >= 0)) throw new InvalidArgumentError(`${this.name}: bnEps must be >= 0, got ${String(config.bnEps)}`);
    const c4 = head === 'c4';
    // the pooled side: 14 for C4 (layer4's stride 2 makes it 7), 7 for an FPN head
    const S = config.roiOutputSize ?? (c4 ? 14 : 7);
    if (!(Number.isInteger(S) && S >= 1)) throw new InvalidArgumentError(`${this.name}: roiOutputSize must be an integer >= 1, got ${String(config.roiOutputSize)}`);
    this.backboneOptions = { ...config.backboneOptions };
    const resnet = createModel(config.backbone, { ...config.backboneOptions, numClasses: 1, init: 'none', backend });
    if (resnet.family !== 'imagenet') throw new InvalidArgumentError(`${this.name}: backbone '${config.backbone}' is a CIFAR net; use an ImageNet-family arch (resnet18, resnet34, resnet50, resnet101, ...)`);
    this.resnet = resnet;
    this.transform = new GeneralizedRCNNTransform(config.transform);
    let C: number;
    if (c4) {
      if (resnet.stages.length !== 4) throw new InvalidArgumentError(`${this.name}: a C4 detector needs a 4-stage ResNet, got ${resnet.stages.length} stages`);
      const body = this.registerModule('backbone', new ResNetBody(resnet, 3));
      this.backbone = body;
      C = body.stageChannels()[2];
    } else {
      C = config.fpnOutChannels ?? 256;
      this.backbone = this.registerModule('backbone', new BackboneWithFPN(resnet, C, backend, config.v2 ?? false));
    }
    const anchorGenerator = new AnchorGenerator({
      sizes: config.anchorSizes ?? (c4 ? [[32, 64, 128, 256, 512]] : [[32], [64], [128], [256], [512]]),
      aspectRatios: config.aspectRatios ?? [[0.5, 1.0, 2.0]],
    });
    const A = anchorGenerator.numAnchorsPerLocation();
    if (!A.every((a) => a === A[0])) throw new InvalidArgumentError(`${this.name}: every level needs the same number of anchors per location (the RPN head is shared), got ${A.join(', ')}`);
    this.rpn = this.registerModule('rpn', new RegionProposalNetwork(anchorGenerator, new RPNHead(C, A[0], { backend, convDepth: config.v2 ? 2 : 1 }), config.rpn));
    if (c4) {
      const pool = new MultiScaleRoIAlign({ featmapNames: ['0'], outputSize: S, samplingRatio: 2 });
      const boxHead = new ResNetC4Head(resnet, () => this.fusedResNet());
      this.roiHeads = this.registerModule('roi_heads', new RoIHeads(pool, boxHead, new FastRCNNPredictor(boxHead.outChannels, numClasses, { backend }), config.roiHeads));
    } else {
      const pool = new MultiScaleRoIAlign({ featmapNames: ['0', '1', '2', '3'], outputSize: S, samplingRatio: 2, ...config.roiPool });
      const R = config.representationSize ?? 1024;
      const boxHead = config.v2 ? new FastRCNNConvFCHead([C, S, S], [256, 256, 256, 256], [R], { backend }) : new TwoMLPHead(C * S * S, R, { backend });
      this.roiHeads = this.registerModule('roi_heads', new RoIHeads(pool, boxHead, new FastRCNNPredictor(R, numClasses, { backend }), config.roiHeads));
    }
    if (config.categories && config.categories.length !== numClasses) {
      throw new InvalidArgumentError(`${this.name}: ${config.categories.length} category names for ${numClasses} classes`);
    }
    this.categories = config.categories ? [...config.categories] : null;
    this.eval();
  }

  get numClasses(): number { return this.roiHeads.boxPredictor.numClasses; }
  get backend(): Backend { return this.resnet.conv1.weight.backend; }

  /** The backbone's BatchNorm eps (folded into the convolutions at inference). */
  get bnEps(): number { return this._bnEps; }
  set bnEps(v: number) {
    if (!(v >= 0)) throw new InvalidArgumentError(`${this.name}: bnEps must be >= 0, got ${String(v)}`);
    this._bnEps = v;
    this.dropFused();
  }

  private dropFused(): void {
    this.fused?.dispose();
    this.fused = null;
  }

  /** Training changes the weights: the folded copy inference runs is rebuilt afterwards. */
  override train(mode = true): this {
    if (mode) this.dropFused();
    return super.train(mode);
  }

  override loadStateDict(sd: StateDictInput, opts: LoadStateDictOptions = {}): LoadReport {
    this.dropFused();
    return super.loadStateDict(sd, opts);
  }

  override to(backend: Backend): this {
    this.dropFused();
    return super.to(backend);
  }

  override dispose(): void {
    this.dropFused();
    super.dispose();
  }

  /** The BN-folded ResNet the forward runs (built on first use, rebuilt after weights or
   *  bnEps change). */
  fusedResNet(): FusedResNet {
    this.fused ??= fuseForInference(this.resnet, { bnEps: this._bnEps });
    return this.fused;
  }

  /** Where a classification checkpoint's key goes in this detector (null: nowhere, the
   *  classifier `fc.*`).
   * @example createDetector('fasterrcnn_resnet50_c4').classifierKey('layer4.0.conv1.weight')  // 'roi_heads.box_head.layer4.0.conv1.weight'
   */
  classifierKey(key: string): string | null {
    if (key.startsWith('fc.')) return null;
    if (this.head === 'c4' && key.startsWith(`layer${this.resnet.stages.length}.`)) return `roi_heads.box_head.${key}`;
    return this.backbone instanceof BackboneWithFPN ? `backbone.body.${key}` : `backbone.${key}`;
  }

  /** The feature levels of a batch [N, 3, H, W]: FPN '0'..'3' and 'pool', or C4's '0'. In
   *  training mode the backbone runs unfused, in the graph. */
  features(images: ImageList): NamedMap[] {
    if (this.training) {
      const maps = this.trunk(images.images, this.backbone instanceof BackboneWithFPN ? this.resnet.stages.length : 3);
      if (this.backbone instanceof BackboneWithFPN) return this.backbone.fpn.levels(maps);
      return [{ name: '0', tensor: maps[2] }];
    }
    const fused = this.fusedResNet();
    if (this.backbone instanceof BackboneWithFPN) return this.backbone.fpn.levels(fused.features(images.images));
    return [{ name: '0', tensor: fused.features(images.images, 3)[2] }];
  }

  /** The stem and the first `numStages` stages, unfused (training). */
  private trunk(x: Tensor, numStages: number): Tensor[] {
    const r = this.resnet;
    let h = r.conv1.forward(x);
    if (r.bn1) h = r.bn1.forward(h, { relu: true });
    if (r.maxpool) h = r.maxpool.forward(h);
    const out: Tensor[] = [];
    for (const stage of r.stages.slice(0, numStages)) {
      for (const block of stage) h = block.forward(h);
      out.push(h);
    }
    return out;
  }

  /** Every stage of a forward, in the resized images' coordinates (for tests and tools).
   *  Call inside tidy(). */
  stages(images: readonly FloatImage[]): DetectionStages {
    if (this.training) throw new InvalidArgumentError(`${this.name}: stages() and detect() run in eval mode (training gives losses()); call eval() first`);
    return noGrad(() => {
      const list = this.transform.forward(images, this.backend);
      const levels = this.features(list);
      const padded: [number, number] = [list.images.shape[2], list.images.shape[3]];
      const proposals = this.rpn.propose(padded, list.imageSizes, levels);
      const detections = this.roiHeads.run(levels, proposals, list.imageSizes);
      return { list, levels, proposals, detections };
    });
  }

  /**
   * The training losses of a batch (torchvision's model(images, targets) in train mode):
   * `targets` in each image's own pixels, labels 1..numClasses-1. `rng` draws the sampled
   * anchors and proposals. Call in training mode, inside tidy(); then loss.backward().
   */
  losses(images: readonly FloatImage[], targets: readonly DetectionTarget[], rng: Random): DetectionLosses {
    if (!this.training) throw new InvalidArgumentError(`${this.name}: losses() needs training mode; call train() first`);
    if (this.roiHeads.boxHead instanceof FastRCNNConvFCHead) {
      throw new InvalidArgumentError(`${this.name}: training the v2 detector is not supported (its box head's BatchNorm would see the regions level by level); train fasterrcnn_resnet50_fpn or another v1 / C4 arch`);
    }
    if (targets.length !== images.length) throw new InvalidArgumentError(`${this.name}: ${images.length} images but ${targets.length} targets`);
    const C = this.numClasses;
    targets.forEach((t, n) => {
      if (t.boxes.length !== 4 * t.labels.length) throw new InvalidArgumentError(`${this.name}: target ${n}: ${t.boxes.length / 4} boxes for ${t.labels.length} labels`);
      t.labels.forEach((l, k) => {
        if (!Number.isInteger(l) || l < 1 || l >= C) throw new InvalidArgumentError(`${this.name}: target ${n}, box ${k}: label ${l} is not a class 1..${C - 1} (0 is the background)`);
        const [x1, y1, x2, y2] = t.boxes.subarray(4 * k, 4 * k + 4);
        if (!(x2 > x1 && y2 > y1)) throw new InvalidArgumentError(`${this.name}: target ${n}, box ${k}: [${x1}, ${y1}, ${x2}, ${y2}] has no area (x2 <= x1 or y2 <= y1)`);
      });
    });
    const list = this.transform.forward(images, this.backend);
    const resized = targets.map((t, n) => ({ boxes: this.transform.resizeBoxes(t.boxes, list.originalSizes[n], list.imageSizes[n]), labels: t.labels }));
    const levels = this.features(list);
    const padded: [number, number] = [list.images.shape[2], list.images.shape[3]];
    const rpn = this.rpn.trainingLoss(padded, list.imageSizes, levels, resized, rng);
    const roi = this.roiHeads.trainingLoss(levels, rpn.proposals, list.imageSizes, resized, rng);
    return {
      loss: add(rpn.loss, roi.loss),
      parts: { loss_objectness: rpn.objectness, loss_rpn_box_reg: rpn.boxReg, loss_classifier: roi.classifier, loss_box_reg: roi.boxReg },
      proposals: rpn.proposals.reduce((s, p) => s + p.boxes.length / 4, 0) / images.length,
      sampled: roi.sampled,
      positives: roi.positives,
    };
  }

  /** Detections of each image (planar RGB float in [0, 1]), boxes in its own pixels. */
  detect(images: readonly FloatImage[]): Detections[] {
    return tidy(() => {
      const { list, detections } = this.stages(images);
      return detections.map((d, n) => ({
        boxes: this.transform.postprocessBoxes(d.boxes, list.imageSizes[n], list.originalSizes[n]),
        scores: d.scores,
        labels: d.labels,
      }));
    });
  }
}
