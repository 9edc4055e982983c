// Pooling layers: MaxPool2d, AvgPool2d and AdaptiveAvgPool2d(1) (torch.nn names), over the
// pool ops; no parameters. Output sizes come from tensor/geometry.ts (floor mode).

import type { Shape } from '../backend/backend.js';
import { InvalidArgumentError } from '../errors.js';
import { avgPool2d, globalAvgPool2d, maxPool2d } from '../tensor/ops/pool.js';
import { expectRank, pool2dGeometry, type Pair, type Pool2dOptions } from '../tensor/geometry.js';
import type { Tensor } from '../tensor/tensor.js';
import { Module, ShapeTrace } from './module.js';

function show(p: Pair | undefined): string {
  return p === undefined ? 'None' : typeof p === 'number' ? String(p) : `(${p[0]}, ${p[1]})`;
}

/** @example new MaxPool2d({ kernelSize: 3, stride: 2, padding: 1 }) // torchvision's stem pool */
export class MaxPool2d extends Module {
  constructor(readonly options: Pool2dOptions) {
    super();
    pool2dGeometry('MaxPool2d', [1, 1, 1e9, 1e9], options); // validates the options now
  }

  override forward(x: Tensor): Tensor {
    return maxPool2d(x, this.options);
  }

  override traceShape(shape: Shape, _trace: ShapeTrace = new ShapeTrace()): number[] {
    const g = pool2dGeometry('maxPool2d', shape, this.options);
    return [g.N, g.C, g.OH, g.OW];
  }

  override extraRepr(): string {
    return `kernel_size=${show(this.options.kernelSize)}, stride=${show(this.options.stride ?? this.options.kernelSize)}, padding=${show(this.options.padding ?? 0)}`;
  }
}

/** @example const pool = new AvgPool2d({ kernelSize: 2, stride: 2, countIncludePad: false } satisfies AvgPool2dLayerOptions); */
export interface AvgPool2dLayerOptions extends Pool2dOptions {
  /** PyTorch's count_include_pad (default true). */
  countIncludePad?: boolean;
}

/** @example const y = new AvgPool2d({ kernelSize: 2 }).forward(x); */
export class AvgPool2d extends Module {
  constructor(readonly options: AvgPool2dLayerOptions) {
    super();
    pool2dGeometry('AvgPool2d', [1, 1, 1e9, 1e9], options);
  }

  override forward(x: Tensor): Tensor {
    return avgPool2d(x, this.options);
  }

  override traceShape(shape: Shape, _trace: ShapeTrace = new ShapeTrace()): number[] {
    const g = pool2dGeometry('avgPool2d', shape, this.options);
    return [g.N, g.C, g.OH, g.OW];
  }

  override extraRepr(): string {
    return `kernel_size=${show(this.options.kernelSize)}, stride=${show(this.options.stride ?? this.options.kernelSize)}, padding=${show(this.options.padding ?? 0)}`;
  }
}

/** The mean over each map: [N, C, H, W] -> [N, C, 1, 1]. Only output size 1 (the ResNet
 *  head) is supported.
 * @example const pooled = new AdaptiveAvgPool2d(1).forward(x);  // [N, C, 1, 1]
 */
export class AdaptiveAvgPool2d extends Module {
  constructor(readonly outputSize: Pair = 1) {
    super();
    const [h, w] = typeof outputSize === 'number' ? [outputSize, outputSize] : outputSize;
    if (h !== 1 || w !== 1) throw new InvalidArgumentError(`AdaptiveAvgPool2d: only outputSize 1 (global average pooling) is supported, got ${show(outputSize)}`);
  }

  override forward(x: Tensor): Tensor {
    return globalAvgPool2d(x);
  }

  override traceShape(shape: Shape, _trace: ShapeTrace = new ShapeTrace()): number[] {
    expectRank('AdaptiveAvgPool2d', 'x', shape, 4, 'N, C, H, W');
    return [shape[0], shape[1], 1, 1];
  }

  override extraRepr(): string {
    return 'output_size=(1, 1)';
  }
}
