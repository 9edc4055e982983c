// Rebuilds the weights of the ResNet fixtures (scripts/make_fixtures.py: too big to store)
// bit for bit: element i of the k-th state-dict entry is center + half * (2u - 1) with
// u = (lowbias32(i + k * 0x9E3779B1) >> 8) / 2^24, in float64, rounded to float32. Also the
// gradient checksums the fixtures store instead of full gradients.

import assert from 'node:assert/strict';

export interface Checksum { sum: number; sumsq: number; sumabs: number; numel: number; idx: number[]; values: number[] }
export interface SpecEntry { key: string; shape: number[]; int?: boolean; seed?: number; center?: number; half?: number; check?: Checksum }
export interface ModelFixture {
  torch: string; x_shape: number[]; x_seed: number; labels: number[]; spec: SpecEntry[];
  eval_logits: number[]; logits: number[]; loss: number;
  grads: Record<string, Checksum>; running_after: Record<string, Checksum>;
  /** PyTorch's own float32 run against the stored float64 answer. */
  torch_float32_error: { eval_logits: number; logits: number; loss: number; grads: number };
}

function lowbias32(x: number): number {
  x >>>= 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  x ^= x >>> 16;
  return x >>> 0;
}

export function draw(numel: number, seed: number, center: number, half: number): Float32Array {
  const off = Math.imul(seed, 0x9e3779b1) >>> 0;
  const a = new Float32Array(numel);
  for (let i = 0; i < numel; i++) {
    const u = (lowbias32((i + off) >>> 0) >>> 8) / 16777216;
    a[i] = center + half * (2 * u - 1);
  }
  return a;
}

/** The fixture's state dict, each generated entry checked against the stored checksum. */
export function fixtureStateDict(fx: ModelFixture): Record<string, { data: Float32Array | Int32Array; shape: number[] }> {
  const sd: Record<string, { data: Float32Array | Int32Array; shape: number[] }> = {};
  for (const e of fx.spec) {
    if (e.int) { sd[e.key] = { data: Int32Array.of(0), shape: e.shape }; continue; }
    const n = e.shape.reduce((a, b) => a * b, 1);
    const data = draw(n, e.seed!, e.center!, e.half!);
    e.check!.idx.forEach((i, j) => assert.equal(data[i], e.check!.values[j], `generated ${e.key}[${i}] differs from PyTorch's`));
    sd[e.key] = { data, shape: e.shape };
  }
  return sd;
}

/** The worst relative error of `actual` against a stored checksum: sampled elements relative
 *  to max(|expected|, floor * rms) (the fixture script's measure), the sum relative to
 *  sum |g|, and the sum of squares relative to itself. */
export function checksumError(actual: ArrayLike<number>, c: Checksum, floor = 0.1): { err: number; detail: string } {
  assert.equal(actual.length, c.numel, `${actual.length} elements, expected ${c.numel}`);
  let sum = 0; let sumsq = 0;
  for (let i = 0; i < actual.length; i++) { sum += actual[i]; sumsq += actual[i] * actual[i]; }
  const rms = Math.sqrt(c.sumsq / Math.max(1, c.numel));
  let err = 0; let detail = 'exact';
  c.idx.forEach((i, j) => {
    const e = c.values[j];
    const r = Math.abs(actual[i] - e) / Math.max(Math.abs(e), floor * rms, 1e-30);
    if (!(r <= err)) { err = r; detail = `element [${i}] = ${actual[i]}, expected ${e}`; }
  });
  const sumErr = Math.abs(sum - c.sum) / Math.max(c.sumabs, 1e-30);
  if (!(sumErr <= err)) { err = sumErr; detail = `sum ${sum}, expected ${c.sum} (sum |g| ${c.sumabs})`; }
  const sqErr = Math.abs(sumsq - c.sumsq) / Math.max(c.sumsq, 1e-30) / 2;
  if (!(sqErr <= err)) { err = sqErr; detail = `sum of squares ${sumsq}, expected ${c.sumsq}`; }
  return { err, detail };
}

export function assertChecksum(actual: ArrayLike<number>, c: Checksum, tol: number, what: string): number {
  const { err, detail } = checksumError(actual, c);
  assert.ok(err <= tol, `${what}: relative error ${err.toExponential(2)} > ${tol}: ${detail}`);
  return err;
}

/** Fills a model with fast generated weights (the fixture generator, seeded per tensor):
 *  He-uniform convs, PyTorch-default linear layers, BN gamma in [1 - spread, 1 + spread]
 *  and beta in [-spread/2, spread/2] (default spread 0.5). Much faster than He-normal init
 *  for the biggest nets. */
export function randomizeWeights(model: { namedParameters(): [string, { shape: readonly number[] }][]; loadStateDict(sd: Record<string, { data: Float32Array; shape: number[] }>, o: { strict: boolean }): unknown }, seed: number, spread = 0.5): void {
  const sd: Record<string, { data: Float32Array; shape: number[] }> = {};
  model.namedParameters().forEach(([k, p], i) => {
    const shape = [...p.shape];
    const n = shape.reduce((a, b) => a * b, 1);
    let center = 0; let half: number;
    if (shape.length === 4) half = Math.sqrt(6 / (shape[1] * shape[2] * shape[3]));
    else if (shape.length === 2) half = 1 / Math.sqrt(shape[1]);
    else if (/(^|\.)(fc|linear)\.bias$/.test(k)) half = 0.1;
    else if (k.endsWith('weight')) { center = 1; half = spread; } else half = spread / 2;
    sd[k] = { data: draw(n, seed * 100003 + i, center, half), shape };
  });
  model.loadStateDict(sd, { strict: false });
}
