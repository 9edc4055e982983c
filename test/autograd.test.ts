// The tape and the memory scopes: what backward computes and frees, what tidy keeps.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  add, affine, backendByName, conv2d, DisposedError, keep, liveTensors, mul, noGrad, relu, sum, tensor, tidy,
  InvalidArgumentError, mean,
} from '../src/index.js';
import { describeEachBackend } from './helpers/backends.js';

describeEachBackend('autograd', (backend) => {
  test('gradients of a shared input accumulate (x*x + x)', () => {
    const x = tensor([1, -2, 3], [3], { backend, requiresGrad: true });
    tidy(() => sum(add(mul(x, x), x)).backward());
    assert.deepEqual([...x.grad!.toArray()], [3, -3, 7]);
    // A second backward (new graph) adds to .grad, as PyTorch does.
    tidy(() => sum(affine(x, 2, 1)).backward());
    assert.deepEqual([...x.grad!.toArray()], [5, -1, 9]);
    x.dispose();
  });

  test('add passes one gradient to both inputs without aliasing', () => {
    const a = tensor([1, 2], [2], { backend, requiresGrad: true });
    const b = tensor([3, 4], [2], { backend, requiresGrad: true });
    tidy(() => sum(relu(add(a, b))).backward());
    assert.deepEqual([...a.grad!.toArray()], [1, 1]);
    assert.deepEqual([...b.grad!.toArray()], [1, 1]);
    assert.notEqual(a.grad, b.grad);
    a.dispose(); b.dispose();
  });

  test('a gradient shared by two inputs is summed, never written while another holds it', () => {
    // add(x, x): one dy for both inputs, the same tensor; add(u, x) with u = 3x: the
    // residual fork (dy reaches x directly and through u, summed after u's backward).
    const x = tensor([1, -2], [2], { backend, requiresGrad: true });
    tidy(() => sum(add(x, x)).backward());
    assert.deepEqual([...x.grad!.toArray()], [2, 2]);
    x.grad!.dispose();
    x.grad = null;
    const before = liveTensors();
    tidy(() => sum(mul(add(affine(x, 3, 0), x), x)).backward());
    // d/dx (4x * x) = 8x
    assert.deepEqual([...x.grad!.toArray()], [8, -16]);
    assert.equal(liveTensors(), before + 1, 'only x.grad is new: no gradient leaked');
    // The caller's gradient is passed through add to both leaves: each gets its own copy,
    // the caller's tensor is neither changed nor freed.
    const a = tensor([1, 2], [2], { backend, requiresGrad: true });
    const b = tensor([3, 4], [2], { backend, requiresGrad: true });
    const g = tensor([5, 6], [2], { backend });
    tidy(() => add(a, b).backward(g));
    assert.deepEqual([...a.grad!.toArray()], [5, 6]);
    assert.deepEqual([...b.grad!.toArray()], [5, 6]);
    assert.notEqual(a.grad, b.grad);
    assert.notEqual(a.grad, g);
    assert.deepEqual([...g.toArray()], [5, 6]);
    tidy(() => add(a, b).backward(g));
    assert.deepEqual([...a.grad!.toArray()], [10, 12]);
    assert.deepEqual([...g.toArray()], [5, 6]);
    for (const t of [x, a, b, g]) t.dispose();
  });

  test('mean is the composite sum / n', () => {
    const x = tensor([2, 4, 6, 8], [4], { backend, requiresGrad: true });
    const m = tidy(() => { const m = mean(x); m.backward(); return m.item(); });
    assert.equal(m, 5);
    assert.deepEqual([...x.grad!.toArray()], [0.25, 0.25, 0.25, 0.25]);
    x.dispose();
  });

  test('noGrad records nothing; backward on it is a clear error', () => {
    const x = tensor([1, 2], [2], { backend, requiresGrad: true });
    tidy(() => {
      const y = noGrad(() => sum(mul(x, x)));
      assert.equal(y.requiresGrad, false);
      assert.equal(y.gradFn, null);
      assert.throws(() => y.backward(), InvalidArgumentError);
    });
    x.dispose();
  });

  test('a graph is used once: a second backward through it says so', () => {
    const x = tensor([1, 2], [2], { backend, requiresGrad: true });
    tidy(() => {
      const h = mul(x, x);
      const y1 = sum(h);
      const y2 = sum(affine(h, 3, 0));
      y1.backward();
      assert.throws(() => y2.backward(), /already used by an earlier backward/);
    });
    x.dispose();
  });

  test('tidy frees everything it made except the result and kept tensors', () => {
    const before = liveTensors();
    const liveBefore = backend.live().count;
    const w = tensor([0.5, -1, 2, 1], [1, 1, 2, 2], { backend, requiresGrad: true });
    let kept = null as ReturnType<typeof tensor> | null;
    const out = tidy(() => {
      const x = tensor(Array.from({ length: 16 }, (_, i) => i - 8), [1, 1, 4, 4], { backend });
      const y = relu(conv2d(x, w, null, { padding: 1 }));
      kept = keep(affine(y, 2, 0));
      const loss = sum(y);
      loss.backward();
      return loss;
    });
    assert.equal(liveTensors(), before + 4, 'w, w.grad, the result and the kept tensor remain');
    assert.ok(w.grad && !w.grad.disposed, 'the leaf gradient outlives the scope');
    assert.equal(out.disposed, false);
    for (const t of [out, kept!, w]) t.dispose();
    assert.equal(liveTensors(), before);
    assert.equal(backend.live().count, liveBefore, 'every storage was freed');
  });

  test('tidy frees on throw, and using a disposed tensor is a clear error', () => {
    const before = liveTensors();
    assert.throws(() => tidy(() => { tensor([1], [1], { backend }); throw new Error('boom'); }), /boom/);
    assert.equal(liveTensors(), before);
    const t = tensor([1, 2], [2], { backend });
    t.dispose();
    t.dispose(); // idempotent
    assert.throws(() => t.toArray(), DisposedError);
  });
});

test('tensors of different backends do not mix', () => {
  const a = tensor([1], [1], { backend: backendByName('reference') });
  const b = tensor([1], [1], { backend: backendByName('native') });
  assert.throws(() => add(a, b), /different backends/);
  a.dispose(); b.dispose();
});
