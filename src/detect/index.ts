// Detection on ResNet backbones (issue 16): the ops (RoIAlign, RoIPool, interpolate, the
// detection losses, FrozenBatchNorm2d), datasets (COCO, Pascal VOC, synthetic Fashion-MNIST
// scenes) and evaluation (COCO box mAP as pycocotools, VOC AP as py-faster-rcnn).
// Layer: above models/, nn/, io/ and train/; below cli/ and serve/.

export * from './ops/index.js';
export * from './data/coco.js';
export * from './data/voc.js';
export * from './data/synth.js';
export * from './data/dataset.js';
export * from './data/json_text.js';
export * from './eval/coco_eval.js';
export * from './eval/voc_eval.js';
