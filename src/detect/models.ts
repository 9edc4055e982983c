// The registry of detection archs: each name is torchvision's builder with its defaults as
// named options (faster_rcnn.py, v0.14): min_size 800, max_size 1333, image mean/std of
// ImageNet, anchors (32..512) x (0.5, 1, 2), RPN 2000/2000 train and 1000/1000 test, NMS
// 0.7, box score 0.05, box NMS 0.5, 100 detections, 91 COCO classes. resnet18/34 FPN nets
// are torchvision's resnet_fpn_backbone over those trunks (FPN inputs 64..512 channels).
// fasterrcnn_resnet50_fpn_v2 (Li et al. 2021's recipe, torchvision's v2 builder) adds
// BatchNorm to the FPN and the 4-conv + 1-fc box head and a second RPN conv.
// The C4 archs (He et al. 2015's detector) take the same RPN / box settings with one map at
// stride 16, 15 anchors per location (sizes 32..512 x ratios 0.5, 1, 2) and 14x14 RoIAlign;
// resnet18/34 C4 nets are the same over the basic-block trunks (layer4's 512 features per
// region), for small machines.

import { InvalidArgumentError } from '../errors.js';
import { FasterRCNN, type FasterRCNNConfig } from './faster_rcnn.js';
import { COCO_CATEGORIES } from './predict.js';

/** @example const o: DetectorOptions = { numClasses: 3, categories: ['__background__', 'cat', 'dog'] }; */
export type DetectorOptions = Partial<Omit<FasterRCNNConfig, 'backbone'>>;

const ARCHS: Record<string, { backbone: string; head: 'fpn' | 'c4'; v2?: boolean }> = {
  fasterrcnn_resnet18_fpn: { backbone: 'resnet18', head: 'fpn' },
  fasterrcnn_resnet34_fpn: { backbone: 'resnet34', head: 'fpn' },
  fasterrcnn_resnet50_fpn: { backbone: 'resnet50', head: 'fpn' },
  fasterrcnn_resnet101_fpn: { backbone: 'resnet101', head: 'fpn' },
  fasterrcnn_resnet50_fpn_v2: { backbone: 'resnet50', head: 'fpn', v2: true },
  fasterrcnn_resnet18_c4: { backbone: 'resnet18', head: 'c4' },
  fasterrcnn_resnet34_c4: { backbone: 'resnet34', head: 'c4' },
  fasterrcnn_resnet50_c4: { backbone: 'resnet50', head: 'c4' },
  fasterrcnn_resnet101_c4: { backbone: 'resnet101', head: 'c4' },
};

/** @example DETECTION_ARCHS.includes('fasterrcnn_resnet50_fpn')  // true */
export const DETECTION_ARCHS: readonly string[] = Object.keys(ARCHS);

/**
 * torchvision's defaults of an arch, as a FasterRCNNConfig.
 * @example const c = detectorConfig('fasterrcnn_resnet50_fpn');  // { backbone: 'resnet50', numClasses: 91, ... }
 */
export function detectorConfig(arch: string, opts: DetectorOptions = {}): FasterRCNNConfig {
  const a = ARCHS[arch];
  if (!a) throw new InvalidArgumentError(`unknown detection arch '${arch}'; valid: ${DETECTION_ARCHS.join(', ')}`);
  const numClasses = opts.numClasses ?? 91;
  return {
    name: arch,
    backbone: a.backbone,
    head: a.head,
    v2: a.v2 ?? false,
    numClasses,
    fpnOutChannels: 256,
    representationSize: 1024,
    bnEps: 1e-5,
    anchorSizes: a.head === 'c4' ? [[32, 64, 128, 256, 512]] : [[32], [64], [128], [256], [512]],
    aspectRatios: [[0.5, 1.0, 2.0]],
    transform: { minSize: 800, maxSize: 1333, imageMean: [0.485, 0.456, 0.406], imageStd: [0.229, 0.224, 0.225], sizeDivisible: 32 },
    rpn: { preNmsTopN: 1000, postNmsTopN: 1000, nmsThresh: 0.7, scoreThresh: 0, minSize: 1e-3 },
    roiHeads: { scoreThresh: 0.05, nmsThresh: 0.5, detectionsPerImg: 100, bboxRegWeights: [10, 10, 5, 5] },
    categories: numClasses === 91 ? COCO_CATEGORIES : undefined,
    ...opts,
  };
}

/**
 * A detector by arch name, weights zero until loaded (loadDetectionWeights).
 * @example const model = createDetector('fasterrcnn_resnet50_fpn', { bnEps: 0 });
 */
export function createDetector(arch: string, opts: DetectorOptions = {}): FasterRCNN {
  return new FasterRCNN(detectorConfig(arch, opts));
}
