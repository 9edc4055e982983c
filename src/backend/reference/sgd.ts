// Reference fused SGD step, in place, exactly PyTorch's torch.optim.SGD (see SgdParams in
// backend.ts): weight decay folded into the gradient, momentum buffer (initialised to the
// first step's d), optional dampening and Nesterov, then p -= lr * d. Each element is
// computed in float64 and stored back in the arrays' type.

import type { SgdParams } from '../backend.js';
import { InvalidArgumentError } from '../../errors.js';
import type { FloatArray } from './array.js';

/** Updates `param` (and `buf` when momentum != 0) in place. */
export function sgdUpdate(
  param: FloatArray,      // param: any shape
  grad: FloatArray,       // grad: like param
  buf: FloatArray | null, // buf: like param; null when momentum == 0
  p: SgdParams,
): void {
  const { lr, momentum, dampening, weightDecay, nesterov, initBuffer } = p;
  if (momentum !== 0 && buf === null) {
    throw new InvalidArgumentError(`sgdUpdate: momentum ${momentum} needs a buffer 'buf', got null`);
  }
  for (let i = 0; i < param.length; i++) {
    let d = grad[i] + weightDecay * param[i];
    if (buf !== null && momentum !== 0) {
      const b = initBuffer ? d : momentum * buf[i] + (1 - dampening) * d;
      buf[i] = b;
      // NOTE: Nesterov reads the buffer as stored (rounded to its type), as PyTorch does.
      d = nesterov ? d + momentum * buf[i] : buf[i];
    }
    param[i] = param[i] - lr * d;
  }
}
