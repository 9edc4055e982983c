// Detection ops (torchvision.ops and what Faster R-CNN needs of torch.nn.functional), each
// differentiable wrt its feature input. Primitives and their derivatives (dy = gradient of
// the output):
//
//   roiAlign(x, rois)        dx = each bin's dy / count spread over its samples' 4 corners with their bilinear weights
//   roiPool(x, rois)         dx = each bin's dy routed to its argmax (none for an empty bin)
//   interpolate(x)           dx = each dy sent back to the input pixels it read, with the same weights
//   smoothL1Loss(x, t)       dx = dy * (|x - t| < beta ? (x - t) / beta : sign(x - t)); dt = -dx   (/ n for 'mean')
//   bceWithLogits(x, t)      dx = dy * (sigmoid(x) - t); dt = -dy * x                                  (/ n for 'mean')
// Composite: FrozenBatchNorm2d (the inference-mode batchNorm op, gamma and beta frozen).
// rois are constants (no gradient).

export { roiAlign, type RoiAlignOptions } from './roi_align.js';
export { roiPool, type RoiPoolOptions } from './roi_pool.js';
export { interpolate, interpolateGeometry, type InterpolateOptions } from './interpolate.js';
export { smoothL1Loss, binaryCrossEntropyWithLogits, type Reduction } from './losses.js';
export { FrozenBatchNorm2d } from './frozen_bn.js';
