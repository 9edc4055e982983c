// Output-size maths and argument checks for convolution and pooling, computed once here
// and never in a backend. Conventions are PyTorch's (floor mode, symmetric padding):
//   OH = floor((H + 2*padH - dilationH*(R-1) - 1) / strideH) + 1     (torch.nn.Conv2d docs)

import type { Conv2dGeometry, Pool2dGeometry, Shape } from '../backend/backend.js';
import { InvalidArgumentError, ShapeError } from '../errors.js';

/** @example const stride: Pair = [2, 1]; */
export type Pair = number | readonly [number, number];

function pair(op: string, name: string, v: Pair, min: number): [number, number] {
  const p: [number, number] = typeof v === 'number' ? [v, v] : [v[0], v[1]];
  if (!Array.isArray(v) && typeof v !== 'number') {
    throw new InvalidArgumentError(`${op}: '${name}' must be an integer or a pair of integers, got ${String(v)}`);
  }
  if (Array.isArray(v) && v.length !== 2) {
    throw new InvalidArgumentError(`${op}: '${name}' must be an integer or a pair of integers, got [${v.join(', ')}]`);
  }
  for (const x of p) {
    if (!Number.isInteger(x) || x < min) {
      throw new InvalidArgumentError(`${op}: '${name}' must be integer(s) >= ${min}, got ${typeof v === 'number' ? v : `[${p.join(', ')}]`}`);
    }
  }
  return p;
}

export function fmt(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

export function expectRank(op: string, name: string, shape: Shape, rank: number, letters: string): void {
  if (shape.length !== rank) {
    throw new ShapeError(`${op}: input '${name}' must be ${rank}-D [${letters}], got ${fmt(shape)}`);
  }
}

/** @example const o: Conv2dOptions = { stride: 2, padding: 3, dilation: 1, groups: 1 }; */
export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
}

/**
 * x: [N, C, H, W], w: [K, C/groups, R, S], bias: [K]
 * @example const g = conv2dGeometry([8, 3, 224, 224], [64, 3, 7, 7], null, { stride: 2, padding: 3 });  // output 112x112
 */
export function conv2dGeometry(x: Shape, w: Shape, bias: Shape | null, opts: Conv2dOptions = {}): Conv2dGeometry {
  const op = 'conv2d';
  expectRank(op, 'x', x, 4, 'N, C, H, W');
  expectRank(op, 'weight', w, 4, 'K, C/groups, R, S');
  const [strideH, strideW] = pair(op, 'stride', opts.stride ?? 1, 1);
  const [padH, padW] = pair(op, 'padding', opts.padding ?? 0, 0);
  const [dilationH, dilationW] = pair(op, 'dilation', opts.dilation ?? 1, 1);
  const groups = opts.groups ?? 1;
  if (!Number.isInteger(groups) || groups < 1) throw new InvalidArgumentError(`${op}: 'groups' must be an integer >= 1, got ${groups}`);
  const [N, C, H, W] = x;
  const [K, Cg, R, S] = w;
  if (C % groups !== 0 || K % groups !== 0) {
    throw new ShapeError(`${op}: in channels ${C} and out channels ${K} must both be divisible by groups=${groups} (x ${fmt(x)}, weight ${fmt(w)})`);
  }
  if (Cg !== C / groups) {
    throw new ShapeError(`${op}: weight ${fmt(w)} expects ${Cg * groups} input channels (C/groups=${Cg}, groups=${groups}) but x ${fmt(x)} has ${C}`);
  }
  if (bias && (bias.length !== 1 || bias[0] !== K)) {
    throw new ShapeError(`${op}: bias must be [${K}] (one per output channel of weight ${fmt(w)}), got ${fmt(bias)}`);
  }
  if (N < 1 || C < 1 || K < 1) throw new ShapeError(`${op}: empty tensor: x ${fmt(x)}, weight ${fmt(w)}`);
  const effR = dilationH * (R - 1) + 1;
  const effS = dilationW * (S - 1) + 1;
  if (effR > H + 2 * padH || effS > W + 2 * padW) {
    throw new ShapeError(`${op}: kernel ${R}x${S} (dilation ${dilationH}x${dilationW}, effective ${effR}x${effS}) is larger than the padded input ${H + 2 * padH}x${W + 2 * padW} (x ${fmt(x)}, padding ${padH}x${padW})`);
  }
  const OH = Math.floor((H + 2 * padH - effR) / strideH) + 1;
  const OW = Math.floor((W + 2 * padW - effS) / strideW) + 1;
  return { N, C, H, W, K, R, S, OH, OW, strideH, strideW, padH, padW, dilationH, dilationW, groups };
}

/** @example const o: Pool2dOptions = { kernelSize: 3, stride: 2, padding: 1 }; */
export interface Pool2dOptions {
  kernelSize: Pair;
  /** Defaults to kernelSize, as in PyTorch. */
  stride?: Pair;
  padding?: Pair;
}

/**
 * x: [N, C, H, W]
 * @example const g = pool2dGeometry('maxPool2d', [8, 64, 112, 112], { kernelSize: 3, stride: 2, padding: 1 });  // output 56x56
 */
export function pool2dGeometry(op: string, x: Shape, opts: Pool2dOptions): Pool2dGeometry {
  expectRank(op, 'x', x, 4, 'N, C, H, W');
  const [kernelH, kernelW] = pair(op, 'kernelSize', opts.kernelSize, 1);
  const [strideH, strideW] = pair(op, 'stride', opts.stride ?? opts.kernelSize, 1);
  const [padH, padW] = pair(op, 'padding', opts.padding ?? 0, 0);
  if (2 * padH > kernelH || 2 * padW > kernelW) {
    throw new InvalidArgumentError(`${op}: padding ${padH}x${padW} must be at most half the kernel ${kernelH}x${kernelW} (PyTorch's rule)`);
  }
  const [N, C, H, W] = x;
  if (kernelH > H + 2 * padH || kernelW > W + 2 * padW) {
    throw new ShapeError(`${op}: kernel ${kernelH}x${kernelW} is larger than the padded input ${H + 2 * padH}x${W + 2 * padW} (x ${fmt(x)})`);
  }
  const OH = Math.floor((H + 2 * padH - kernelH) / strideH) + 1;
  const OW = Math.floor((W + 2 * padW - kernelW) / strideW) + 1;
  return { N, C, H, W, OH, OW, kernelH, kernelW, strideH, strideW, padH, padW };
}
