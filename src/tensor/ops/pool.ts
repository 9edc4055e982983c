// Max, average and global average pooling over [N, C, H, W], as PyTorch's F.max_pool2d,
// F.avg_pool2d and nn.AdaptiveAvgPool2d(1). Max pool's backward needs only what the
// backend saved (argmax or oneDNN's workspace); the node owns it.

import { record } from '../autograd.js';
import { expectRank, pool2dGeometry, type Pool2dOptions } from '../geometry.js';
import { fromStorage, type Tensor } from '../tensor.js';
import { expectDtype } from './check.js';

/** @example const y = maxPool2d(x, { kernelSize: 3, stride: 2, padding: 1 }); */
export function maxPool2d(x: Tensor, opts: Pool2dOptions): Tensor {
  expectDtype('maxPool2d', 'x', x, 'float32');
  const g = pool2dGeometry('maxPool2d', x.shape, opts);
  const be = x.backend;
  const r = be.maxPool2d(x.storage, g);
  const y = fromStorage(be, r.y, [g.N, g.C, g.OH, g.OW]);
  const saved = fromStorage(be, r.saved, [0]);
  return record(y, 'maxPool2d', [x], (dy) => [fromStorage(be, be.maxPool2dBackward(dy.storage, saved.storage, g), x.shape)], [saved]);
}

/** @example const o: AvgPool2dOptions = { kernelSize: 2, stride: 2, countIncludePad: false }; */
export interface AvgPool2dOptions extends Pool2dOptions {
  /** PyTorch's count_include_pad (default true). */
  countIncludePad?: boolean;
}

/** @example const y = avgPool2d(x, { kernelSize: 2, stride: 2 }); */
export function avgPool2d(x: Tensor, opts: AvgPool2dOptions): Tensor {
  expectDtype('avgPool2d', 'x', x, 'float32');
  const g = pool2dGeometry('avgPool2d', x.shape, opts);
  const cip = opts.countIncludePad ?? true;
  const be = x.backend;
  const y = fromStorage(be, be.avgPool2d(x.storage, g, cip), [g.N, g.C, g.OH, g.OW]);
  return record(y, 'avgPool2d', [x], (dy) => [fromStorage(be, be.avgPool2dBackward(dy.storage, g, cip), x.shape)]);
}

/**
 * [N, C, H, W] -> [N, C, 1, 1], the mean over each map (AdaptiveAvgPool2d(1)).
 * @example const pooled = globalAvgPool2d(x);  // [N, C, 1, 1]
 */
export function globalAvgPool2d(x: Tensor): Tensor {
  expectRank('globalAvgPool2d', 'x', x.shape, 4, 'N, C, H, W');
  return avgPool2d(x, { kernelSize: [x.shape[2], x.shape[3]] });
}
