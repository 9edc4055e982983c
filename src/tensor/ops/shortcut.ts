// The option A shortcut of He et al. 2015 (section 4.2): subsample by the stride and pad zero
// channels, `(K - C) / 2` (floored) of them first, as the CIFAR code's
// F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes // 4)). Data movement in x's own
// layout and precision; the backward moves dy's data channels back.

import type { ShortcutAGeometry } from '../../backend/backend.js';
import { InvalidArgumentError } from '../../errors.js';
import { record } from '../autograd.js';
import { expectRank, fmt } from '../geometry.js';
import { fromStorage, type Tensor } from '../tensor.js';
import { expectDtype } from './check.js';

/** The geometry of option A on an input of `shape` ([N, C, H, W]).
 * @example shortcutAGeometry([8, 16, 32, 32], 32, 2)  // { ..., OH: 16, OW: 16, before: 8 } */
export function shortcutAGeometry(shape: readonly number[], outChannels: number, stride: number): ShortcutAGeometry {
  expectRank('shortcutA', 'x', shape, 4, 'N, C, H, W');
  const [N, C, H, W] = shape;
  if (!Number.isInteger(stride) || stride < 1) throw new InvalidArgumentError(`shortcutA: 'stride' must be an integer >= 1, got ${stride}`);
  if (!Number.isInteger(outChannels) || outChannels < C) {
    throw new InvalidArgumentError(`shortcutA: option A pads channels and cannot reduce them: x ${fmt(shape)} to ${outChannels} channels`);
  }
  return { N, C, H, W, K: outChannels, OH: Math.floor((H - 1) / stride) + 1, OW: Math.floor((W - 1) / stride) + 1, stride, before: Math.floor((outChannels - C) / 2) };
}

/** x [N, C, H, W] -> [N, outChannels, ceil(H / stride), ceil(W / stride)].
 *  @example const y = shortcutA(x, 32, 2);  // x: [N, 16, 32, 32] -> [N, 32, 16, 16] */
export function shortcutA(x: Tensor, outChannels: number, stride: number): Tensor {
  expectDtype('shortcutA', 'x', x, 'float32');
  const g = shortcutAGeometry(x.shape, outChannels, stride);
  const be = x.backend;
  const y = fromStorage(be, be.shortcutA(x.storage, g), [g.N, g.K, g.OH, g.OW]);
  return record(y, 'shortcutA', [x], (dy) => [fromStorage(be, be.shortcutABackward(dy.storage, g), x.shape)]);
}
