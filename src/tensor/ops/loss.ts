// Mean softmax cross-entropy with label smoothing, as torch.nn.CrossEntropyLoss
// (target = (1 - s) * onehot + s / K). The node owns the softmax probabilities, which are
// all the backward needs: dlogits = dloss * (probs - target) / N.

import { ShapeError } from '../../errors.js';
import { record } from '../autograd.js';
import { expectRank, fmt } from '../geometry.js';
import { fromStorage, type Tensor } from '../tensor.js';
import { expectDtype, sameBackend } from './check.js';
import { InvalidArgumentError } from '../../errors.js';

/** @example const o: CrossEntropyOptions = { labelSmoothing: 0.1 }; */
export interface CrossEntropyOptions {
  labelSmoothing?: number;
}

/**
 * logits: [N, K] float32, labels: [N] int32 in [0, K) -> scalar mean loss.
 * @example
 * const loss = crossEntropy(model.forward(x), tensor([3, 1], [2], { dtype: 'int32' }), { labelSmoothing: 0.1 });
 * loss.backward();
 */
export function crossEntropy(logits: Tensor, labels: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  const op = 'crossEntropy';
  sameBackend(op, logits, labels);
  expectDtype(op, 'logits', logits, 'float32');
  expectDtype(op, 'labels', labels, 'int32');
  expectRank(op, 'logits', logits.shape, 2, 'N, K');
  const [N, K] = logits.shape;
  if (labels.shape.length !== 1 || labels.shape[0] !== N) {
    throw new ShapeError(`${op}: labels must be [${N}] (one per row of logits ${fmt(logits.shape)}), got ${fmt(labels.shape)}`);
  }
  const s = opts.labelSmoothing ?? 0;
  if (!(s >= 0 && s <= 1)) throw new InvalidArgumentError(`${op}: labelSmoothing must be in [0, 1], got ${s}`);
  const lab = labels.toArray();
  for (let i = 0; i < N; i++) {
    if (lab[i] < 0 || lab[i] >= K) throw new InvalidArgumentError(`${op}: label ${lab[i]} at index ${i} is out of range [0, ${K})`);
  }
  const be = logits.backend;
  const r = be.softmaxCrossEntropy(logits.storage, labels.storage, N, K, s);
  const loss = fromStorage(be, r.loss, []);
  const probs = fromStorage(be, r.probs, [N, K]);
  return record(loss, op, [logits], (dy) => {
    const scale = dy.item();
    return [fromStorage(be, be.softmaxCrossEntropyBackward(probs.storage, labels.storage, N, K, s, scale), [N, K])];
  }, [probs]);
}
