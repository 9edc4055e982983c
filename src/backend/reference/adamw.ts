// Reference fused AdamW step, in place, exactly PyTorch 1.13's torch.optim.AdamW (see
// AdamwParams in backend.ts for the formulas and their order). On float32 arrays every
// operation is rounded to float32 (Math.fround), as PyTorch's float32 tensor ops round, so
// the native loop agrees to the bit; on float64 arrays (the tests) nothing is rounded.

import type { AdamwParams } from '../backend.js';
import { InvalidArgumentError } from '../../errors.js';
import type { FloatArray } from './array.js';

const exact = (v: number): number => v;

/** Updates `param`, `expAvg`, `expAvgSq` (and `maxExpAvgSq` with amsgrad) in place. */
export function adamwUpdate(
  param: FloatArray,                  // param: any shape
  grad: FloatArray,                   // grad: like param
  expAvg: FloatArray,                 // m: like param
  expAvgSq: FloatArray,               // v: like param
  maxExpAvgSq: FloatArray | null,     // vmax: like param; null unless amsgrad
  p: AdamwParams,
): void {
  const { lr, beta1, beta2, eps, weightDecay, step, amsgrad } = p;
  if (amsgrad && maxExpAvgSq === null) throw new InvalidArgumentError("adamwUpdate: amsgrad needs 'maxExpAvgSq', got null");
  if (!Number.isInteger(step) || step < 1) throw new InvalidArgumentError(`adamwUpdate: 'step' must be an integer >= 1, got ${step}`);
  const r = param instanceof Float32Array ? Math.fround : exact;
  // The Python-float scalars of torch's _single_tensor_adamw, rounded once to the tensor type.
  const decay = r(1 - lr * weightDecay);
  const b1 = r(beta1);
  const b2 = r(beta2);
  const keep1 = r(1 - beta1);
  const keep2 = r(1 - beta2);
  const bc2Sqrt = r(Math.sqrt(1 - beta2 ** step));
  const negStepSize = r(-(lr / (1 - beta1 ** step)));
  const epsT = r(eps);
  for (let i = 0; i < param.length; i++) {
    const g = grad[i];
    const w = r(param[i] * decay);
    const m = r(r(expAvg[i] * b1) + r(keep1 * g));
    const v = r(r(expAvgSq[i] * b2) + r(r(keep2 * g) * g));
    expAvg[i] = m;
    expAvgSq[i] = v;
    let s = v;
    if (amsgrad) {
      s = Math.max(maxExpAvgSq![i], v);
      maxExpAvgSq![i] = s;
    }
    const denom = r(r(r(Math.sqrt(s)) / bc2Sqrt) + epsT);
    param[i] = r(w + r(r(negStepSize * m) / denom));
  }
}
