// Training targets of Faster R-CNN, as torchvision's det_utils (v0.14): the Matcher (each
// prediction's best ground truth by IoU, -1 below the low threshold, -2 between the two,
// optionally giving every ground truth its best predictions back: "low-quality matches"),
// the BalancedPositiveNegativeSampler (a fixed number of samples per image with at most a
// fraction of positives, drawn at random) and the labels and box-regression targets of
// anchors (RPN) and proposals (box head). Everything runs on the host in float32.
// Departure: the sampler's random draw is our seeded Random, not torch.randperm.

import { InvalidArgumentError } from '../../errors.js';
import { Random } from '../../data/random.js';
import { boxIou, takeRows, type BoxCoder } from '../boxes.js';

/** A prediction whose best IoU is below the low threshold. @example BELOW_LOW_THRESHOLD  // -1 */
export const BELOW_LOW_THRESHOLD = -1;
/** A prediction whose best IoU is between the thresholds (ignored). @example BETWEEN_THRESHOLDS  // -2 */
export const BETWEEN_THRESHOLDS = -2;

/**
 * torchvision's det_utils.Matcher.
 * @example
 * const matcher = new Matcher(0.7, 0.3, true);  // the RPN's
 * const gtBoxes = new Float32Array([10, 10, 50, 60]), anchors = new Float32Array([12, 8, 48, 58, 100, 100, 120, 130]);
 * const matches = matcher.match(boxIou(gtBoxes, anchors), gtBoxes.length / 4);  // per anchor: gt index, -1 or -2
 */
export class Matcher {
  constructor(readonly highThreshold: number, readonly lowThreshold: number, readonly allowLowQualityMatches = false) {
    if (!(lowThreshold <= highThreshold)) throw new InvalidArgumentError(`Matcher: lowThreshold ${lowThreshold} must be <= highThreshold ${highThreshold}`);
  }

  /** `quality` is [G, P] row-major (ground truth x prediction, as box_iou(gt, pred)). */
  match(quality: Float32Array, G: number): Int32Array {
    if (G === 0) throw new InvalidArgumentError('Matcher: no ground-truth boxes (the caller handles an image without objects)');
    const P = quality.length / G;
    const matches = new Int32Array(P);
    const vals = new Float32Array(P);
    for (let p = 0; p < P; p++) {
      let best = quality[p], arg = 0;
      for (let g = 1; g < G; g++) {
        const v = quality[g * P + p];
        if (v > best) { best = v; arg = g; }
      }
      vals[p] = best;
      matches[p] = arg;
    }
    const all = this.allowLowQualityMatches ? matches.slice() : null;
    for (let p = 0; p < P; p++) {
      if (vals[p] < this.lowThreshold) matches[p] = BELOW_LOW_THRESHOLD;
      else if (vals[p] < this.highThreshold) matches[p] = BETWEEN_THRESHOLDS;
    }
    if (all) {
      // Every prediction tied for a ground truth's best IoU gets its own best match back
      // (set_low_quality_matches_), even when that best IoU is 0.
      for (let g = 0; g < G; g++) {
        let best = -Infinity;
        for (let p = 0; p < P; p++) best = Math.max(best, quality[g * P + p]);
        for (let p = 0; p < P; p++) if (quality[g * P + p] === best) matches[p] = all[p];
      }
    }
    return matches;
  }
}

/** Sampled indices of one image. @example const { pos, neg }: Sampled = new BalancedPositiveNegativeSampler(256, 0.5).sample(Int32Array.of(1, 0, 0, -1), new Random(0)); */
export interface Sampled { pos: Int32Array; neg: Int32Array }

/**
 * torchvision's BalancedPositiveNegativeSampler: up to batchSizePerImage * positiveFraction
 * positives (label >= 1), the rest negatives (label 0); label -1 is never drawn.
 * @example const { pos, neg } = new BalancedPositiveNegativeSampler(512, 0.25).sample(Int32Array.of(2, 0, 0, 1), new Random(7));
 */
export class BalancedPositiveNegativeSampler {
  constructor(readonly batchSizePerImage: number, readonly positiveFraction: number) {
    if (!Number.isInteger(batchSizePerImage) || batchSizePerImage < 1) throw new InvalidArgumentError(`BalancedPositiveNegativeSampler: batchSizePerImage must be an integer >= 1, got ${String(batchSizePerImage)}`);
    if (!(positiveFraction > 0 && positiveFraction <= 1)) throw new InvalidArgumentError(`BalancedPositiveNegativeSampler: positiveFraction must be in (0, 1], got ${String(positiveFraction)}`);
  }

  sample(labels: Int32Array, rng: Random): Sampled {
    const positive: number[] = [], negative: number[] = [];
    labels.forEach((l, i) => { if (l >= 1) positive.push(i); else if (l === 0) negative.push(i); });
    const numPos = Math.min(positive.length, Math.trunc(this.batchSizePerImage * this.positiveFraction));
    const numNeg = Math.min(negative.length, this.batchSizePerImage - numPos);
    return { pos: draw(positive, numPos, rng), neg: draw(negative, numNeg, rng) };
  }
}

/** k of `from` in random order (a partial Fisher-Yates shuffle). */
function draw(from: number[], k: number, rng: Random): Int32Array {
  const a = from.slice();
  for (let i = 0; i < k; i++) {
    const j = i + rng.int(a.length - i);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return Int32Array.from(a.slice(0, k));
}

/** Labels and regression targets of one image's anchors or proposals.
 * @example const anchors = new Float32Array([0, 0, 32, 32, 8, 8, 40, 40]);
 * const a: AssignedTargets = assignTargets(anchors, new Float32Array([10, 10, 42, 40]), Int32Array.of(1), new Matcher(0.7, 0.3, true), new BoxCoder([1, 1, 1, 1]), 'rpn');
 */
export interface AssignedTargets {
  /** RPN: 1 object, 0 background, -1 ignored. Box head: the class (0 background), -1 ignored. */
  labels: Int32Array;
  /** [P, 4]: the deltas from each box to its matched ground truth (zeros against none). */
  targets: Float32Array;
}

/**
 * What each of `boxes` [P, 4] should predict against the ground truth `gt` [G, 4] (with
 * `gtLabels` for the box head): torchvision's RPN assign_targets_to_anchors ('rpn': label 1
 * for a match) or RoIHeads.assign_targets_to_proposals ('roi': the matched class). An
 * image without objects gives every box the background label.
 * @example const gt = new Float32Array([10, 10, 50, 60]);
 * const { labels: classes, targets } = assignTargets(new Float32Array([12, 8, 48, 58, 100, 100, 120, 130]), gt, Int32Array.of(3), new Matcher(0.5, 0.5), new BoxCoder([10, 10, 5, 5]), 'roi');  // classes [3, 0]
 */
export function assignTargets(boxes: Float32Array, gt: Float32Array, gtLabels: Int32Array, matcher: Matcher, coder: BoxCoder, kind: 'rpn' | 'roi'): AssignedTargets {
  const P = boxes.length / 4, G = gt.length / 4;
  const labels = new Int32Array(P);
  if (G === 0) return { labels, targets: new Float32Array(4 * P) };
  const matches = matcher.match(boxIou(gt, boxes), G);
  const clamped = Int32Array.from(matches, (m) => Math.max(m, 0));
  for (let p = 0; p < P; p++) {
    const m = matches[p];
    labels[p] = m === BELOW_LOW_THRESHOLD ? 0 : m === BETWEEN_THRESHOLDS ? -1 : kind === 'rpn' ? 1 : gtLabels[m];
  }
  return { labels, targets: coder.encode(takeRows(gt, 4, clamped), boxes) };
}
