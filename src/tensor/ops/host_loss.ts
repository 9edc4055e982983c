// A loss computed on the host: the inputs are read back, `fn` returns the loss value and its
// gradient with respect to each input (as torch.autograd.Function's forward and backward in
// one), and the result is a scalar tensor in the graph whose backward hands those gradients,
// scaled by the incoming one, to the inputs. For losses whose indexing (sampled anchors,
// per-class box columns) has no kernel: the detection losses. The gradients are held by the
// graph until backward() or until the graph is dropped.

import { ShapeError } from '../../errors.js';
import { record } from '../autograd.js';
import { fromStorage, type Tensor } from '../tensor.js';
import { expectDtype } from './check.js';

/** What a host loss computes from its inputs' values.
 * @example const fn: HostLossFn = ([x]) => ({ value: x.reduce((s, v) => s + v * v, 0), grads: [x.map((v) => 2 * v)] });
 */
export type HostLossFn = (values: Float32Array[]) => { value: number; grads: (Float32Array | null)[] };

/**
 * A scalar loss of `inputs` computed by `fn` on the host, differentiable through the given
 * gradients.
 * @example
 * const loss = hostLoss('sum_of_squares', [x], ([v]) => ({ value: v.reduce((s, a) => s + a * a, 0), grads: [v.map((a) => 2 * a)] }));
 * loss.backward();  // x.grad = 2x
 */
export function hostLoss(op: string, inputs: readonly Tensor[], fn: HostLossFn): Tensor {
  for (const [i, t] of inputs.entries()) expectDtype(op, `input ${i}`, t, 'float32');
  const be = inputs[0].backend;
  const { value, grads } = fn(inputs.map((t) => t.toFloat32Array()));
  grads.forEach((g, i) => {
    if (g !== null && g.length !== inputs[i].numel) throw new ShapeError(`${op}: gradient ${i} has ${g.length} values for an input of ${inputs[i].numel}`);
  });
  const y = fromStorage(be, be.fromArray(Float32Array.of(value), [], 'float32'), []);
  return record(y, op, inputs, (dy) => {
    const s = dy.item();
    return inputs.map((t, i) => {
      const g = grads[i];
      if (g === null || g === undefined) return null;
      const scaled = s === 1 ? g : g.map((v) => v * s);
      return fromStorage(t.backend, t.backend.fromArray(scaled, t.shape, 'float32'), t.shape);
    });
  });
}
