// Pascal VOC detection AP as py-faster-rcnn computes it: a port of lib/datasets/voc_eval.py
// (voc_eval and voc_ap, rbgirshick/py-faster-rcnn). Boxes are [xmin, ymin, xmax, ymax] in
// inclusive pixel coordinates, so widths and heights are +1 (VOC's convention); a match needs
// IoU > threshold (strictly); a detection whose best gt is `difficult` is neither TP nor FP,
// and difficult objects do not count as positives. AP is VOC07's 11-point average (default,
// use_07_metric=True as py-faster-rcnn's VOC 2007 test) or the area under the precision
// envelope (VOC2010+). Parsing VOC XML lives in src/detect/data/voc.ts, not here.

import { DataError, InvalidArgumentError } from '../../errors.js';
import { arange, argsortDescendingStable, npMean, pairwiseSum, pyFixed } from './numpy_compat.js';

/**
 * One ground-truth object of an image (parse_rec's fields); bbox is [xmin, ymin, xmax, ymax] as
 * the XML's <bndbox> writes them (1-based, inclusive; the `bndbox` of src/detect/data/voc.ts's objects).
 * @example const o: VocGtObject = { name: 'dog', bbox: [48, 240, 195, 371], difficult: 0 };
 */
export interface VocGtObject { name: string; bbox: readonly number[]; difficult?: boolean | number }
/**
 * An image's ground truth: its id and its objects (all classes).
 * @example const a: VocImageAnnotation = { imageId: '000001', objects: [{ name: 'dog', bbox: [48, 240, 195, 371] }] };
 */
export interface VocImageAnnotation { imageId: string | number; objects: readonly VocGtObject[] }
/**
 * One detection (a line of py-faster-rcnn's results file comp4_det_test_{cls}.txt).
 * @example const d: VocDetection = { imageId: '000001', name: 'dog', score: 0.93, bbox: [50, 238, 197, 370] };
 */
export interface VocDetection { imageId: string | number; name: string; score: number; bbox: readonly number[] }

/**
 * evaluateVoc options.
 * @example const opts: VocEvalOptions = { classes: ['cat', 'dog'], use07Metric: true, iouThreshold: 0.5 };
 */
export interface VocEvalOptions {
  /** Classes to evaluate, in this order (default: the distinct gt object names, sorted). */
  classes?: readonly string[];
  /** ovthresh: a match needs IoU > this. Default 0.5. */
  iouThreshold?: number;
  /** VOC07 11-point AP (default true); false: area under the precision envelope. */
  use07Metric?: boolean;
}

/**
 * One class's result: AP, the number of non-difficult gt objects, and the rec / prec curves voc_eval returns.
 * @example for (const c of evaluateVoc([{ imageId: 'a', objects: [{ name: 'dog', bbox: [0, 0, 49, 49] }] }], [{ imageId: 'a', name: 'dog', score: 0.8, bbox: [1, 0, 49, 49] }]).classes satisfies VocClassResult[]) console.log(c.name, c.ap.toFixed(4));
 */
export interface VocClassResult { name: string; ap: number; npos: number; recall: Float64Array; precision: Float64Array }

/**
 * evaluateVoc's answer: per-class results and their mean (np.mean(aps), as py-faster-rcnn's _do_python_eval).
 * @example const r: VocEvalResult = evaluateVoc([{ imageId: 'a', objects: [{ name: 'dog', bbox: [0, 0, 49, 49] }] }], [{ imageId: 'a', name: 'dog', score: 0.8, bbox: [1, 0, 49, 49] }]); console.log(`mAP ${r.mAP.toFixed(4)}`);
 */
export interface VocEvalResult { mAP: number; classes: VocClassResult[] }

const F64_EPS = 2.220446049250313e-16; // np.finfo(np.float64).eps

/**
 * voc_ap(rec, prec, use_07_metric): VOC07 averages, over t in np.arange(0, 1.1, 0.1), the best
 * precision at recall >= t (0 when none); otherwise sum of (delta recall) * precision envelope.
 * @example vocAp([0.5, 1], [1, 0.5], true); // (6 * 1 + 5 * 0.5) / 11
 */
export function vocAp(rec: ArrayLike<number>, prec: ArrayLike<number>, use07Metric = true): number {
  if (use07Metric) {
    let ap = 0;
    for (const t of arange(0, 1.1, 0.1)) {
      let p = 0;
      let any = false;
      for (let i = 0; i < rec.length; i++) if (rec[i] >= t) { p = any ? Math.max(p, prec[i]) : prec[i]; any = true; }
      ap = ap + p / 11;
    }
    return ap;
  }
  // append sentinels, then the precision envelope from the right
  const mrec = [0, ...Array.from(rec), 1];
  const mpre = [0, ...Array.from(prec), 0];
  for (let i = mpre.length - 1; i > 0; i--) mpre[i - 1] = Math.max(mpre[i - 1], mpre[i]);
  // sum (delta recall) * prec where recall changes (NaN != NaN counts as a change, as in NumPy)
  const terms: number[] = [];
  for (let i = 0; i + 1 < mrec.length; i++) if (mrec[i + 1] !== mrec[i]) terms.push((mrec[i + 1] - mrec[i]) * mpre[i + 1]);
  return pairwiseSum(terms);
}

function checkBox(bbox: unknown, what: string): readonly number[] {
  if (!Array.isArray(bbox) || bbox.length !== 4 || !bbox.every((v) => typeof v === 'number' && Number.isFinite(v))) {
    throw new DataError(`evaluateVoc: ${what} bbox must be 4 finite numbers [xmin, ymin, xmax, ymax], got ${JSON.stringify(bbox)}`);
  }
  return bbox as number[];
}

/** voc_eval for one class: rec, prec, ap. */
function evalClass(gts: readonly VocImageAnnotation[], dets: readonly VocDetection[], name: string, ovthresh: number, use07: boolean): VocClassResult {
  // extract gt objects for this class
  const classRecs = new Map<string | number, { bbox: (readonly number[])[]; difficult: boolean[]; det: boolean[] }>();
  let npos = 0;
  for (const img of gts) {
    const R = img.objects.filter((o) => o.name === name);
    const difficult = R.map((o) => Boolean(o.difficult));
    npos += difficult.filter((d) => !d).length;
    classRecs.set(img.imageId, { bbox: R.map((o) => o.bbox), difficult, det: R.map(() => false) });
  }
  const mine = dets.filter((d) => d.name === name);
  // sort by confidence (NOTE: stable; py-faster-rcnn's np.argsort is quicksort, whose order of ties is unspecified)
  const order = argsortDescendingStable(mine.map((d) => d.score));
  const nd = order.length;
  const tp = new Float64Array(nd);
  const fp = new Float64Array(nd);
  for (let d = 0; d < nd; d++) {
    const det = mine[order[d]];
    const R = classRecs.get(det.imageId)!;
    const bb = det.bbox;
    let ovmax = -Infinity;
    let jmax = -1;
    for (let j = 0; j < R.bbox.length; j++) {
      const g = R.bbox[j];
      const iw = Math.max(Math.min(g[2], bb[2]) - Math.max(g[0], bb[0]) + 1, 0);
      const ih = Math.max(Math.min(g[3], bb[3]) - Math.max(g[1], bb[1]) + 1, 0);
      const inters = iw * ih;
      const uni = (bb[2] - bb[0] + 1) * (bb[3] - bb[1] + 1) + (g[2] - g[0] + 1) * (g[3] - g[1] + 1) - inters;
      const ov = inters / uni;
      if (jmax === -1 || ov > ovmax) { ovmax = ov; jmax = j; } // np.argmax: the first maximum
    }
    if (ovmax > ovthresh) {
      if (!R.difficult[jmax]) {
        if (!R.det[jmax]) { tp[d] = 1; R.det[jmax] = true; } else fp[d] = 1;
      }
    } else fp[d] = 1;
  }
  // compute precision recall (cumsum); prec guards 0/0 when the first detection hits a difficult gt
  const recall = new Float64Array(nd);
  const precision = new Float64Array(nd);
  let ctp = 0;
  let cfp = 0;
  for (let d = 0; d < nd; d++) {
    ctp += tp[d];
    cfp += fp[d];
    recall[d] = ctp / npos;
    precision[d] = ctp / Math.max(ctp + cfp, F64_EPS);
  }
  return { name, ap: vocAp(recall, precision, use07), npos, recall, precision };
}

/**
 * Pascal VOC detection evaluation (py-faster-rcnn voc_eval per class, then the mean AP). A
 * class with no non-difficult gt gets recall 0/0 = NaN (NumPy's answer too) and so AP 0 in the
 * 07 metric, NaN otherwise; it is still in the mean, as py-faster-rcnn. Throws DataError for a
 * detection on an image `gts` does not list (py-faster-rcnn's KeyError) or a malformed box.
 * @example
 * const gts = [{ imageId: '000001', objects: [{ name: 'dog', bbox: [48, 240, 195, 371] }, { name: 'dog', bbox: [8, 12, 352, 498], difficult: 1 }] }];
 * const { mAP, classes } = evaluateVoc(gts, [{ imageId: '000001', name: 'dog', score: 0.9, bbox: [50, 240, 195, 370] }]);
 * console.log(mAP, classes[0].npos); // 1.0000000000000002 (eleven additions of 1/11, as py-faster-rcnn), 1
 */
export function evaluateVoc(gts: readonly VocImageAnnotation[], dets: readonly VocDetection[], opts: VocEvalOptions = {}): VocEvalResult {
  if (!Array.isArray(gts as unknown)) throw new DataError('evaluateVoc: ground truth must be an array of {imageId, objects}');
  if (!Array.isArray(dets as unknown)) throw new DataError('evaluateVoc: detections must be an array of {imageId, name, score, bbox}');
  const ovthresh = opts.iouThreshold ?? 0.5;
  if (!(ovthresh >= 0 && ovthresh <= 1)) throw new InvalidArgumentError(`evaluateVoc: iouThreshold must be in [0, 1], got ${opts.iouThreshold}`);
  const images = new Set<string | number>();
  gts.forEach((img, i) => {
    if (!img || !Array.isArray(img.objects as unknown)) throw new DataError(`evaluateVoc: ground truth ${i} must be {imageId, objects: [...]}`);
    if (images.has(img.imageId)) throw new DataError(`evaluateVoc: image ${JSON.stringify(img.imageId)} is listed twice in the ground truth`);
    images.add(img.imageId);
    img.objects.forEach((o, j) => checkBox(o.bbox, `image ${JSON.stringify(img.imageId)} object ${j}`));
  });
  dets.forEach((d, i) => {
    if (!images.has(d.imageId)) throw new DataError(`evaluateVoc: detection ${i} is on image ${JSON.stringify(d.imageId)}, which is not in the ground truth (${images.size} images)`);
    if (typeof d.score !== 'number' || Number.isNaN(d.score)) throw new DataError(`evaluateVoc: detection ${i} has score ${JSON.stringify(d.score)}, expected a number`);
    checkBox(d.bbox, `detection ${i}`);
  });
  const classes = opts.classes ?? [...new Set(gts.flatMap((g) => g.objects.map((o) => o.name)))].sort();
  const results = classes.map((name) => evalClass(gts, dets, name, ovthresh, opts.use07Metric ?? true));
  return { mAP: npMean(results.map((r) => r.ap)), classes: results };
}

/**
 * toVocDetections options.
 * @example const opts: ToVocOptions = { convention: 'py-faster-rcnn', roundAsResultsFile: true };
 */
export interface ToVocOptions {
  /**
   * How the model's continuous boxes map to VOC's 1-based inclusive pixels: 'detectron2'
   * (default; the inverse of a loader that reads [xmin - 1, ymin - 1, xmax, ymax], as
   * src/detect/data/voc.ts and Detectron2's pascal_voc.py do) writes [x1 + 1, y1 + 1, x2, y2];
   * 'py-faster-rcnn' (whose loader subtracts 1 from all four) writes all four + 1.
   */
  convention?: 'detectron2' | 'py-faster-rcnn';
  /** Round as the results file both write ('{:.3f}' score, '{:.1f}' coordinates), to reproduce their numbers exactly. Default false. */
  roundAsResultsFile?: boolean;
}

/**
 * One image's predictions as VOC detections (the lines py-faster-rcnn's
 * _write_voc_results_file or Detectron2's PascalVOCDetectionEvaluator write): boxes x1, y1, x2,
 * y2 (4 per row, float32 as torch), `names[label]` the class name of a label (for torchvision-style
 * labels with 0 = background pass ['__background__', ...classes], as py-faster-rcnn's `classes`).
 * @example
 * const dets = toVocDetections('000001', { boxes: [47, 239, 195, 371], scores: [0.9], labels: [1] }, ['__background__', 'dog']);
 * console.log(dets[0].bbox); // [48, 240, 195, 371]
 */
export function toVocDetections(
  imageId: string | number,
  pred: { boxes: ArrayLike<number>; scores: ArrayLike<number>; labels: ArrayLike<number> },
  names: readonly string[],
  opts: ToVocOptions = {},
): VocDetection[] {
  const n = pred.scores.length;
  if (pred.boxes.length !== 4 * n || pred.labels.length !== n) {
    throw new InvalidArgumentError(`toVocDetections: boxes must hold 4 numbers per score and labels one, got ${pred.boxes.length} box numbers, ${n} scores, ${pred.labels.length} labels`);
  }
  const convention = opts.convention ?? 'detectron2';
  if (convention !== 'detectron2' && convention !== 'py-faster-rcnn') throw new InvalidArgumentError(`toVocDetections: convention must be 'detectron2' or 'py-faster-rcnn', got ${JSON.stringify(convention)}`);
  const maxShift = convention === 'detectron2' ? 0 : 1;
  const round = (x: number, digits: number): number => (opts.roundAsResultsFile ? Number(pyFixed(x, digits)) : x);
  const out: VocDetection[] = [];
  for (let i = 0; i < n; i++) {
    const name = names[pred.labels[i]];
    if (name === undefined) throw new InvalidArgumentError(`toVocDetections: label ${pred.labels[i]} has no name (${names.length} names)`);
    const b = [0, 1, 2, 3].map((j) => Math.fround(pred.boxes[4 * i + j]));
    const bbox = [Math.fround(b[0] + 1), Math.fround(b[1] + 1), Math.fround(b[2] + maxShift), Math.fround(b[3] + maxShift)].map((v) => round(v, 1));
    out.push({ imageId, name, score: round(Math.fround(pred.scores[i]), 3), bbox });
  }
  return out;
}
