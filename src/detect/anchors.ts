// Anchors of the RPN, as torchvision's AnchorGenerator (models/detection/anchor_utils.py,
// v0.14): per feature level, cell anchors centred on 0 (one per aspect ratio x size, ratio
// major; h = size * sqrt(ratio), w = size / sqrt(ratio), halved and rounded half to even as
// torch.round, all in float32), shifted to every location of the map by the level's stride,
// location major. The stride is the padded batch size divided (integer division) by the
// map's size, as torchvision computes it. Boxes are Float32Array rows (x1, y1, x2, y2).

import { InvalidArgumentError } from '../errors.js';

const f = Math.fround;

/** Round half to even (torch.round). */
function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** @example const o: AnchorGeneratorOptions = { sizes: [[32], [64], [128], [256], [512]], aspectRatios: [[0.5, 1, 2]] }; */
export interface AnchorGeneratorOptions {
  /** Anchor sizes per level (torchvision: ((32,), (64,), (128,), (256,), (512,)) for the FPN). */
  sizes: readonly (readonly number[])[];
  /** Aspect ratios (h / w) per level; one list is used for every level. */
  aspectRatios: readonly (readonly number[])[];
}

/**
 * @example
 * const gen = new AnchorGenerator({ sizes: [[32], [64]], aspectRatios: [[0.5, 1, 2]] });
 * const anchors = gen.gridAnchors([800, 1088], [[200, 272], [100, 136]]);  // 3 per location, level by level
 */
export class AnchorGenerator {
  readonly sizes: number[][];
  readonly aspectRatios: number[][];
  /** Per level: the cell anchors, 4 numbers each. */
  readonly cellAnchors: Float32Array[];

  constructor(opts: AnchorGeneratorOptions) {
    const { sizes } = opts;
    let ratios = opts.aspectRatios;
    if (!Array.isArray(sizes) || sizes.length === 0 || !sizes.every((s) => Array.isArray(s) && s.length > 0 && s.every((v) => v > 0))) {
      throw new InvalidArgumentError(`AnchorGenerator: 'sizes' must list positive sizes per level, e.g. [[32], [64], [128]], got ${JSON.stringify(sizes)}`);
    }
    if (Array.isArray(ratios) && ratios.length === 1 && sizes.length > 1) ratios = sizes.map(() => ratios[0]);
    if (!Array.isArray(ratios) || ratios.length !== sizes.length || !ratios.every((r) => Array.isArray(r) && r.length > 0 && r.every((v) => v > 0))) {
      throw new InvalidArgumentError(`AnchorGenerator: 'aspectRatios' must list positive ratios for each of the ${sizes.length} levels (or one list for all), got ${JSON.stringify(opts.aspectRatios)}`);
    }
    this.sizes = sizes.map((s) => [...s]);
    this.aspectRatios = ratios.map((r) => [...r]);
    this.cellAnchors = this.sizes.map((s, i) => generateCellAnchors(s, this.aspectRatios[i]));
  }

  /** Anchors per location of each level. */
  numAnchorsPerLocation(): number[] {
    return this.sizes.map((s, i) => s.length * this.aspectRatios[i].length);
  }

  /** The strides torchvision uses: padded image size // grid size, per level. */
  strides(imageSize: readonly [number, number], gridSizes: readonly (readonly [number, number])[]): [number, number][] {
    return gridSizes.map(([gh, gw]) => [Math.floor(imageSize[0] / gh), Math.floor(imageSize[1] / gw)]);
  }

  /** All anchors of a padded batch of size imageSize [H, W] for feature maps of gridSizes
   *  [[h, w], ...], level after level (the same for every image of the batch). */
  gridAnchors(imageSize: readonly [number, number], gridSizes: readonly (readonly [number, number])[]): Float32Array {
    if (gridSizes.length !== this.cellAnchors.length) {
      throw new InvalidArgumentError(`AnchorGenerator: ${gridSizes.length} feature maps but anchors for ${this.cellAnchors.length} levels; they must match`);
    }
    const strides = this.strides(imageSize, gridSizes);
    let total = 0;
    gridSizes.forEach(([h, w], i) => { total += h * w * this.cellAnchors[i].length / 4; });
    const out = new Float32Array(total * 4);
    let o = 0;
    gridSizes.forEach(([gh, gw], l) => {
      const [sh, sw] = strides[l];
      const base = this.cellAnchors[l];
      for (let y = 0; y < gh; y++) {
        for (let x = 0; x < gw; x++) {
          const sx = x * sw, sy = y * sh;
          for (let a = 0; a < base.length; a += 4) {
            out[o++] = f(sx + base[a]);
            out[o++] = f(sy + base[a + 1]);
            out[o++] = f(sx + base[a + 2]);
            out[o++] = f(sy + base[a + 3]);
          }
        }
      }
    });
    return out;
  }
}

/**
 * Cell anchors of one level (AnchorGenerator.generate_anchors): rows (-w/2, -h/2, w/2, h/2)
 * rounded half to even, ratio major.
 * @example generateCellAnchors([32], [0.5, 1, 2])  // [-23, -11, 23, 11, -16, -16, 16, 16, -11, -23, 11, 23]
 */
export function generateCellAnchors(scales: readonly number[], aspectRatios: readonly number[]): Float32Array {
  const out = new Float32Array(scales.length * aspectRatios.length * 4);
  let o = 0;
  for (const r of aspectRatios) {
    const hr = f(Math.sqrt(f(r)));
    const wr = f(1 / hr);
    for (const s of scales) {
      const ws = f(wr * f(s)), hs = f(hr * f(s));
      out[o++] = roundHalfEven(f(-ws / 2));
      out[o++] = roundHalfEven(f(-hs / 2));
      out[o++] = roundHalfEven(f(ws / 2));
      out[o++] = roundHalfEven(f(hs / 2));
    }
  }
  return out;
}
