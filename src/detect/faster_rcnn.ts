// Faster R-CNN (Ren et al. 2015) with a ResNet + FPN backbone, inference, as torchvision's
// FasterRCNN / GeneralizedRCNN (v0.14): transform -> backbone (the registry's ResNet, its
// layer1..layer4 maps, then the FPN) -> RPN -> RoI heads -> boxes mapped back to each
// image's size. Modules and state-dict keys as torchvision's (`backbone.body.*`,
// `backbone.fpn.*`, `rpn.head.*`, `roi_heads.box_head.*`, `roi_heads.box_predictor.*`), so its
// checkpoints load key for key (weights.ts). The backbone runs BN-folded (fused.ts) with the
// configured BatchNorm eps (1e-5: nn.BatchNorm2d in eval mode or FrozenBatchNorm2d; 0 for
// torchvision's v1 COCO weights). Not here: training (losses, sampling), masks, keypoints.

import type { Backend } from '../backend/backend.js';
import type { FloatImage } from '../data/dataset.js';
import { InvalidArgumentError } from '../errors.js';
import { Module } from '../nn/module.js';
import type { LoadReport, LoadStateDictOptions, StateDictInput } from '../nn/state_dict.js';
import { fuseForInference, type FusedResNet } from '../models/fused.js';
import { createModel } from '../models/registry.js';
import type { ResNet } from '../models/resnet.js';
import { tidy } from '../tensor/scope.js';
import { AnchorGenerator } from './anchors.js';
import { FeaturePyramidNetwork, type NamedMap } from './fpn.js';
import { FastRCNNPredictor, MultiScaleRoIAlign, RoIHeads, TwoMLPHead, type RawDetections, type RoiHeadsOptions } from './roi_heads.js';
import { RegionProposalNetwork, RPNHead, type Proposals, type RpnOptions } from './rpn.js';
import { GeneralizedRCNNTransform, type ImageList, type TransformOptions } from './transform.js';

/** @example const c: FasterRCNNConfig = { backbone: 'resnet50', numClasses: 91 }; */
export interface FasterRCNNConfig {
  /** The detector's name (messages, the CLI). */
  name?: string;
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
  constructor(readonly resnet: ResNet) {
    super();
    if (resnet.family !== 'imagenet') throw new InvalidArgumentError(`ResNetBody: the backbone must be an ImageNet-family ResNet, got ${resnet.name} (${resnet.family})`);
    this.registerModule('conv1', resnet.conv1);
    if (resnet.bn1) this.registerModule('bn1', resnet.bn1);
    resnet.stages.forEach((s, i) => this.registerModule(`layer${i + 1}`, s));
  }

  /** Output channels of each stage. */
  stageChannels(): number[] {
    return this.resnet.stages.map((s) => s.at(-1).outChannels);
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

  constructor(resnet: ResNet, outChannels: number, backend?: Backend) {
    super();
    this.body = this.registerModule('body', new ResNetBody(resnet));
    this.fpn = this.registerModule('fpn', new FeaturePyramidNetwork({ inChannelsList: this.body.stageChannels(), outChannels, backend }));
    this.outChannels = outChannels;
  }
}

/** What one forward gives per image, before the boxes are mapped back. @example const s: DetectionStages = model.stages(images); */
export interface DetectionStages {
  list: ImageList;
  levels: NamedMap[];
  proposals: Proposals[];
  detections: RawDetections[];
}

/** Detections of one image, boxes in its original pixel coordinates. @example const { boxes, scores, labels }: Detections = model.detect([img])[0]; */
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
 * const [dets] = model.detect([img]);  // img: FloatImage, RGB in [0, 1]
 */
export class FasterRCNN extends Module {
  readonly name: string;
  readonly transform: GeneralizedRCNNTransform;
  readonly backbone: BackboneWithFPN;
  readonly rpn: RegionProposalNetwork;
  readonly roiHeads: RoIHeads;
  readonly categories: string[] | null;
  private _bnEps: number;
  private fused: FusedResNet | null = null;

  constructor(config: FasterRCNNConfig) {
    super();
    this.name = config.name ?? `fasterrcnn_${config.backbone}_fpn`;
    const backend = config.backend;
    const numClasses = config.numClasses ?? 91;
    if (!Number.isInteger(numClasses) || numClasses < 2) throw new InvalidArgumentError(`${this.name}: numClasses must be an integer >= 2 (background included), got ${String(numClasses)}`);
    this._bnEps = config.bnEps ?? 1e-5;
    if (!(this._bnEps >= 0)) throw new InvalidArgumentError(`${this.name}: bnEps must be >= 0, got ${String(config.bnEps)}`);
    const resnet = createModel(config.backbone, { ...config.backboneOptions, numClasses: 1, init: 'none', backend });
    if (resnet.family !== 'imagenet') throw new InvalidArgumentError(`${this.name}: backbone '${config.backbone}' is a CIFAR net; use an ImageNet-family arch (resnet18, resnet34, resnet50, resnet101, ...)`);
    this.transform = new GeneralizedRCNNTransform(config.transform);
    const C = config.fpnOutChannels ?? 256;
    this.backbone = this.registerModule('backbone', new BackboneWithFPN(resnet, C, backend));
    const anchorGenerator = new AnchorGenerator({
      sizes: config.anchorSizes ?? [[32], [64], [128], [256], [512]],
      aspectRatios: config.aspectRatios ?? [[0.5, 1.0, 2.0]],
    });
    const A = anchorGenerator.numAnchorsPerLocation();
    if (!A.every((a) => a === A[0])) throw new InvalidArgumentError(`${this.name}: every level needs the same number of anchors per location (the RPN head is shared), got ${A.join(', ')}`);
    this.rpn = this.registerModule('rpn', new RegionProposalNetwork(anchorGenerator, new RPNHead(C, A[0], { backend }), config.rpn));
    const pool = new MultiScaleRoIAlign({ featmapNames: ['0', '1', '2', '3'], outputSize: 7, samplingRatio: 2 });
    const R = config.representationSize ?? 1024;
    this.roiHeads = this.registerModule('roi_heads', new RoIHeads(pool, new TwoMLPHead(C * 49, R, { backend }), new FastRCNNPredictor(R, numClasses, { backend }), config.roiHeads));
    if (config.categories && config.categories.length !== numClasses) {
      throw new InvalidArgumentError(`${this.name}: ${config.categories.length} category names for ${numClasses} classes`);
    }
    this.categories = config.categories ? [...config.categories] : null;
    this.eval();
  }

  get numClasses(): number { return this.roiHeads.boxPredictor.numClasses; }
  get backend(): Backend { return this.backbone.body.resnet.conv1.weight.backend; }

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

  /** The FPN levels ('0'..'3', 'pool') of a batch [N, 3, H, W]. */
  features(images: ImageList): NamedMap[] {
    this.fused ??= fuseForInference(this.backbone.body.resnet, { bnEps: this._bnEps });
    const maps = this.fused.features(images.images);
    return this.backbone.fpn.levels(maps);
  }

  /** Every stage of a forward, in the resized images' coordinates (for tests and tools).
   *  Call inside tidy(). */
  stages(images: readonly FloatImage[]): DetectionStages {
    const list = this.transform.forward(images, this.backend);
    const levels = this.features(list);
    const padded: [number, number] = [list.images.shape[2], list.images.shape[3]];
    const proposals = this.rpn.propose(padded, list.imageSizes, levels);
    const detections = this.roiHeads.run(levels, proposals, list.imageSizes);
    return { list, levels, proposals, detections };
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
