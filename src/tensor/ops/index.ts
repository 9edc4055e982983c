// The differentiable ops. Primitives and their derivatives (dy = gradient of the output):
//
//   conv2d(x, w, b)         dx = conv2dBackwardData(dy, w); dw, db = conv2dBackwardWeights(x, dy)
//   batchNorm (train)       dx, dgamma, dbeta from x, batch mean and variance (Ioffe & Szegedy 2015, alg. 1)
//   batchNorm (infer)       dx = dy * gamma / sqrt(runningVar + eps); dgamma = sum(dy * xhat); dbeta = sum(dy)
//   relu(x)                 dx = dy * [y > 0]
//   add(a, b)               da = dy; db = dy
//   addRelu(a, b)           da = db = dy * [y > 0]
//   mul(a, b)               da = dy * b; db = dy * a
//   affine(x, alpha, beta)  dx = alpha * dy
//   maxPool2d(x)            dx = dy routed to each window's argmax
//   avgPool2d(x)            dx = dy spread evenly over each window (divisor per count_include_pad)
//   linear(x, w, b)         dx = dy w; dw = dy^T x; db = sum_n dy
//   reshape(x)              dx = reshape(dy, x.shape)
//   crossEntropy(z, y)      dz = dloss * (softmax(z) - target) / N
//   sum(x)                  dx = dy broadcast
// Composite (no hand-written gradient): mean, addScalar, mulScalar, flatten, globalAvgPool2d.
//   hostLoss(xs, fn)        dxs = the gradients fn computed on the host, times dy
// Not differentiable: sgdStep, adamwStep (the optimisers' in-place updates), topk, softmax and
// argmax (helpers on logits read back to JS), conv2dFused (inference only).

export { conv2d, conv2dFused, type Conv2dFusedOptions, type Conv2dPrecisionOptions } from './conv2d.js';
export { batchNorm, type BatchNormOptions } from './batch_norm.js';
export { relu } from './relu.js';
export { add, addRelu, mul, affine, addScalar, mulScalar } from './elementwise.js';
export { maxPool2d, avgPool2d, globalAvgPool2d, type AvgPool2dOptions } from './pool.js';
export { linear } from './linear.js';
export { reshape, flatten } from './reshape.js';
export { crossEntropy, type CrossEntropyOptions } from './loss.js';
export { sum, mean } from './reduce.js';
export { sgdStep, sgdStepMany, type SgdStepOptions } from './sgd.js';
export { adamwStep, type AdamwMoments } from './adamw.js';
export { topk, topkAccuracy, type TopK } from './topk.js';
export { softmax, argmax } from './softmax.js';
export { hostLoss, type HostLossFn } from './host_loss.js';
