// Parameter-free layers: ReLU and Identity (torch.nn names).

import type { Shape } from '../backend/backend.js';
import { relu } from '../tensor/ops/relu.js';
import type { Tensor } from '../tensor/tensor.js';
import { Module, ShapeTrace } from './module.js';

/** @example const y = new ReLU().forward(x); */
export class ReLU extends Module {
  override forward(x: Tensor): Tensor {
    return relu(x);
  }

  override traceShape(shape: Shape, _trace: ShapeTrace = new ShapeTrace()): number[] {
    return [...shape];
  }
}

/**
 * Returns its input unchanged (the same tensor).
 * @example const y = new Identity().forward(x);  // x
 */
export class Identity extends Module {
  override forward(x: Tensor): Tensor {
    return x;
  }

  override traceShape(shape: Shape, _trace: ShapeTrace = new ShapeTrace()): number[] {
    return [...shape];
  }
}
