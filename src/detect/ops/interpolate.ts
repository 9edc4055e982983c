// Resizing of [N, C, H, W] maps as torch.nn.functional.interpolate (PyTorch 1.13) in its
// 'nearest' and 'bilinear' modes: the output size and which scale reaches the kernel are
// resolved here, as F.interpolate does in Python; the kernels follow ATen's
// upsample_nearest2d / upsample_bilinear2d. Differentiable wrt x.
// NOTE: with scaleFactor and no recomputeScaleFactor, the kernel maps output to input with
// 1 / scaleFactor (ATen's compute_scales_value); with recomputeScaleFactor (torchvision's
// GeneralizedRCNNTransform) or an explicit size it uses H / OH. The two differ when
// H * scaleFactor is not a whole number.

import type { InterpolateGeometry } from '../../backend/backend.js';
import { InvalidArgumentError } from '../../errors.js';
import { record } from '../../tensor/autograd.js';
import { expectRank, fmt } from '../../tensor/geometry.js';
import { expectDtype } from '../../tensor/ops/check.js';
import { fromStorage, type Tensor } from '../../tensor/tensor.js';

/**
 * Options of {@link interpolate}, named as F.interpolate's; give exactly one of size and scaleFactor.
 * @example const o: InterpolateOptions = { scaleFactor: 1.5, mode: 'bilinear', alignCorners: false, recomputeScaleFactor: true };
 */
export interface InterpolateOptions {
  /** [OH, OW] (or one number for both). */
  size?: number | readonly [number, number];
  /** OH = floor(H * scaleFactor[0]), OW = floor(W * scaleFactor[1]). */
  scaleFactor?: number | readonly [number, number];
  mode: 'nearest' | 'bilinear';
  /** bilinear only (default false): corner pixels' centres align, as torch's align_corners. */
  alignCorners?: boolean;
  /** With scaleFactor: the kernel uses H / OH instead of 1 / scaleFactor (torch's recompute_scale_factor). */
  recomputeScaleFactor?: boolean;
}

const OP = 'interpolate';

function pairOf(name: string, v: number | readonly [number, number]): [number, number] {
  if (typeof v === 'number') return [v, v];
  if (Array.isArray(v) && v.length === 2) return [v[0], v[1]];
  throw new InvalidArgumentError(`${OP}: '${name}' must be a number or a pair of numbers, got ${String(v)}`);
}

/**
 * Checks a shape and the options and resolves the output size and the scales the kernel uses.
 * @example const { OH, OW } = interpolateGeometry([1, 3, 480, 640], { scaleFactor: 800 / 480, mode: 'bilinear', recomputeScaleFactor: true });  // 800, 1066
 */
export function interpolateGeometry(shape: readonly number[], opts: InterpolateOptions): InterpolateGeometry {
  expectRank(OP, 'x', shape, 4, 'N, C, H, W');
  const [N, C, H, W] = shape;
  const { mode } = opts;
  if (mode !== 'nearest' && mode !== 'bilinear') {
    throw new InvalidArgumentError(`${OP}: 'mode' must be 'nearest' or 'bilinear', got ${String(mode)}`);
  }
  if (opts.alignCorners !== undefined && mode !== 'bilinear') {
    throw new InvalidArgumentError(`${OP}: 'alignCorners' can only be set with mode 'bilinear', got mode '${mode}'`);
  }
  if (H < 1 || W < 1) throw new InvalidArgumentError(`${OP}: input 'x' must have H, W >= 1, got ${fmt(shape)}`);
  const hasSize = opts.size !== undefined, hasScale = opts.scaleFactor !== undefined;
  if (hasSize === hasScale) {
    throw new InvalidArgumentError(`${OP}: give exactly one of 'size' and 'scaleFactor', got ${hasSize ? 'both' : 'neither'}`);
  }
  let OH: number, OW: number, scaleH: number | null = null, scaleW: number | null = null;
  if (hasSize) {
    if (opts.recomputeScaleFactor) throw new InvalidArgumentError(`${OP}: 'recomputeScaleFactor' is not meaningful with an explicit 'size'`);
    [OH, OW] = pairOf('size', opts.size!);
    if (!Number.isInteger(OH) || !Number.isInteger(OW) || OH < 1 || OW < 1) {
      throw new InvalidArgumentError(`${OP}: 'size' must be integers >= 1, got [${OH}, ${OW}]`);
    }
  } else {
    const [sh, sw] = pairOf('scaleFactor', opts.scaleFactor!);
    if (!(Number.isFinite(sh) && sh > 0 && Number.isFinite(sw) && sw > 0)) {
      throw new InvalidArgumentError(`${OP}: 'scaleFactor' must be finite numbers > 0, got [${sh}, ${sw}]`);
    }
    OH = Math.floor(H * sh);
    OW = Math.floor(W * sw);
    if (OH < 1 || OW < 1) {
      throw new InvalidArgumentError(`${OP}: 'scaleFactor' [${sh}, ${sw}] gives output size [${OH}, ${OW}] from ${fmt(shape)}; it must be >= 1`);
    }
    if (!opts.recomputeScaleFactor) { scaleH = sh; scaleW = sw; }
  }
  return { N, C, H, W, OH, OW, mode, alignCorners: mode === 'bilinear' && opts.alignCorners === true, scaleH, scaleW };
}

/**
 * torch.nn.functional.interpolate on [N, C, H, W] float32, modes 'nearest' and 'bilinear'.
 * @example
 * const img = zeros([1, 3, 480, 640]);
 * const resized = interpolate(img, { scaleFactor: 800 / 480, mode: 'bilinear', recomputeScaleFactor: true });  // [1, 3, 800, 1066]
 * const up = interpolate(zeros([1, 256, 25, 34]), { size: [50, 68], mode: 'nearest' });               // FPN top-down
 */
export function interpolate(x: Tensor, opts: InterpolateOptions): Tensor {
  expectDtype(OP, 'x', x, 'float32');
  const g = interpolateGeometry(x.shape, opts);
  const be = x.backend;
  const y = fromStorage(be, be.interpolate(x.storage, g), [g.N, g.C, g.OH, g.OW]);
  return record(y, OP, [x], (dy) => [fromStorage(be, be.interpolateBackward(dy.storage, g), x.shape)]);
}
