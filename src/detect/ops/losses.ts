// The two detection losses, as torch.nn.functional.smooth_l1_loss and
// binary_cross_entropy_with_logits (PyTorch 1.13, no weights): Faster R-CNN's box
// regression and objectness losses. Their inputs are small (a few hundred values), so they
// are computed on the host in float64 from a float32 copy and written back with the
// backend's fromArray; the backward likewise. Works on every backend; differentiable wrt
// both arguments (the target's gradient is rarely wanted, but torch has it).

import { InvalidArgumentError } from '../../errors.js';
import { record } from '../../tensor/autograd.js';
import { expectDtype, expectSameShape, sameBackend } from '../../tensor/ops/check.js';
import { tensor, type Tensor } from '../../tensor/tensor.js';

/**
 * torch's reduction: 'mean' (default) and 'sum' give a scalar (shape []), 'none' the elementwise loss.
 * @example const r: Reduction = 'sum';
 */
export type Reduction = 'sum' | 'mean' | 'none';

function reductionOf(op: string, r: Reduction | undefined): Reduction {
  const v = r ?? 'mean';
  if (v !== 'sum' && v !== 'mean' && v !== 'none') {
    throw new InvalidArgumentError(`${op}: 'reduction' must be 'sum', 'mean' or 'none', got ${String(r)}`);
  }
  return v;
}

/** The loss from elementwise values `l` (float64), and the backward from the elementwise
 *  derivatives wrt input (`d`) and target (`dt`), shaped per the reduction. */
function elementwiseLoss(op: string, input: Tensor, target: Tensor, red: Reduction, l: Float64Array,
  d: Float64Array, dt: Float64Array): Tensor {
  const be = input.backend;
  const n = l.length;
  let y: Tensor;
  if (red === 'none') {
    y = tensor(Float32Array.from(l), input.shape, { backend: be });
  } else {
    let s = 0;
    for (let i = 0; i < n; i++) s += l[i];
    y = tensor([red === 'mean' ? s / n : s], [], { backend: be });
  }
  return record(y, op, [input, target], (dy) => {
    const g = dy.toFloat32Array();
    const gi = new Float32Array(n), gt = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const u = red === 'none' ? g[i] : red === 'mean' ? g[0] / n : g[0];
      gi[i] = u * d[i];
      gt[i] = u * dt[i];
    }
    return [
      input.requiresGrad ? tensor(gi, input.shape, { backend: be }) : null,
      target.requiresGrad ? tensor(gt, target.shape, { backend: be }) : null,
    ];
  });
}

function check(op: string, input: Tensor, target: Tensor): void {
  sameBackend(op, input, target);
  expectDtype(op, 'input', input, 'float32');
  expectDtype(op, 'target', target, 'float32');
  expectSameShape(op, input, target);
}

/**
 * F.smooth_l1_loss: with z = |input - target|, 0.5 * z^2 / beta where z < beta, else
 * z - 0.5 * beta (beta 0: the L1 loss). Faster R-CNN uses beta 1/9 (RPN) and 1 with 'sum'.
 * @example
 * const loss = smoothL1Loss(tensor([0.5, 2], [2]), tensor([0, 0], [2]), { beta: 1 / 9, reduction: 'sum' });
 */
export function smoothL1Loss(input: Tensor, target: Tensor, opts: { beta?: number; reduction?: Reduction } = {}): Tensor {
  const op = 'smoothL1Loss';
  check(op, input, target);
  const red = reductionOf(op, opts.reduction);
  const beta = opts.beta ?? 1;
  if (typeof beta !== 'number' || !(beta >= 0) || !Number.isFinite(beta)) {
    throw new InvalidArgumentError(`${op}: 'beta' must be a finite number >= 0, got ${String(beta)}`);
  }
  const x = input.toFloat32Array(), t = target.toFloat32Array();
  const n = x.length;
  const l = new Float64Array(n), d = new Float64Array(n), dt = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const diff = x[i] - t[i], z = Math.abs(diff);
    if (beta > 0 && z < beta) {
      l[i] = (0.5 * z * z) / beta;
      d[i] = diff / beta;
    } else {
      l[i] = z - 0.5 * beta;
      d[i] = Math.sign(diff);
    }
    dt[i] = -d[i];
  }
  return elementwiseLoss(op, input, target, red, l, d, dt);
}

/**
 * F.binary_cross_entropy_with_logits (no weight, no pos_weight), in torch's stable form
 * (1 - t) * x + m + log(exp(-m) + exp(-x - m)) with m = max(-x, 0); d/dx = sigmoid(x) - t.
 * @example
 * const loss = binaryCrossEntropyWithLogits(tensor([2.5, -1], [2]), tensor([1, 0], [2]));  // mean
 */
export function binaryCrossEntropyWithLogits(input: Tensor, target: Tensor, opts: { reduction?: Reduction } = {}): Tensor {
  const op = 'binaryCrossEntropyWithLogits';
  check(op, input, target);
  const red = reductionOf(op, opts.reduction);
  const x = input.toFloat32Array(), t = target.toFloat32Array();
  const n = x.length;
  const l = new Float64Array(n), d = new Float64Array(n), dt = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const m = Math.max(-x[i], 0);
    l[i] = (1 - t[i]) * x[i] + m + Math.log(Math.exp(-m) + Math.exp(-x[i] - m));
    d[i] = 1 / (1 + Math.exp(-x[i])) - t[i];
    dt[i] = -x[i];
  }
  return elementwiseLoss(op, input, target, red, l, d, dt);
}
