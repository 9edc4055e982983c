// RoIAlign (He et al. 2017, Mask R-CNN, section 3), exactly as torchvision.ops.roi_align:
// each of OH x OW bins of a roi is the mean of gridH x gridW bilinear samples of x.
// Differentiable wrt x only (rois are boxes from the RPN, constants for the head).

import { record } from '../../tensor/autograd.js';
import { fromStorage, type Tensor } from '../../tensor/tensor.js';
import { roiGeometry, roisForBackward } from './rois.js';

/**
 * Options of {@link roiAlign}, named as torchvision's.
 * @example const o: RoiAlignOptions = { outputSize: 7, spatialScale: 1 / 16, samplingRatio: 2, aligned: false };
 */
export interface RoiAlignOptions {
  /** OH x OW of each roi's output, or one number for both. */
  outputSize: number | readonly [number, number];
  /** Box coordinates times this give feature-map coordinates (1 / stride). */
  spatialScale: number;
  /** Samples per bin side; <= 0 is adaptive: ceil(roi size / output size). */
  samplingRatio: number;
  /** Shift pixel centres by -0.5 (torchvision's aligned=True; the v1 detectors use false). */
  aligned: boolean;
}

/**
 * torchvision.ops.roi_align. x: [N, C, H, W] float32; rois: [K, 5] float32 rows
 * (batchIndex, x1, y1, x2, y2) in input-image coordinates. Returns [K, C, OH, OW];
 * differentiable wrt x. K = 0 gives [0, C, OH, OW].
 * @example
 * const feats = zeros([1, 256, 50, 68]);
 * const rois = tensor([0, 10, 20, 110, 90], [1, 5]);
 * const pooled = roiAlign(feats, rois, { outputSize: 7, spatialScale: 0.25, samplingRatio: 2, aligned: false });  // [1, 256, 7, 7]
 */
export function roiAlign(x: Tensor, rois: Tensor, opts: RoiAlignOptions): Tensor {
  const g = roiGeometry('roiAlign', x, rois, opts.outputSize, opts.spatialScale, opts.samplingRatio, opts.aligned === true);
  const be = x.backend;
  const y = fromStorage(be, be.roiAlign(x.storage, rois.storage, g), [g.K, g.C, g.OH, g.OW]);
  const owned = roisForBackward(x, rois);
  return record(y, 'roiAlign', [x],
    (dy) => [fromStorage(be, be.roiAlignBackward(dy.storage, owned[0].storage, g), x.shape)], owned);
}
