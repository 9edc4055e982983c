// Parameter: a float32 leaf tensor that requires a gradient by default and belongs to a
// Module (torch.nn.Parameter). It is `keep`-ed at birth, so building a model inside a
// `tidy` never frees its weights; it lives until the module's dispose().

import type { Backend, Shape } from '../backend/backend.js';
import { numel } from '../backend/backend.js';
import { getBackend } from '../backend/index.js';
import { ShapeError } from '../errors.js';
import { keep } from '../tensor/scope.js';
import { Tensor } from '../tensor/tensor.js';

/** @example const frozen = new Parameter(new Float32Array(4), [4], { requiresGrad: false } satisfies ParameterOptions); */
export interface ParameterOptions {
  /** Defaults to the current default backend. */
  backend?: Backend;
  /** Defaults to true; false freezes it (no gradient is computed for it). */
  requiresGrad?: boolean;
}

/**
 * A trainable tensor owned by a module.
 * @example const w = new Parameter(new Float32Array(6), [2, 3]); // requiresGrad: true
 */
export class Parameter extends Tensor {
  constructor(data: ArrayLike<number>, shape: Shape, opts: ParameterOptions = {}) {
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) throw new ShapeError(`Parameter: shape must hold non-negative integers, got [${shape.join(', ')}]`);
    }
    if (data.length !== numel(shape)) {
      throw new ShapeError(`Parameter: ${data.length} values do not fill shape [${shape.join(', ')}] (${numel(shape)} elements)`);
    }
    const backend = opts.backend ?? getBackend();
    const values = data instanceof Float32Array ? data : Float32Array.from(data);
    super(backend, backend.fromArray(values, shape, 'float32'), shape, 'float32', opts.requiresGrad ?? true);
    keep(this);
  }
}
