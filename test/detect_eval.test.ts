// Detection metrics (src/detect/eval/): COCO box mAP as pycocotools' COCOeval and VOC AP as
// py-faster-rcnn's voc_eval. Two judges: (1) hand-built cases whose numbers are derived in the
// comments (the COCO ones also run through pycocotools' own cocoeval.py by
// scripts/check_deteval_hand_cases.py, which asserts the same numbers); (2) fixtures from
// pycocotools' / py-faster-rcnn's own Python sources on random cases
// (scripts/make_deteval_fixtures.py), compared bit for bit.
// Notation below: T = 10 IoU thresholds .50:.05:.95, R = 101 recall thresholds 0:.01:1; a
// precision of "1" for one TP is 1 / (1 + eps) = 0.9999999999999998 (pycocotools divides by
// tp + fp + np.spacing(1)), so single-TP cases are compared to 1e-12.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  COCO_STAT_NAMES, cocoBoxIou, evaluateCoco, formatCocoSummary, toCocoDetections,
  type CocoGtAnnotation, type CocoDetection, type CocoGroundTruth, type CocoStats,
} from '../src/detect/eval/coco_eval.js';
import { arange, linspace, npMean, pairwiseSum, pyFixed } from '../src/detect/eval/numpy_compat.js';
import { evaluateVoc, toVocDetections, vocAp, type VocDetection, type VocImageAnnotation } from '../src/detect/eval/voc_eval.js';
import { DataError, InvalidArgumentError } from '../src/errors.js';

const FIXTURES = new URL('./fixtures/deteval/', import.meta.url).pathname;

// ---- small builders ----------------------------------------------------------------------
let nextId = 1;
function ann(image_id: number, category_id: number, bbox: number[], extra: Partial<CocoGtAnnotation> = {}): CocoGtAnnotation {
  return { id: nextId++, image_id, category_id, bbox, area: bbox[2] * bbox[3], iscrowd: 0, ...extra };
}
function gtOf(images: number[], cats: number[], annotations: CocoGtAnnotation[]): CocoGroundTruth {
  return { images: images.map((id) => ({ id })), categories: cats.map((id) => ({ id, name: `c${id}` })), annotations };
}
function det(image_id: number, category_id: number, bbox: number[], score: number): CocoDetection {
  return { image_id, category_id, bbox, score };
}
function close(actual: number, expected: number, what: string, tol = 1e-12): void {
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: expected ${expected}, got ${actual}`);
}
function closeStats(s: CocoStats, expected: Partial<CocoStats>): void {
  for (const [k, v] of Object.entries(expected)) close(s[k as keyof CocoStats], v as number, k);
}

const BIG = [0, 0, 100, 100]; // area 10,000: 'large' (> 96^2 = 9,216)

// ---- NumPy-exact helpers ------------------------------------------------------------------
test('numpy_compat: linspace / arange give NumPy 1.24\'s floats; Python-style rounding', () => {
  // Printed by NumPy 1.24: list(np.linspace(.5, .95, 10)) — note index 8 — and np.linspace(0, 1, 101)[35].
  assert.deepEqual(linspace(0.5, 0.95, 10), [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.8999999999999999, 0.95]);
  const rec = linspace(0, 1, 101);
  assert.equal(rec.length, 101);
  assert.equal(rec[35], 0.35000000000000003);
  assert.equal(rec[50], 0.5);
  assert.equal(rec[100], 1);
  // np.arange(0., 1.1, 0.1) as VOC07 uses it
  assert.deepEqual(arange(0, 1.1, 0.1), [0, 0.1, 0.2, 0.30000000000000004, 0.4, 0.5, 0.6000000000000001, 0.7000000000000001, 0.8, 0.9, 1]);
  // '{:0.3f}'.format(x): half-even on exact ties only
  assert.equal(pyFixed(0.0625, 3), '0.062');
  assert.equal(pyFixed(0.1875, 3), '0.188');
  assert.equal(pyFixed(0.4375, 3), '0.438');
  assert.equal(pyFixed(0.0005, 3), '0.001'); // 0.0005 is slightly above the tie in binary
  assert.equal(pyFixed(-1, 3), '-1.000');
  assert.equal(pyFixed(0.95, 2), '0.95');
  // np.sum / np.mean are pairwise in blocks of 8192, not left to right. For x = 1 / arange(1, 20001),
  // NumPy 1.24 prints np.sum(x) = 10.480728217229329 and np.mean(x) = 0.0005240364108614665,
  // while a left-to-right loop gives 10.48072821722932.
  const xs = Array.from({ length: 20000 }, (_, i) => 1 / (i + 1));
  assert.equal(pairwiseSum(xs), 10.480728217229329);
  assert.equal(npMean(xs), 0.0005240364108614665);
  let naive = 0;
  for (const v of xs) naive += v;
  assert.equal(naive, 10.48072821722932);
});

test('cocoBoxIou: xywh boxes; a crowd gt divides by the detection\'s area', () => {
  // [0,0,10,10] vs [5,0,10,10]: inter 5*10 = 50, union 100 + 100 - 50 = 150
  assert.deepEqual(cocoBoxIou([[0, 0, 10, 10]], [[5, 0, 10, 10]], [false]), [[50 / 150]]);
  // same boxes, gt a crowd: 50 / 100 (the detection's area)
  assert.deepEqual(cocoBoxIou([[0, 0, 10, 10]], [[5, 0, 10, 10]], [true]), [[0.5]]);
  // touching edges: w = 0 -> 0
  assert.deepEqual(cocoBoxIou([[0, 0, 10, 10]], [[10, 0, 10, 10], [0, 0, 10, 10]], [false, false]), [[0, 1]]);
});

// ---- hand-built COCO cases ------------------------------------------------------------------
test('COCO: perfect detections give AP 1; empty area ranges are -1', () => {
  // Three large gts (one per image and category), each detected exactly. At every IoU
  // threshold every detection is a TP: precision 1 at every recall -> AP = AR = 1. No gt is
  // small or medium: there every gt is ignored, npig = 0, the entry stays -1 -> APs = APm = -1.
  const gt = gtOf([1, 2], [1, 2], [ann(1, 1, BIG), ann(2, 1, [10, 10, 120, 100]), ann(2, 2, [5, 5, 200, 150])]);
  const dets = [det(1, 1, BIG, 0.9), det(2, 1, [10, 10, 120, 100], 0.8), det(2, 2, [5, 5, 200, 150], 0.7)];
  const r = evaluateCoco(gt, dets);
  closeStats(r.stats, { AP: 1, AP50: 1, AP75: 1, APs: -1, APm: -1, APl: 1, AR1: 1, AR10: 1, AR100: 1, ARs: -1, ARm: -1, ARl: 1 });
  assert.deepEqual(r.precision.shape, [10, 101, 2, 4, 3]);
  assert.deepEqual(r.recall.shape, [10, 2, 4, 3]);
});

test('COCO: one false positive scored above the true positive halves AP; AR1 sees only the FP', () => {
  // dets by score: FP (0.9), TP (0.8). tp cumsum [0, 1], fp [1, 1] -> rc [0, 1],
  // pr [0, 1/(2+eps) = 0.5]; envelope from the right -> [0.5, 0.5]; searchsorted puts every
  // recall threshold on one of them -> q = 0.5 everywhere -> AP = 0.5 at every IoU. AR100 = 1.
  // maxDets = 1 keeps only the top detection per image, the FP -> AR1 = 0.
  const gt = gtOf([1], [1], [ann(1, 1, BIG)]);
  const r = evaluateCoco(gt, [det(1, 1, [300, 300, 100, 100], 0.9), det(1, 1, BIG, 0.8)]);
  closeStats(r.stats, { AP: 0.5, AP50: 0.5, AP75: 0.5, APl: 0.5, AR1: 0, AR10: 1, AR100: 1 });
});

test('COCO: a missed gt caps recall at 0.5: AP = 51/101', () => {
  // 2 gts, 1 exact detection: rc [0.5], pr [1]. Recall thresholds 0.00 .. 0.50 (51 of 101) find
  // index 0 -> precision 1; above 0.5 searchsorted runs off the end -> 0. AP = 51/101, AR = 0.5.
  const gt = gtOf([1], [1], [ann(1, 1, BIG), ann(1, 1, [200, 0, 100, 100])]);
  const r = evaluateCoco(gt, [det(1, 1, BIG, 0.9)]);
  closeStats(r.stats, { AP: 51 / 101, AP50: 51 / 101, AR1: 0.5, AR100: 0.5 });
});

test('COCO: duplicates are FPs; IoU exactly at a threshold matches (>=)', () => {
  // Exact duplicate after the TP: tp [1, 1], fp [0, 1] -> rc [1, 1], pr [1, 0.5]; every recall
  // threshold finds index 0 -> AP 1: a lower-scored duplicate costs nothing.
  const gt = gtOf([1], [1], [ann(1, 1, BIG)]);
  closeStats(evaluateCoco(gt, [det(1, 1, BIG, 0.9), det(1, 1, BIG, 0.8)]).stats, { AP: 1, AR100: 1 });
  // A loose duplicate ABOVE the exact one: [0,0,100,60] has IoU 6000/10000 = 0.6 exactly (the
  // double 0.6, equal to iouThrs[2]). At t in {.50, .55, .60} the loose one takes the gt (IoU >= t)
  // and the exact one is an FP after it -> AP_t = 1; at the 7 higher t the loose one is an FP
  // above the TP -> AP_t = 0.5 (as the FP-above-TP case). AP = (3 * 1 + 7 * 0.5) / 10 = 0.65.
  const r = evaluateCoco(gt, [det(1, 1, [0, 0, 100, 60], 0.9), det(1, 1, BIG, 0.8)]);
  closeStats(r.stats, { AP: 0.65, AP50: 1, AP75: 0.5, AR100: 1 });
  // One detection of IoU 0.75 exactly ([0,0,100,75]): a TP at t = .50 .. .75 (6 thresholds),
  // unmatched above -> AP = 6/10, AP75 = 1, AR = 0.6.
  const r2 = evaluateCoco(gt, [det(1, 1, [0, 0, 100, 75], 0.9)]);
  closeStats(r2.stats, { AP: 0.6, AP50: 1, AP75: 1, AR100: 0.6 });
});

test('COCO: a detection matched to a crowd region is neither TP nor FP', () => {
  // gt A [0,0,100,100] and a crowd [200,0,200,200]. Two detections inside the crowd score
  // above the exact detection of A: IoU with a crowd is inter / det area = 1, so they match it
  // (a crowd may match many), take its ignore flag and drop out. Left: one TP -> AP 1.
  const crowd = [200, 0, 200, 200];
  const dets = [det(1, 1, [220, 20, 50, 50], 0.95), det(1, 1, [300, 100, 60, 60], 0.93), det(1, 1, BIG, 0.9)];
  const r = evaluateCoco(gtOf([1], [1], [ann(1, 1, BIG), ann(1, 1, crowd, { iscrowd: 1 })]), dets);
  closeStats(r.stats, { AP: 1, AR100: 1 });
  // The same region NOT a crowd: IoUs 2500/40000 and 3600/40000 are < .5 -> two FPs above the
  // TP; and it is a second gt, never found: tp [0,0,1], fp [1,2,2] -> rc [0,0,.5], pr [0,0,1/3];
  // q = 1/3 for recall <= .5 (51 thresholds) -> AP = 51/101/3; AR = 0.5.
  const r2 = evaluateCoco(gtOf([1], [1], [ann(1, 1, BIG), ann(1, 1, crowd)]), dets);
  closeStats(r2.stats, { AP: 51 / 101 / 3, AR100: 0.5 });
});

test('COCO: the `ignore` flag is overwritten by iscrowd (as pycocotools) unless honorIgnoreFlag', () => {
  // cocoeval.py _prepare sets gt['ignore'] = iscrowd, discarding 'ignore' (cocoapi issues #123,
  // #466). A missed gt flagged ignore therefore still counts: AP = 51/101 as the missed-gt case;
  // with honorIgnoreFlag (the fix of PR cocoapi#322) it is ignored: AP = 1.
  const gt = gtOf([1], [1], [ann(1, 1, BIG), ann(1, 1, [200, 0, 100, 100], { ignore: 1 })]);
  const dets = [det(1, 1, BIG, 0.9)];
  close(evaluateCoco(gt, dets).stats.AP, 51 / 101, 'AP (pycocotools)');
  close(evaluateCoco(gt, dets, { honorIgnoreFlag: true }).stats.AP, 1, 'AP (honorIgnoreFlag)');
});

test('COCO: area ranges (inclusive both ends; a 32x32 gt is both small and medium)', () => {
  // gts: S 10x10 (100), E 32x32 (1024 = 32^2 exactly), M 50x50 (2500), L 100x100 (10000).
  // Exact detections of S, M, L (scores .9, .8, .7); E is missed.
  // all:    4 gts, 3 TPs: rc [.25, .5, .75], pr 1 -> recall thresholds 0 .. .75 (76) -> AP 76/101, AR .75
  // small  [0, 1024]:    S, E count (E: 1024 <= 1024); M, L ignored; their detections match ignored
  //                      gts -> dropped. rc [.5, .5, .5] -> APs = 51/101, ARs = .5
  // medium [1024, 9216]: E, M count; S's detection matches an ignored gt -> dropped.
  //                      rc [0, .5, .5], pr [0, 1, 1] -> envelope 1 -> APm = 51/101, ARm = .5
  // large  [9216, 1e10]: L only -> APl = 1, ARl = 1
  const gt = gtOf([1], [1], [ann(1, 1, [0, 0, 10, 10]), ann(1, 1, [100, 0, 32, 32]), ann(1, 1, [200, 0, 50, 50]), ann(1, 1, [300, 0, 100, 100])]);
  const r = evaluateCoco(gt, [det(1, 1, [0, 0, 10, 10], 0.9), det(1, 1, [200, 0, 50, 50], 0.8), det(1, 1, [300, 0, 100, 100], 0.7)]);
  closeStats(r.stats, { AP: 76 / 101, APs: 51 / 101, APm: 51 / 101, APl: 1, AR100: 0.75, ARs: 0.5, ARm: 0.5, ARl: 1 });
  // An unmatched detection outside the range is ignored there, so a small FP does not hurt APl:
  const r2 = evaluateCoco(gtOf([1], [1], [ann(1, 1, BIG)]), [det(1, 1, [500, 500, 10, 10], 0.99), det(1, 1, BIG, 0.5)]);
  closeStats(r2.stats, { AP: 0.5, APl: 1, APs: -1 });
  // gt area comes from the annotation's `area` (the segment's, in COCO), not from its bbox:
  const r3 = evaluateCoco(gtOf([1], [1], [ann(1, 1, BIG, { area: 500 })]), [det(1, 1, BIG, 0.9)]);
  closeStats(r3.stats, { APs: 1, APl: -1 });
});

test('COCO: maxDets cuts per image (1 / 10 / 100), and custom maxDets follow pycocotools', () => {
  // 3 gts, 3 exact detections on one image. maxDets 1 keeps the top one: AR1 = 1/3; AR10 = 1.
  const gt = gtOf([1], [1], [ann(1, 1, BIG), ann(1, 1, [200, 0, 100, 100]), ann(1, 1, [400, 0, 100, 100])]);
  const dets = [det(1, 1, BIG, 0.9), det(1, 1, [200, 0, 100, 100], 0.8), det(1, 1, [400, 0, 100, 100], 0.7)];
  closeStats(evaluateCoco(gt, dets).stats, { AP: 1, AR1: 1 / 3, AR10: 1, AR100: 1 });
  // 101 detections, the exact one scored lowest: the 100 cut drops it -> AP = 0, AR100 = 0.
  const many = Array.from({ length: 100 }, (_, i) => det(1, 1, [600 + i, 600, 10, 10], 0.9));
  closeStats(evaluateCoco(gtOf([1], [1], [ann(1, 1, BIG)]), [...many, det(1, 1, BIG, 0.1)]).stats, { AP: 0, AR100: 0 });
  // maxDets [1, 2, 3]: stats[0] looks for maxDets == 100 (a literal in summarize) -> -1;
  // AP50 uses maxDets[2] = 3 -> 1.
  const r = evaluateCoco(gt, dets, { maxDets: [3, 1, 2] });
  assert.deepEqual(r.params.maxDets, [1, 2, 3]);
  closeStats(r.stats, { AP: -1, AP50: 1, AR1: 1 / 3, AR10: 2 / 3, AR100: 1 });
});

test('COCO: a category without gt is -1 and left out of the mean (cocoapi issue #55)', () => {
  // Issue #55 (pycocotools' own printout): one gt of category 1, its exact detection, and a
  // large false alarm of category 2 -> "AP @[ IoU=0.50:0.95 | area= all ] = 1.000", small and
  // medium -1.000. Category 2 has no gt: npig = 0, its entries stay -1 and the mean skips them.
  const gt = gtOf([1], [1, 2], [ann(1, 1, [10, 10, 200, 200])]);
  const r = evaluateCoco(gt, [det(1, 1, [10, 10, 200, 200], 0.5), det(1, 2, [0, 0, 400, 400], 0.99)]);
  closeStats(r.stats, { AP: 1, AP50: 1, AP75: 1, APs: -1, APm: -1, APl: 1, AR100: 1 });
  const [T, R, K, A, M] = r.precision.shape;
  for (let t = 0; t < T; t++) for (let rr = 0; rr < R; rr++) assert.equal(r.precision.data[(((t * R + rr) * K + 1) * A + 0) * M + 2], -1);
  assert.equal(r.recall.data[((0 * K + 1) * A + 0) * M + 2], -1);
  // No gt anywhere: every stat -1.
  const none = evaluateCoco(gtOf([1], [1], []), [det(1, 1, BIG, 0.5)]);
  for (const k of COCO_STAT_NAMES) assert.equal(none.stats[k], -1, k);
});

test('COCO: score ties keep input order (mergesort), within and across images', () => {
  // Same score 0.5: FP listed first -> FP above TP -> AP 0.5 (as above); TP first -> AP 1.
  const gt = gtOf([1], [1], [ann(1, 1, BIG)]);
  const fp = det(1, 1, [300, 300, 100, 100], 0.5);
  const tp = det(1, 1, BIG, 0.5);
  close(evaluateCoco(gt, [fp, tp]).stats.AP, 0.5, 'FP first');
  close(evaluateCoco(gt, [tp, fp]).stats.AP, 1, 'TP first');
  // Across images, tied detections come in image-id order (evalImgs are concatenated over
  // sorted imgIds): the FP on image 1 precedes the TP on image 2 -> 0.5; on image 3 -> 1.
  const gt2 = gtOf([1, 2, 3], [1], [ann(2, 1, BIG)]);
  close(evaluateCoco(gt2, [det(2, 1, BIG, 0.5), det(1, 1, BIG, 0.5)]).stats.AP, 0.5, 'FP on image 1');
  close(evaluateCoco(gt2, [det(2, 1, BIG, 0.5), det(3, 1, BIG, 0.5)]).stats.AP, 1, 'FP on image 3');
});

test('COCO: useCats=false pools categories; imgIds / catIds restrict the evaluation', () => {
  // The detection has the wrong category: by category AP = 0 (cat 1 missed; cat 2 has no gt);
  // pooled (proposal-style) it matches -> 1.
  const gt = gtOf([1, 2], [1, 2], [ann(1, 1, BIG), ann(2, 2, BIG)]);
  const dets = [det(1, 2, BIG, 0.9)];
  closeStats(evaluateCoco(gt, dets).stats, { AP: 0 });
  const pooled = evaluateCoco(gt, dets, { useCats: false });
  assert.deepEqual(pooled.precision.shape, [10, 101, 1, 4, 3]);
  closeStats(pooled.stats, { AP: 51 / 101, AR100: 0.5 }); // image 2's gt is missed
  closeStats(evaluateCoco(gt, dets, { useCats: false, imgIds: [1] }).stats, { AP: 1, AR100: 1 });
  // catIds [1] on image 2 only: cat 1 has no gt there -> -1
  closeStats(evaluateCoco(gt, dets, { imgIds: [2], catIds: [1] }).stats, { AP: -1 });
});

test('COCO: formatCocoSummary prints pycocotools\' 12 lines', () => {
  const gt = gtOf([1], [1], [ann(1, 1, BIG)]);
  const r = evaluateCoco(gt, [det(1, 1, [300, 300, 100, 100], 0.9), det(1, 1, BIG, 0.8)]);
  assert.equal(formatCocoSummary(r.stats, r.params), [
    ' Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.500',
    ' Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ] = 0.500',
    ' Average Precision  (AP) @[ IoU=0.75      | area=   all | maxDets=100 ] = 0.500',
    ' Average Precision  (AP) @[ IoU=0.50:0.95 | area= small | maxDets=100 ] = -1.000',
    ' Average Precision  (AP) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ] = -1.000',
    ' Average Precision  (AP) @[ IoU=0.50:0.95 | area= large | maxDets=100 ] = 0.500',
    ' Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ] = 0.000',
    ' Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets= 10 ] = 1.000',
    ' Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 1.000',
    ' Average Recall     (AR) @[ IoU=0.50:0.95 | area= small | maxDets=100 ] = -1.000',
    ' Average Recall     (AR) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ] = -1.000',
    ' Average Recall     (AR) @[ IoU=0.50:0.95 | area= large | maxDets=100 ] = 1.000',
  ].join('\n'));
  // Python rounds an exact tie half to even: 0.0625 -> 0.062 (JavaScript's toFixed says 0.063)
  const stats = { ...r.stats, AP: 0.0625 };
  assert.match(formatCocoSummary(stats).split('\n')[0], / = 0\.062$/);
});

test('COCO: bad input is a DataError naming the detection or annotation', () => {
  const gt = gtOf([1], [1], [ann(1, 1, BIG)]);
  assert.throws(() => evaluateCoco(gt, [det(7, 1, BIG, 0.9)]), (e: unknown) => e instanceof DataError && /detection 0 has image_id 7/.test(e.message));
  assert.throws(() => evaluateCoco(gt, [det(1, 1, [0, 0, 10], 0.9)]), (e: unknown) => e instanceof DataError && /detection 0 bbox/.test(e.message));
  assert.throws(() => evaluateCoco(gt, [{ ...det(1, 1, BIG, 0.9), score: Number.NaN }]), DataError);
  // id 0: pycocotools reads a match to gt id 0 as "no match" (cocoapi issue #572 reports AP 0 for a
  // perfect detection of a gt with id 0), so it is refused rather than silently miscounted.
  assert.throws(() => evaluateCoco(gtOf([1], [1], [ann(1, 1, BIG, { id: 0 })]), []), (e: unknown) => e instanceof DataError && /id 0/.test(e.message));
  const a = ann(1, 1, BIG);
  assert.throws(() => evaluateCoco(gtOf([1], [1], [a, { ...a }]), []), (e: unknown) => e instanceof DataError && /already has/.test(e.message));
  assert.throws(() => evaluateCoco({ images: [] } as unknown as CocoGroundTruth, []), DataError);
  assert.throws(() => evaluateCoco(gt, [], { maxDets: [0] }), InvalidArgumentError);
});

test('toCocoDetections: x1y1x2y2 predictions to COCO results (float32 widths, as torchvision)', () => {
  const pred = { boxes: new Float32Array([10, 20, 50, 80, 0.1, 0.2, 0.7, 0.9]), scores: new Float32Array([0.9, 0.3]), labels: new Int32Array([1, 0]) };
  const dets = toCocoDetections(42, pred, [7, 18]);
  assert.deepEqual(dets[0], { image_id: 42, category_id: 18, bbox: [10, 20, 40, 60], score: Math.fround(0.9) });
  // torch: (x2 - x1) of float32 values, rounded to float32: fround(fround(0.7) - fround(0.1))
  assert.equal(dets[1].bbox[2], Math.fround(Math.fround(0.7) - Math.fround(0.1)));
  assert.equal(dets[1].category_id, 7);
  assert.equal(toCocoDetections(1, pred)[0].category_id, 1);
  assert.throws(() => toCocoDetections(1, { ...pred, labels: new Int32Array([1]) }), InvalidArgumentError);
  assert.throws(() => toCocoDetections(1, pred, [7]), (e: unknown) => e instanceof InvalidArgumentError && /label 1/.test(e.message));
  // straight into the evaluation: the gt's own box back -> AP ~1
  const gt = gtOf([42], [18], [ann(42, 18, [10, 20, 40, 60])]);
  close(evaluateCoco(gt, toCocoDetections(42, { boxes: [10, 20, 50, 80], scores: [0.5], labels: [18] })).stats.AP, 1, 'AP');
});

// ---- pycocotools itself, on random cases ---------------------------------------------------
interface CocoFixture {
  name: string; gt: CocoGroundTruth; dets: CocoDetection[]; opts: Record<string, unknown>;
  expected: { stats: number[]; precisionShape: number[]; precisionSha256: string; scoresSha256: string; recallShape: number[]; recall: number[]; summary: string };
}
const sha256 = (a: Float64Array): string => createHash('sha256').update(Buffer.from(a.buffer, a.byteOffset, a.byteLength)).digest('hex');

test('COCO: bit-identical to pycocotools\' cocoeval.py on 8 random cases', () => {
  const doc = JSON.parse(readFileSync(`${FIXTURES}coco_cases.json`, 'utf8')) as { cases: CocoFixture[] };
  assert.equal(doc.cases.length, 8);
  for (const c of doc.cases) {
    const r = evaluateCoco(c.gt, c.dets, c.opts);
    assert.deepEqual(COCO_STAT_NAMES.map((k) => r.stats[k]), c.expected.stats, `${c.name}: stats`);
    assert.deepEqual(r.recall.shape, c.expected.recallShape, `${c.name}: recall shape`);
    assert.deepEqual(Array.from(r.recall.data), c.expected.recall, `${c.name}: recall`);
    assert.deepEqual(r.precision.shape, c.expected.precisionShape, `${c.name}: precision shape`);
    assert.equal(sha256(r.precision.data), c.expected.precisionSha256, `${c.name}: precision bytes`);
    assert.equal(sha256(r.scores.data), c.expected.scoresSha256, `${c.name}: scores bytes`);
    assert.equal(formatCocoSummary(r.stats, r.params), c.expected.summary, `${c.name}: summary`);
  }
});

// ---- VOC ---------------------------------------------------------------------------------
test('VOC07: a tiny case with a difficult object and a duplicate, derived by hand', () => {
  // Image a: dog1 [10,10,59,59], dog2 [100,100,149,149] difficult. Image b: dog3 [10,10,59,59].
  // Detections by score: d1 .9 = dog1 (TP), d2 .8 = dog2 (difficult: neither), d3 .7 far off
  // on b (FP), d4 .6 = dog3 (TP), d5 .5 = dog1 again (already detected: FP). npos = 2.
  // tp [1,1,1,2,2], fp [0,0,1,1,2] -> rec [.5,.5,.5,1,1], prec [1,1,.5,2/3,.5].
  // VOC07: t = 0 .. .5 (6 points) best prec at rec >= t is 1; t = .6 .. 1 (5 points) 2/3
  //   -> AP = (6 + 5 * 2/3) / 11 = 28/33.
  // Area: envelope [1,1,1,2/3,2/3,.5,0] over mrec [0,.5,.5,.5,1,1,1]: .5 * 1 + .5 * 2/3 = 5/6.
  const gts: VocImageAnnotation[] = [
    { imageId: 'a', objects: [{ name: 'dog', bbox: [10, 10, 59, 59] }, { name: 'dog', bbox: [100, 100, 149, 149], difficult: 1 }] },
    { imageId: 'b', objects: [{ name: 'dog', bbox: [10, 10, 59, 59] }] },
  ];
  const dets: VocDetection[] = [
    { imageId: 'a', name: 'dog', score: 0.5, bbox: [10, 10, 59, 59] },
    { imageId: 'b', name: 'dog', score: 0.6, bbox: [10, 10, 59, 59] },
    { imageId: 'a', name: 'dog', score: 0.9, bbox: [10, 10, 59, 59] },
    { imageId: 'b', name: 'dog', score: 0.7, bbox: [200, 200, 249, 249] },
    { imageId: 'a', name: 'dog', score: 0.8, bbox: [100, 100, 149, 149] },
  ];
  const r07 = evaluateVoc(gts, dets);
  assert.equal(r07.classes[0].npos, 2);
  assert.deepEqual(Array.from(r07.classes[0].recall), [0.5, 0.5, 0.5, 1, 1]);
  assert.deepEqual(Array.from(r07.classes[0].precision), [1, 1, 0.5, 2 / 3, 0.5]);
  close(r07.mAP, 28 / 33, 'VOC07 AP');
  close(evaluateVoc(gts, dets, { use07Metric: false }).mAP, 5 / 6, 'area AP');
});

test('VOC: +1 pixel areas, IoU must exceed the threshold, VOC07\'s recall points are arange floats', () => {
  // gt [0,0,9,9] is 10x10 = 100 px. [0,0,9,4] covers 10x5 = 50: IoU 0.5, not > 0.5 -> FP, AP 0.
  const gts: VocImageAnnotation[] = [{ imageId: 1, objects: [{ name: 'cat', bbox: [0, 0, 9, 9] }] }];
  assert.equal(evaluateVoc(gts, [{ imageId: 1, name: 'cat', score: 1, bbox: [0, 0, 9, 4] }]).mAP, 0);
  // [0,0,9,5]: 60/100 -> TP; rec [1], prec [1] -> all 11 points -> AP = 11 * (1/11) summed
  close(evaluateVoc(gts, [{ imageId: 1, name: 'cat', score: 1, bbox: [0, 0, 9, 5] }]).mAP, 1, 'AP');
  // 10 positives, 3 found with precision 1: rec = 3/10 = 0.3 < arange's 0.30000000000000004, so
  // the t = 0.3 point scores 0: AP = 3/11 (not 4/11), as py-faster-rcnn.
  const ten: VocImageAnnotation[] = [{ imageId: 1, objects: Array.from({ length: 10 }, (_, i) => ({ name: 'cat', bbox: [i * 20, 0, i * 20 + 9, 9] })) }];
  const three = [0, 1, 2].map((i) => ({ imageId: 1, name: 'cat', score: 1 - i / 10, bbox: [i * 20, 0, i * 20 + 9, 9] }));
  close(evaluateVoc(ten, three).mAP, 3 / 11, 'AP with recall 0.3');
  close(vocAp([0.5, 1], [1, 0.5]), (6 + 5 * 0.5) / 11, 'vocAp');
  // A class with no positives: recall 0/0 = NaN -> VOC07 AP 0, area AP NaN (NumPy's answers too).
  const r = evaluateVoc(gts, [{ imageId: 1, name: 'dog', score: 1, bbox: [0, 0, 9, 9] }], { classes: ['cat', 'dog'] });
  assert.equal(r.classes[1].npos, 0);
  assert.equal(r.classes[1].ap, 0);
  assert.equal(r.mAP, 0);
  // ... and with detections, the area metric gives NaN (mrec holds NaN); with none, rec is empty -> AP 0.
  assert.ok(Number.isNaN(evaluateVoc(gts, [{ imageId: 1, name: 'dog', score: 1, bbox: [0, 0, 9, 9] }], { classes: ['dog'], use07Metric: false }).mAP));
  assert.equal(evaluateVoc(gts, [], { classes: ['dog'], use07Metric: false }).mAP, 0);
  assert.throws(() => evaluateVoc(gts, [{ imageId: 2, name: 'cat', score: 1, bbox: [0, 0, 9, 9] }]), (e: unknown) => e instanceof DataError && /image 2/.test(e.message));
  assert.throws(() => evaluateVoc(gts, [], { iouThreshold: 2 }), InvalidArgumentError);
});

test('toVocDetections: continuous boxes back to VOC pixels (Detectron2 or py-faster-rcnn), optional results-file rounding', () => {
  const names = ['__background__', 'cat', 'dog'];
  // A loader reading <bndbox> 48 240 195 371 as Detectron2 does gives [47, 239, 195, 371]; a
  // perfect prediction of it maps back to the bndbox, so voc_eval sees IoU 1.
  const pred = { boxes: [47, 239, 195, 371], scores: [0.9], labels: [2] };
  const dets = toVocDetections('000001', pred, names);
  assert.deepEqual(dets, [{ imageId: '000001', name: 'dog', score: Math.fround(0.9), bbox: [48, 240, 195, 371] }]);
  const gts: VocImageAnnotation[] = [{ imageId: '000001', objects: [{ name: 'dog', bbox: [48, 240, 195, 371] }] }];
  close(evaluateVoc(gts, dets).mAP, 1, 'AP');
  // py-faster-rcnn subtracts 1 from all four on loading, so adds 1 to all four on writing
  assert.deepEqual(toVocDetections('000001', pred, names, { convention: 'py-faster-rcnn' })[0].bbox, [48, 240, 196, 372]);
  // '{:.3f}' / '{:.1f}' as the results file: 0.12345 -> 0.123; 10.26 + 1 (float32) -> 11.3
  const r = toVocDetections(1, { boxes: new Float32Array([10.26, 5, 20.04, 30.96]), scores: new Float32Array([0.12345]), labels: [1] }, names, { roundAsResultsFile: true });
  assert.deepEqual(r[0], { imageId: 1, name: 'cat', score: 0.123, bbox: [11.3, 6, 20, 31] });
  assert.throws(() => toVocDetections(1, { ...pred, labels: [3] }, names), (e: unknown) => e instanceof InvalidArgumentError && /label 3/.test(e.message));
  assert.throws(() => toVocDetections(1, { ...pred, scores: [] }, names), InvalidArgumentError);
});

interface VocFixture {
  name: string; gts: VocImageAnnotation[]; dets: VocDetection[]; opts: { classes: string[]; iouThreshold: number; use07Metric: boolean };
  expected: { mAP: number; classes: { name: string; ap: number; recall: number[]; precision: number[] }[] };
}

test('VOC: bit-identical to py-faster-rcnn\'s voc_eval.py on 4 random cases', () => {
  const doc = JSON.parse(readFileSync(`${FIXTURES}voc_cases.json`, 'utf8')) as { cases: VocFixture[] };
  assert.equal(doc.cases.length, 4);
  for (const c of doc.cases) {
    const r = evaluateVoc(c.gts, c.dets, c.opts);
    assert.equal(r.mAP, c.expected.mAP, `${c.name}: mAP`);
    c.expected.classes.forEach((e, k) => {
      assert.equal(r.classes[k].name, e.name);
      assert.equal(r.classes[k].ap, e.ap, `${c.name}/${e.name}: AP`);
      assert.deepEqual(Array.from(r.classes[k].recall), e.recall, `${c.name}/${e.name}: rec`);
      assert.deepEqual(Array.from(r.classes[k].precision), e.precision, `${c.name}/${e.name}: prec`);
    });
  }
});
