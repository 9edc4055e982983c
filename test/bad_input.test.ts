// Bad input gets a clear error naming the op and the shapes, on every backend, and the
// process goes on.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  add, avgPool2d, batchNorm, conv2d, crossEntropy, DTypeError, InvalidArgumentError, linear, maxPool2d, reshape,
  sgdStep, ShapeError, tensor, tidy, zeros,
} from '../src/index.js';
import { describeEachBackend } from './helpers/backends.js';

describeEachBackend('bad input', (backend) => {
  const z = (shape: number[]) => zeros(shape, { backend });

  test('conv2d: mismatched channels names both shapes', () => tidy(() => {
    assert.throws(() => conv2d(z([1, 3, 8, 8]), z([4, 2, 3, 3])),
      (e: Error) => e instanceof ShapeError && /conv2d/.test(e.message) && /\[4, 2, 3, 3\]/.test(e.message) && /\[1, 3, 8, 8\]/.test(e.message));
  }));

  test('conv2d: wrong rank', () => tidy(() => {
    assert.throws(() => conv2d(z([3, 8, 8]), z([4, 3, 3, 3])), /conv2d: input 'x' must be 4-D \[N, C, H, W\], got \[3, 8, 8\]/);
  }));

  test('conv2d: kernel larger than the padded input', () => tidy(() => {
    assert.throws(() => conv2d(z([1, 3, 4, 4]), z([4, 3, 7, 7]), null, { padding: 1 }), /kernel 7x7.*larger than the padded input 6x6/);
  }));

  test('conv2d: non-integer stride, bad groups, wrong bias', () => tidy(() => {
    assert.throws(() => conv2d(z([1, 3, 8, 8]), z([4, 3, 3, 3]), null, { stride: 1.5 }), InvalidArgumentError);
    assert.throws(() => conv2d(z([1, 3, 8, 8]), z([4, 1, 3, 3]), null, { groups: 3 }), /divisible by groups=3/);
    assert.throws(() => conv2d(z([1, 3, 8, 8]), z([4, 3, 3, 3]), z([5])), /bias must be \[4\]/);
  }));

  test('dtype mismatch', () => tidy(() => {
    const xi = tensor(new Int32Array(64), [1, 1, 8, 8], { backend, dtype: 'int32' });
    assert.throws(() => conv2d(xi, z([1, 1, 3, 3])), (e: Error) => e instanceof DTypeError && /conv2d: 'x' must be float32, got int32/.test(e.message));
    assert.throws(() => crossEntropy(z([2, 3]), z([2])), /crossEntropy: 'labels' must be int32/);
  }));

  test('labels out of range, shape mismatches in add, linear, batchNorm, reshape, pools', () => tidy(() => {
    const labels = tensor(Int32Array.from([0, 3]), [2], { backend, dtype: 'int32' });
    assert.throws(() => crossEntropy(z([2, 3]), labels), /label 3 at index 1 is out of range \[0, 3\)/);
    assert.throws(() => add(z([2, 3]), z([3, 2])), /add: shapes must match, got \[2, 3\] and \[3, 2\]/);
    assert.throws(() => linear(z([2, 5]), z([3, 4])), /linear: x \[2, 5\] has 5 features but weight \[3, 4\] expects 4/);
    assert.throws(() => batchNorm(z([2, 4, 3, 3]), z([3]), z([4]), null, null, { training: true }), /'weight' must be \[4\]/);
    assert.throws(() => batchNorm(z([1, 4, 1, 1]), z([4]), z([4]), null, null, { training: true }), /more than one value per channel/);
    assert.throws(() => reshape(z([2, 3]), [4, 2]), /cannot view \[2, 3\] \(6 elements\) as \[4, 2\]/);
    assert.throws(() => maxPool2d(z([1, 1, 2, 2]), { kernelSize: 3 }), /maxPool2d: kernel 3x3 is larger than the padded input 2x2/);
    assert.throws(() => avgPool2d(z([1, 1, 8, 8]), { kernelSize: 2, padding: 2 }), /at most half the kernel/);
  }));

  test('sgd: nesterov without momentum, missing buffer', () => tidy(() => {
    const p = z([3]);
    assert.throws(() => sgdStep(p, z([3]), null, { lr: 0.1, momentum: 0, dampening: 0, weightDecay: 0, nesterov: true }), /nesterov needs momentum > 0/);
    assert.throws(() => sgdStep(p, z([3]), null, { lr: 0.1, momentum: 0.9, dampening: 0, weightDecay: 0, nesterov: false }), /needs a momentum buffer/);
    assert.throws(() => sgdStep(p, z([4]), z([3]), { lr: 0.1, momentum: 0.9, dampening: 0, weightDecay: 0, nesterov: false }), /shapes must match/);
  }));

  test('tensor(): data that does not fill the shape', () => {
    assert.throws(() => tensor([1, 2, 3], [2, 2], { backend }), /3 values do not fill shape \[2, 2\]/);
  });
});
