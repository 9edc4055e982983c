// The fast path for the common recipes: an optional per-pixel mean subtraction first (the
// paper's), crops (random with padding, or centre) and flips, then ToTensor, normalize and
// random erasing, written straight into the batch buffer with no intermediate images. It draws random numbers in the same order as
// applyTransforms and computes the same float32 values (a 256-entry table per channel), so
// both paths give identical batches (tested); anything else takes the general path.

import type { ImageRecord } from './dataset.js';
import type { Random } from './random.js';
import { centerCropOffsets, randomErasingBox, type Transform } from './transforms.js';

type Geometric = Extract<Transform, { kind: 'randomCrop' | 'centerCrop' | 'randomHorizontalFlip' }>;
type Erasing = Extract<Transform, { kind: 'randomErasing' }>;
type MeanImage = Extract<Transform, { kind: 'subtractMeanImage' }>;

export interface FusedPlan {
  /** Subtracted before the geometric ops (so padding is 0 = the mean); excludes normalize. */
  meanImage: MeanImage | null;
  geometric: Geometric[];
  mean: number[] | null;
  std: number[] | null;
  erasing: Erasing[];
  /** Per channel count of the table: 256 float32 values each, built for a given C. */
  luts: Map<number, Float32Array>;
}

/** A plan when the transforms fit the fast path's shape, else null. */
export function planFused(transforms: readonly Transform[]): FusedPlan | null {
  let i = 0;
  let meanImage: MeanImage | null = null;
  if (transforms.length > 0 && transforms[0].kind === 'subtractMeanImage') meanImage = transforms[i++] as MeanImage;
  const geometric: Geometric[] = [];
  while (i < transforms.length) {
    const t = transforms[i];
    if (t.kind !== 'randomCrop' && t.kind !== 'centerCrop' && t.kind !== 'randomHorizontalFlip') break;
    geometric.push(t);
    i++;
  }
  let mean: number[] | null = null;
  let std: number[] | null = null;
  if (meanImage === null && i < transforms.length && transforms[i].kind === 'normalize') {
    const t = transforms[i] as Extract<Transform, { kind: 'normalize' }>;
    mean = t.mean;
    std = t.std;
    i++;
  }
  const erasing: Erasing[] = [];
  while (i < transforms.length && transforms[i].kind === 'randomErasing') erasing.push(transforms[i++] as Erasing);
  return i === transforms.length ? { meanImage, geometric, mean, std, erasing, luts: new Map() } : null;
}

function lut(plan: FusedPlan, C: number): Float32Array | null {
  let t = plan.luts.get(C);
  if (t !== undefined) return t;
  if (plan.mean !== null && plan.mean.length !== 1 && plan.mean.length !== C) return null;
  t = new Float32Array(256 * C);
  for (let c = 0; c < C; c++) {
    for (let v = 0; v < 256; v++) {
      const x = Math.fround(v / 255);
      if (plan.mean === null || plan.std === null) { t[c * 256 + v] = x; continue; }
      const m = Math.fround(plan.mean.length === 1 ? plan.mean[0] : plan.mean[c]);
      const s = Math.fround(plan.std.length === 1 ? plan.std[0] : plan.std[c]);
      t[c * 256 + v] = Math.fround(x - m) / s;
    }
  }
  plan.luts.set(C, t);
  return t;
}

/** The output [C, H, W] of the plan for an input, or null when the general path must run (it reports errors). */
export function fusedShape(plan: FusedPlan, img: ImageRecord): [number, number, number] | null {
  let h = img.height;
  let w = img.width;
  const m = plan.meanImage;
  if (m !== null && (m.channels !== img.channels || m.height !== h || m.width !== w)) return null;
  for (const t of plan.geometric) {
    if (t.kind === 'randomCrop') {
      if (h + 2 * t.padding < t.size[0] || w + 2 * t.padding < t.size[1]) return null;
      [h, w] = t.size;
    } else if (t.kind === 'centerCrop') {
      [h, w] = t.size;
    }
  }
  return lut(plan, img.channels) === null ? null : [img.channels, h, w];
}

/** Writes the transformed image into out[offset ..]; call fusedShape first. */
export function applyFused(plan: FusedPlan, img: ImageRecord, rng: Random, out: Float32Array, offset: number): void {
  const { channels: C, height: H, width: W, data } = img;
  // Output pixel (y, x) reads source (y + top, ax * x + bx): crops shift, flips mirror.
  let top = 0;
  let ax = 1;
  let bx = 0;
  let h = H;
  let w = W;
  for (const t of plan.geometric) {
    if (t.kind === 'randomCrop') {
      const [th, tw] = t.size;
      const ph = h + 2 * t.padding;
      const pw = w + 2 * t.padding;
      const i = ph === th ? 0 : rng.int(ph - th + 1);
      const j = pw === tw ? 0 : rng.int(pw - tw + 1);
      top += i - t.padding;
      bx += ax * (j - t.padding);
      h = th; w = tw;
    } else if (t.kind === 'centerCrop') {
      const [ch, cw] = t.size;
      if (ch === h && cw === w) continue;
      const [i, j] = centerCropOffsets(h, w, ch, cw);
      top += i;
      bx += ax * j;
      h = ch; w = cw;
    } else if (rng.next() < t.p) {
      bx += ax * (w - 1);
      ax = -ax;
    }
  }
  const table = lut(plan, C)!;
  const plane = h * w;
  const meanImage = plan.meanImage?.mean ?? null;
  if (meanImage !== null) {
    // x / 255 - mean[c, sy, sx] in float32; padding is 0 (it was added after the subtraction).
    for (let c = 0; c < C; c++) {
      const src = c * H * W;
      for (let y = 0; y < h; y++) {
        const sy = y + top;
        const o = offset + c * plane + y * w;
        if (sy < 0 || sy >= H) { out.fill(0, o, o + w); continue; }
        const row = src + sy * W;
        for (let x = 0; x < w; x++) {
          const sx = ax * x + bx;
          out[o + x] = sx >= 0 && sx < W ? table[c * 256 + data[row + sx]] - meanImage[row + sx] : 0;
        }
      }
    }
  }
  for (let c = 0; c < C && meanImage === null; c++) {
    const tc = c * 256;
    const zero = table[tc];
    const src = c * H * W;
    for (let y = 0; y < h; y++) {
      const sy = y + top;
      const o = offset + c * plane + y * w;
      if (sy < 0 || sy >= H) {
        out.fill(zero, o, o + w);
        continue;
      }
      const row = src + sy * W;
      for (let x = 0; x < w; x++) {
        const sx = ax * x + bx;
        out[o + x] = sx >= 0 && sx < W ? table[tc + data[row + sx]] : zero;
      }
    }
  }
  for (const t of plan.erasing) {
    if (!(rng.next() < t.p)) continue;
    const box = randomErasingBox(h, w, t.scale, t.ratio, rng);
    if (box === null) continue;
    const [i, j, eh, ew] = box;
    for (let c = 0; c < C; c++) {
      for (let y = i; y < i + eh; y++) {
        const o = offset + c * plane + y * w;
        out.fill(t.value, o + j, o + j + ew);
      }
    }
  }
}
