// Detection on ResNet backbones (issue 16): Faster R-CNN as torchvision builds it (FPN v1 and
// v2, the paper's C4; box utilities, anchors, transform, RPN, RoI heads, weights, detect(),
// training: targets, losses, setup, trainDetector),
// the ops (RoIAlign, RoIPool, interpolate, the detection losses, FrozenBatchNorm2d), datasets (COCO, Pascal VOC, synthetic Fashion-MNIST
// scenes) and evaluation (COCO box mAP as pycocotools, VOC AP as py-faster-rcnn).
// Layer: above models/, nn/, io/ and train/; below cli/ and serve/.

export * from './boxes.js';
export * from './anchors.js';
export * from './transform.js';
export * from './fpn.js';
export * from './rpn.js';
export * from './roi_heads.js';
export * from './faster_rcnn.js';
export * from './models.js';
export * from './weights.js';
export * from './load.js';
export * from './train/run.js';
export * from './train/targets.js';
export * from './train/losses.js';
export * from './train/setup.js';
export * from './train/trainer.js';
export * from './predict.js';
export * from './draw.js';
export * from './ops/index.js';
export * from './data/coco.js';
export * from './data/voc.js';
export * from './data/synth.js';
export * from './data/dataset.js';
export * from './data/json_text.js';
export * from './eval/coco_eval.js';
export * from './eval/voc_eval.js';
