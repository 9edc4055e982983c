// RoIPool (Girshick 2015, Fast R-CNN, section 2.1), exactly as torchvision.ops.roi_pool:
// each of OH x OW bins of a roi (rounded to whole feature-map cells) is its maximum; an
// empty bin is 0. The backward routes each gradient to its bin's argmax, which the node owns.

import { record } from '../../tensor/autograd.js';
import { fromStorage, type Tensor } from '../../tensor/tensor.js';
import { roiGeometry, roisForBackward } from './rois.js';

/**
 * Options of {@link roiPool}, named as torchvision's.
 * @example const o: RoiPoolOptions = { outputSize: [7, 7], spatialScale: 1 / 16 };
 */
export interface RoiPoolOptions {
  outputSize: number | readonly [number, number];
  spatialScale: number;
}

/**
 * torchvision.ops.roi_pool. x: [N, C, H, W] float32; rois: [K, 5] float32 rows
 * (batchIndex, x1, y1, x2, y2). Returns [K, C, OH, OW]; differentiable wrt x.
 * @example
 * const feats = zeros([2, 512, 38, 50]);
 * const rois = tensor([1, 0, 0, 160, 160], [1, 5]);
 * const pooled = roiPool(feats, rois, { outputSize: 7, spatialScale: 1 / 16 });  // [1, 512, 7, 7]
 */
export function roiPool(x: Tensor, rois: Tensor, opts: RoiPoolOptions): Tensor {
  const g = roiGeometry('roiPool', x, rois, opts.outputSize, opts.spatialScale, 0, false);
  const be = x.backend;
  const r = be.roiPool(x.storage, rois.storage, g);
  const y = fromStorage(be, r.y, [g.K, g.C, g.OH, g.OW]);
  const saved = fromStorage(be, r.saved, [g.K, g.C, g.OH, g.OW], 'int32');
  const owned = roisForBackward(x, rois);
  return record(y, 'roiPool', [x],
    (dy) => [fromStorage(be, be.roiPoolBackward(dy.storage, owned[0].storage, saved.storage, g), x.shape)],
    [saved, ...owned]);
}
