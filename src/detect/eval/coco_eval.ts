// COCO box mAP exactly as pycocotools computes it: a line-by-line port of COCOeval
// (PythonAPI/pycocotools/cocoeval.py at cocodataset/cocoapi 8c9bcc3, iouType 'bbox'), of the
// parts of coco.py it relies on (loadRes: a result's area = w * h, id = index + 1, iscrowd 0;
// getAnnIds' filtering) and of maskApi.c bbIou (xywh boxes; for a crowd gt the union is the
// detection's own area). Float64 throughout, NumPy's linspace / mean / searchsorted / mergesort
// reproduced bit for bit (numpy_compat.ts), so stats equal pycocotools' to the last bit.
// Not here: segm / keypoints IoU types, file I/O (pass parsed instances.json dicts).

import { DataError, InvalidArgumentError } from '../../errors.js';
import { argsortDescendingStable, argsortFlagsStable, linspace, npMean, pyFixed, searchsortedLeft } from './numpy_compat.js';

/**
 * A COCO ground-truth annotation as evaluation reads it (instances.json `annotations[]`; the
 * data loader's CocoAnnotation fits); bbox is [x, y, w, h].
 * @example const a: CocoGtAnnotation = { id: 1, image_id: 397133, category_id: 18, bbox: [10, 20, 40, 30], area: 1200, iscrowd: 0 };
 */
export interface CocoGtAnnotation {
  id: number; image_id: number; category_id: number; bbox: readonly number[];
  /** pycocotools reads gt area from here (the segment's area in COCO), never from bbox; absent -> w * h (NOTE: our choice; pycocotools raises). */
  area?: number;
  iscrowd?: number | boolean;
  /** Overwritten by iscrowd in pycocotools (cocoeval.py _prepare, cocoapi issues #123, #466): read only with `honorIgnoreFlag`. */
  ignore?: number | boolean;
  [key: string]: unknown;
}
/**
 * A COCO-format ground truth, as instances.json (a parsed file, or the data loader's CocoJson);
 * of images and categories only `id` is read.
 * @example const gt: CocoGroundTruth = { images: [{ id: 1, width: 640, height: 480 }], categories: [{ id: 1, name: 'dog' }], annotations: [] };
 */
export interface CocoGroundTruth {
  images: readonly { id: number; [key: string]: unknown }[];
  annotations: readonly CocoGtAnnotation[];
  categories: readonly { id: number; [key: string]: unknown }[];
  [key: string]: unknown;
}
/**
 * One detection in the COCO results format; bbox is [x, y, w, h] in image pixels.
 * @example const d: CocoDetection = { image_id: 397133, category_id: 18, bbox: [12, 21, 39, 30], score: 0.87 };
 */
export interface CocoDetection { image_id: number; category_id: number; bbox: readonly number[]; score: number }

/**
 * COCOeval Params (defaults as pycocotools' setDetParams) plus the `honorIgnoreFlag` fix.
 * @example const opts: CocoEvalOptions = { catIds: [1, 18], maxDets: [1, 10, 100] };
 */
export interface CocoEvalOptions {
  /** Images to evaluate (default: every gt image); sorted and de-duplicated as np.unique. */
  imgIds?: readonly number[];
  /** Categories to evaluate (default: every gt category); sorted and de-duplicated. */
  catIds?: readonly number[];
  /** false: categories are ignored (proposal recall), as Params.useCats = 0. Default true. */
  useCats?: boolean;
  /** Default np.linspace(.5, .95, 10). */
  iouThrs?: readonly number[];
  /** Default np.linspace(0, 1, 101). */
  recThrs?: readonly number[];
  /** Default [1, 10, 100]; sorted. The summary reads maxDets[0..2] (and 100 for AP), as pycocotools. */
  maxDets?: readonly number[];
  /** Default all/small/medium/large: [0, 1e10], [0, 1024], [1024, 9216], [9216, 1e10] (both ends inclusive). */
  areaRng?: readonly (readonly [number, number])[];
  /** Names of areaRng, default ['all', 'small', 'medium', 'large']; the summary looks these up. */
  areaRngLbl?: readonly string[];
  /** Ignore a gt whose `ignore` flag is set (PR cocoapi#322); default false, as pycocotools, which overwrites it with iscrowd. */
  honorIgnoreFlag?: boolean;
}

/**
 * The 12 numbers of COCOeval.summarize() for boxes, in its order (fractions; -1 where no gt).
 * @example const s: CocoStats = evaluateCoco({ images: [{ id: 1 }], categories: [{ id: 1 }], annotations: [{ id: 1, image_id: 1, category_id: 1, bbox: [0, 0, 40, 30] }] }, [{ image_id: 1, category_id: 1, bbox: [2, 0, 40, 30], score: 0.9 }]).stats; console.log(s.AP, s.AP50);
 */
export interface CocoStats {
  AP: number; AP50: number; AP75: number; APs: number; APm: number; APl: number;
  AR1: number; AR10: number; AR100: number; ARs: number; ARm: number; ARl: number;
}

/**
 * A float64 array in C order, as a NumPy array: element [i0, i1, ...] sits at ((i0 * s1 + i1) * s2 + ...).
 * @example
 * const { recall } = evaluateCoco({ images: [{ id: 1 }], categories: [{ id: 1 }], annotations: [{ id: 1, image_id: 1, category_id: 1, bbox: [0, 0, 40, 30] }] }, [{ image_id: 1, category_id: 1, bbox: [2, 0, 40, 30], score: 0.9 }]);
 * const [, K, A, M] = recall.shape;
 * console.log(recall.data[((0 * K + 0) * A + 0) * M + (M - 1)]); // recall of the first category at IoU .5, all areas, maxDets 100
 */
export interface CocoEvalArray { shape: number[]; data: Float64Array }

/**
 * The resolved parameters an evaluation ran with (COCOeval.params after evaluate()).
 * @example const p: CocoParams = evaluateCoco({ images: [{ id: 1 }], categories: [{ id: 1 }], annotations: [{ id: 1, image_id: 1, category_id: 1, bbox: [0, 0, 40, 30] }] }, []).params; console.log(p.iouThrs.length, p.catIds);
 */
export interface CocoParams {
  imgIds: number[]; catIds: number[]; useCats: boolean; iouThrs: number[]; recThrs: number[];
  maxDets: number[]; areaRng: [number, number][]; areaRngLbl: string[];
}

/**
 * evaluateCoco's answer: COCOeval.stats by name, and eval['precision'], eval['recall'], eval['scores'].
 * @example const r: CocoEvalResult = evaluateCoco({ images: [{ id: 1 }], categories: [{ id: 1 }], annotations: [{ id: 1, image_id: 1, category_id: 1, bbox: [0, 0, 40, 30] }] }, [{ image_id: 1, category_id: 1, bbox: [2, 0, 40, 30], score: 0.9 }]); console.log(formatCocoSummary(r.stats, r.params));
 */
export interface CocoEvalResult {
  stats: CocoStats;
  /** [T, R, K, A, M]; -1 where a category has no gt in that area range. */
  precision: CocoEvalArray;
  /** [T, K, A, M]; -1 likewise. */
  recall: CocoEvalArray;
  /** [T, R, K, A, M]: the score at each recall threshold (pycocotools' eval['scores']). */
  scores: CocoEvalArray;
  params: CocoParams;
}

/**
 * The default COCO area ranges (cocoeval.py Params.setDetParams): all, small, medium, large.
 * @example const [, small] = COCO_AREA_RANGES; console.log(small); // [0, 1024]
 */
export const COCO_AREA_RANGES: readonly (readonly [number, number])[] = [[0 ** 2, 1e5 ** 2], [0 ** 2, 32 ** 2], [32 ** 2, 96 ** 2], [96 ** 2, 1e5 ** 2]];
const COCO_AREA_LABELS = ['all', 'small', 'medium', 'large'];
const EPS = 2.220446049250313e-16; // np.spacing(1)

interface Gt { id: number; bbox: readonly number[]; area: number; iscrowd: boolean; ignore: boolean }
interface Dt { id: number; bbox: readonly number[]; area: number; score: number }
// One evaluateImg result; dtMatches / dtIgnore are [T, D] row-major (gt id matched, or 0).
interface EvalImg { dtScores: number[]; dtMatches: Float64Array; dtIgnore: Uint8Array; gtIgnore: Uint8Array }

/**
 * maskApi.c bbIou for xywh boxes: ious[d][g] = inter / union, union = dt area when gt g is a
 * crowd region (so a detection inside a crowd scores 1), else dt + gt - inter; 0 without overlap.
 * @example cocoBoxIou([[0, 0, 10, 10]], [[5, 0, 10, 10]], [false]); // [[1/3]]
 */
export function cocoBoxIou(dt: readonly (readonly number[])[], gt: readonly (readonly number[])[], iscrowd: readonly boolean[]): number[][] {
  const out = dt.map(() => new Array<number>(gt.length).fill(0));
  for (let g = 0; g < gt.length; g++) {
    const G = gt[g];
    const ga = G[2] * G[3];
    const crowd = iscrowd[g];
    for (let d = 0; d < dt.length; d++) {
      const D = dt[d];
      const da = D[2] * D[3];
      const w = Math.min(D[2] + D[0], G[2] + G[0]) - Math.max(D[0], G[0]);
      if (w <= 0) continue;
      const h = Math.min(D[3] + D[1], G[3] + G[1]) - Math.max(D[1], G[1]);
      if (h <= 0) continue;
      const i = w * h;
      out[d][g] = i / (crowd ? da : da + ga - i);
    }
  }
  return out;
}

function uniqueSorted(ids: readonly number[]): number[] {
  return [...new Set(ids)].sort((a, b) => a - b);
}

function checkBox(bbox: unknown, what: string): readonly number[] {
  if (!Array.isArray(bbox) || bbox.length !== 4 || !bbox.every((v) => typeof v === 'number' && Number.isFinite(v))) {
    throw new DataError(`evaluateCoco: ${what} bbox must be 4 finite numbers [x, y, w, h], got ${JSON.stringify(bbox)}`);
  }
  return bbox as number[];
}

function resolveParams(gt: CocoGroundTruth, opts: CocoEvalOptions): CocoParams {
  const areaRng = (opts.areaRng ?? COCO_AREA_RANGES).map((r) => [r[0], r[1]] as [number, number]);
  const areaRngLbl = [...(opts.areaRngLbl ?? (opts.areaRng ? areaRng.map((_, i) => COCO_AREA_LABELS[i] ?? `range${i}`) : COCO_AREA_LABELS))];
  if (areaRngLbl.length !== areaRng.length) throw new InvalidArgumentError(`evaluateCoco: areaRngLbl has ${areaRngLbl.length} names for ${areaRng.length} areaRng entries`);
  const maxDets = [...(opts.maxDets ?? [1, 10, 100])].sort((a, b) => a - b);
  if (maxDets.length === 0 || !maxDets.every((m) => Number.isInteger(m) && m > 0)) throw new InvalidArgumentError(`evaluateCoco: maxDets must be positive integers, got ${JSON.stringify(opts.maxDets)}`);
  const iouThrs = [...(opts.iouThrs ?? linspace(0.5, 0.95, Math.round((0.95 - 0.5) / 0.05) + 1))];
  const recThrs = [...(opts.recThrs ?? linspace(0.0, 1.0, Math.round((1.0 - 0.0) / 0.01) + 1))];
  if (iouThrs.length === 0 || recThrs.length === 0) throw new InvalidArgumentError('evaluateCoco: iouThrs and recThrs must not be empty');
  return {
    imgIds: uniqueSorted(opts.imgIds ?? gt.images.map((im) => im.id)),
    catIds: uniqueSorted(opts.catIds ?? gt.categories.map((c) => c.id)),
    useCats: opts.useCats ?? true, iouThrs, recThrs, maxDets, areaRng, areaRngLbl,
  };
}

/** cocoeval.py evaluateImg for one (image, category, area range) at maxDet = maxDets[-1]. `dt` is
 * already sorted by score (stable) and cut to maxDet, as computeIoU and evaluateImg both do; ious is [D][G]. */
function evaluateImg(gts: Gt[], dt: Dt[], ious: number[][], aRng: [number, number], iouThrs: number[]): EvalImg {
  const gIgn = gts.map((g) => (g.ignore || g.area < aRng[0] || g.area > aRng[1] ? 1 : 0));
  // sort gt ignore last (stable)
  const gtind = argsortFlagsStable(gIgn);
  const gt = gtind.map((i) => gts[i]);
  const gtIg = Uint8Array.from(gtind, (i) => gIgn[i]);
  const T = iouThrs.length;
  const G = gt.length;
  const D = dt.length;
  const gtm = new Float64Array(T * G); // [T, G]
  const dtm = new Float64Array(T * D); // [T, D]
  const dtIg = new Uint8Array(T * D); // [T, D]
  if (ious.length > 0) {
    for (let tind = 0; tind < T; tind++) {
      for (let dind = 0; dind < D; dind++) {
        // information about best match so far (m = -1 -> unmatched)
        let iou = Math.min(iouThrs[tind], 1 - 1e-10);
        let m = -1;
        for (let gind = 0; gind < G; gind++) {
          // if this gt already matched, and not a crowd, continue
          if (gtm[tind * G + gind] > 0 && !gt[gind].iscrowd) continue;
          // if dt matched to reg gt, and on ignore gt, stop
          if (m > -1 && gtIg[m] === 0 && gtIg[gind] === 1) break;
          // continue to next gt unless better match made
          const v = ious[dind][gtind[gind]];
          if (v < iou) continue;
          // if match successful and best so far, store appropriately
          iou = v;
          m = gind;
        }
        if (m === -1) continue;
        dtIg[tind * D + dind] = gtIg[m];
        dtm[tind * D + dind] = gt[m].id;
        gtm[tind * G + m] = dt[dind].id;
      }
    }
  }
  // set unmatched detections outside of area range to ignore
  for (let dind = 0; dind < D; dind++) {
    if (dt[dind].area < aRng[0] || dt[dind].area > aRng[1]) {
      for (let t = 0; t < T; t++) if (dtm[t * D + dind] === 0) dtIg[t * D + dind] = 1;
    }
  }
  return { dtScores: dt.map((d) => d.score), dtMatches: dtm, dtIgnore: dtIg, gtIgnore: gtIg };
}

/** cocoeval.py accumulate for one (category, area range, maxDet): calls put(t, recall, q, ss) per IoU threshold; nothing when no gt counts. */
function accumulateOne(E: EvalImg[], maxDet: number, p: CocoParams, put: (t: number, rc: number, q: Float64Array, ss: Float64Array) => void): void {
  let npig = 0;
  for (const e of E) for (const g of e.gtIgnore) if (g === 0) npig++;
  if (npig === 0) return;
  const T = p.iouThrs.length;
  const R = p.recThrs.length;
  // concatenate the images' first maxDet detections: scores [N], matched / ignored [T, N]
  let N = 0;
  for (const e of E) N += Math.min(maxDet, e.dtScores.length);
  const scores = new Float64Array(N);
  const matched = new Uint8Array(T * N);
  const ignored = new Uint8Array(T * N);
  let off = 0;
  for (const e of E) {
    const D = e.dtScores.length;
    const n = Math.min(maxDet, D);
    for (let j = 0; j < n; j++) {
      scores[off + j] = e.dtScores[j];
      for (let t = 0; t < T; t++) {
        matched[t * N + off + j] = e.dtMatches[t * D + j] !== 0 ? 1 : 0;
        ignored[t * N + off + j] = e.dtIgnore[t * D + j];
      }
    }
    off += n;
  }
  // different sorting method generates slightly different results; mergesort as the Matlab code
  const inds = argsortDescendingStable(scores);
  const rc = new Float64Array(N);
  const pr = new Float64Array(N);
  for (let t = 0; t < T; t++) {
    let tp = 0;
    let fp = 0;
    for (let i = 0; i < N; i++) {
      const at = t * N + inds[i];
      if (!ignored[at]) { if (matched[at]) tp++; else fp++; }
      rc[i] = tp / npig;
      pr[i] = tp / (fp + tp + EPS);
    }
    for (let i = N - 1; i > 0; i--) if (pr[i] > pr[i - 1]) pr[i - 1] = pr[i];
    const q = new Float64Array(R);
    const ss = new Float64Array(R);
    for (let ri = 0; ri < R; ri++) {
      const pi = searchsortedLeft(rc, p.recThrs[ri]);
      if (pi >= N) break; // pycocotools: an IndexError ends the loop (try/except), the rest stays 0
      q[ri] = pr[pi];
      ss[ri] = scores[inds[pi]];
    }
    put(t, N ? rc[N - 1] : 0, q, ss);
  }
}

function summarize(res: { precision: CocoEvalArray; recall: CocoEvalArray }, p: CocoParams, ap: boolean, iouThr: number | null, areaRng: string, maxDets: number): number {
  const [T, R, K, A, M] = res.precision.shape;
  const aind = p.areaRngLbl.indexOf(areaRng);
  const mind = p.maxDets.indexOf(maxDets);
  // np.where(iouThr == p.iouThrs): exact float equality, as pycocotools
  const ts = iouThr === null ? p.iouThrs.map((_, i) => i) : p.iouThrs.flatMap((v, i) => (v === iouThr ? [i] : []));
  if (aind < 0 || mind < 0) return -1;
  const vals: number[] = [];
  for (const t of ts) {
    if (ap) {
      for (let r = 0; r < R; r++) for (let k = 0; k < K; k++) {
        const v = res.precision.data[(((t * R + r) * K + k) * A + aind) * M + mind];
        if (v > -1) vals.push(v);
      }
    } else {
      for (let k = 0; k < K; k++) {
        const v = res.recall.data[((t * K + k) * A + aind) * M + mind];
        if (v > -1) vals.push(v);
      }
    }
  }
  return vals.length === 0 ? -1 : npMean(vals);
}

/**
 * COCO box evaluation as pycocotools' COCOeval(gt, gt.loadRes(dets), 'bbox'): evaluate(),
 * accumulate(), summarize(). `gt` is an instances.json dict, `dets` the results list. Returns
 * the 12 summary numbers by name (AP = mAP@[.5:.95], ...), eval['precision'] [T, R, K, A, M]
 * and eval['recall'] [T, K, A, M] (-1 where a category has no gt). Throws DataError for a
 * detection on an image the gt does not list (pycocotools' loadRes assertion), a malformed
 * bbox or score, or a zero or repeated gt annotation id (pycocotools takes a match to id 0 for
 * no match and keys annotations by id, so either silently changes its numbers).
 * NOTE: an empty `dets` is accepted (every AP 0 where gt exists); pycocotools' loadRes raises.
 * @example
 * const gt = { images: [{ id: 1 }], categories: [{ id: 1 }], annotations: [{ id: 1, image_id: 1, category_id: 1, bbox: [10, 10, 50, 50], area: 2500, iscrowd: 0 }] };
 * const { stats } = evaluateCoco(gt, [{ image_id: 1, category_id: 1, bbox: [10, 10, 50, 50], score: 0.9 }]);
 * console.log(stats.AP); // 0.9999999999999998: one TP has precision 1 / (1 + eps), as in pycocotools (prints 1.000)
 */
export function evaluateCoco(gt: CocoGroundTruth, dets: readonly CocoDetection[], opts: CocoEvalOptions = {}): CocoEvalResult {
  if (!gt || !Array.isArray(gt.images) || !Array.isArray(gt.annotations) || !Array.isArray(gt.categories)) {
    throw new DataError("evaluateCoco: ground truth must be a COCO dict with arrays 'images', 'annotations' and 'categories'");
  }
  if (!Array.isArray(dets)) throw new DataError('evaluateCoco: detections must be an array of {image_id, category_id, bbox, score}');
  const p = resolveParams(gt, opts);
  const imageSet = new Set(gt.images.map((im) => im.id));
  const imgSet = new Set(p.imgIds);
  const catSet = new Set(p.catIds);
  // _gts / _dts: by category, then image, each list in dataset / results order
  const gtsByCat = new Map<number, Map<number, Gt[]>>();
  const dtsByCat = new Map<number, Map<number, Dt[]>>();
  const push = <V>(by: Map<number, Map<number, V[]>>, cat: number, img: number, v: V): void => {
    const byImg = by.get(cat) ?? by.set(cat, new Map()).get(cat)!;
    (byImg.get(img) ?? byImg.set(img, []).get(img)!).push(v);
  };
  const seen = new Set<number>();
  gt.annotations.forEach((a, i) => {
    if (a.id === 0 || seen.has(a.id)) throw new DataError(`evaluateCoco: annotation ${i} has id ${a.id}, ${a.id === 0 ? 'but pycocotools reads id 0 as "no match"' : 'which an earlier annotation already has'}; gt annotation ids must be unique and nonzero`);
    seen.add(a.id);
    const bbox = checkBox(a.bbox, `annotation ${i} (id ${a.id})`);
    // getAnnIds(imgIds=p.imgIds, catIds=p.catIds if useCats): annotations in dataset order
    if (!imgSet.has(a.image_id) || !catSet.has(a.category_id)) return;
    const iscrowd = Boolean(a.iscrowd);
    const g: Gt = { id: a.id, bbox, area: typeof a.area === 'number' ? a.area : bbox[2] * bbox[3], iscrowd, ignore: iscrowd || (opts.honorIgnoreFlag === true && Boolean(a.ignore)) };
    push(gtsByCat, a.category_id, a.image_id, g);
  });
  dets.forEach((d, i) => {
    if (!imageSet.has(d.image_id)) throw new DataError(`evaluateCoco: detection ${i} has image_id ${d.image_id}, which is not among the ground truth's ${imageSet.size} images (results do not correspond to this COCO set)`);
    if (typeof d.score !== 'number' || Number.isNaN(d.score)) throw new DataError(`evaluateCoco: detection ${i} has score ${JSON.stringify(d.score)}, expected a number`);
    const bbox = checkBox(d.bbox, `detection ${i}`);
    if (!imgSet.has(d.image_id) || !catSet.has(d.category_id)) return;
    // loadRes: id = index + 1, area = w * h, iscrowd = 0
    push(dtsByCat, d.category_id, d.image_id, { id: i + 1, bbox, area: bbox[2] * bbox[3], score: d.score });
  });

  const catIds = p.useCats ? p.catIds : [-1];
  const maxDet = p.maxDets[p.maxDets.length - 1];
  const T = p.iouThrs.length;
  const R = p.recThrs.length;
  const K = catIds.length;
  const A = p.areaRng.length;
  const M = p.maxDets.length;
  // evalImgs[k][a]: the non-None evaluateImg results in p.imgIds order (an image with neither
  // gt nor dt for the category gives None, which accumulate drops, so it is never built).
  const evalImgs: EvalImg[][][] = catIds.map(() => p.areaRng.map(() => []));
  for (let k = 0; k < K; k++) {
    const cats = p.useCats ? [catIds[k]] : p.catIds;
    const imgs = new Set<number>();
    for (const c of cats) for (const img of [...(gtsByCat.get(c)?.keys() ?? []), ...(dtsByCat.get(c)?.keys() ?? [])]) imgs.add(img);
    for (const imgId of [...imgs].sort((x, y) => x - y)) {
      const gts = cats.flatMap((c) => gtsByCat.get(c)?.get(imgId) ?? []);
      const dts = cats.flatMap((c) => dtsByCat.get(c)?.get(imgId) ?? []);
      // computeIoU / evaluateImg: dets by score (stable), cut to maxDets[-1]; ious [] when either side is empty
      const dt = argsortDescendingStable(dts.map((d) => d.score)).slice(0, maxDet).map((i) => dts[i]);
      const ious = dt.length === 0 || gts.length === 0 ? [] : cocoBoxIou(dt.map((d) => d.bbox), gts.map((g) => g.bbox), gts.map((g) => g.iscrowd));
      for (let a = 0; a < A; a++) evalImgs[k][a].push(evaluateImg(gts, dt, ious, p.areaRng[a], p.iouThrs));
    }
  }

  const precision: CocoEvalArray = { shape: [T, R, K, A, M], data: new Float64Array(T * R * K * A * M).fill(-1) };
  const recall: CocoEvalArray = { shape: [T, K, A, M], data: new Float64Array(T * K * A * M).fill(-1) };
  const scores: CocoEvalArray = { shape: [T, R, K, A, M], data: new Float64Array(T * R * K * A * M).fill(-1) };
  for (let k = 0; k < K; k++) for (let a = 0; a < A; a++) for (let m = 0; m < M; m++) {
    const E = evalImgs[k][a];
    if (E.length === 0) continue;
    accumulateOne(E, p.maxDets[m], p, (t, rc, q, ss) => {
      recall.data[((t * K + k) * A + a) * M + m] = rc;
      for (let r = 0; r < R; r++) {
        const at = (((t * R + r) * K + k) * A + a) * M + m;
        precision.data[at] = q[r];
        scores.data[at] = ss[r];
      }
    });
  }

  const res = { precision, recall };
  const md = p.maxDets;
  const s = (ap: boolean, iouThr: number | null, area: string, maxDets: number | undefined): number => (maxDets === undefined ? -1 : summarize(res, p, ap, iouThr, area, maxDets));
  const stats: CocoStats = {
    AP: s(true, null, 'all', 100), AP50: s(true, 0.5, 'all', md[2]), AP75: s(true, 0.75, 'all', md[2]),
    APs: s(true, null, 'small', md[2]), APm: s(true, null, 'medium', md[2]), APl: s(true, null, 'large', md[2]),
    AR1: s(false, null, 'all', md[0]), AR10: s(false, null, 'all', md[1]), AR100: s(false, null, 'all', md[2]),
    ARs: s(false, null, 'small', md[2]), ARm: s(false, null, 'medium', md[2]), ARl: s(false, null, 'large', md[2]),
  };
  return { stats, precision, recall, scores, params: p };
}

/**
 * One image's predictions in the COCO results format, as torchvision's detection reference
 * (references/detection/coco_eval.py prepare_for_coco_detection): boxes x1, y1, x2, y2 (4 per
 * row, torchvision's layout) become [x1, y1, x2 - x1, y2 - y1], the subtraction in float32 as
 * torch does it. `categoryIds[label]` maps a label to its COCO category id (default: the label
 * itself, as torchvision's COCO models, whose labels are COCO category ids).
 * @example
 * const dets = toCocoDetections(42, { boxes: new Float32Array([10, 20, 50, 80]), scores: new Float32Array([0.9]), labels: new Int32Array([18]) });
 * console.log(dets[0].bbox); // [10, 20, 40, 60]
 */
export function toCocoDetections(
  imageId: number,
  pred: { boxes: ArrayLike<number>; scores: ArrayLike<number>; labels: ArrayLike<number> },
  categoryIds?: readonly number[],
): CocoDetection[] {
  const n = pred.scores.length;
  if (pred.boxes.length !== 4 * n || pred.labels.length !== n) {
    throw new InvalidArgumentError(`toCocoDetections: boxes must hold 4 numbers per score and labels one, got ${pred.boxes.length} box numbers, ${n} scores, ${pred.labels.length} labels`);
  }
  const out: CocoDetection[] = [];
  for (let i = 0; i < n; i++) {
    const [x1, y1, x2, y2] = [0, 1, 2, 3].map((j) => Math.fround(pred.boxes[4 * i + j]));
    const label = pred.labels[i];
    const category_id = categoryIds ? categoryIds[label] : label;
    if (category_id === undefined) throw new InvalidArgumentError(`toCocoDetections: label ${label} has no entry in categoryIds (${categoryIds?.length} entries)`);
    out.push({ image_id: imageId, category_id, bbox: [x1, y1, Math.fround(x2 - x1), Math.fround(y2 - y1)], score: Math.fround(pred.scores[i]) });
  }
  return out;
}

/**
 * The stats keys in pycocotools' order (COCOeval.stats[0..11]).
 * @example
 * const r = evaluateCoco({ images: [{ id: 1 }], categories: [{ id: 1 }], annotations: [{ id: 1, image_id: 1, category_id: 1, bbox: [0, 0, 40, 30] }] }, [{ image_id: 1, category_id: 1, bbox: [2, 0, 40, 30], score: 0.9 }]);
 * const row = COCO_STAT_NAMES.map((k) => r.stats[k]); // COCOeval.stats as an array
 */
export const COCO_STAT_NAMES: readonly (keyof CocoStats)[] = ['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'AR1', 'AR10', 'AR100', 'ARs', 'ARm', 'ARl'];

/**
 * The 12 lines COCOeval.summarize() prints, exactly (Python's format spec
 * ' {:<18} {} @[ IoU={:<9} | area={:>6s} | maxDets={:>3d} ] = {:0.3f}', half-even rounding).
 * `params` gives the IoU range and maxDets printed (default pycocotools' defaults).
 * @example
 * const { stats, params } = evaluateCoco({ images: [{ id: 1 }], categories: [{ id: 1 }], annotations: [] }, []);
 * console.log(formatCocoSummary(stats, params)); // " Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = -1.000" ...
 */
export function formatCocoSummary(stats: CocoStats, params?: Pick<CocoParams, 'iouThrs' | 'maxDets'>): string {
  const iouThrs = params?.iouThrs ?? linspace(0.5, 0.95, 10);
  const md = params?.maxDets ?? [1, 10, 100];
  const rows: [boolean, number | null, string, number][] = [
    [true, null, 'all', 100], [true, 0.5, 'all', md[2]], [true, 0.75, 'all', md[2]],
    [true, null, 'small', md[2]], [true, null, 'medium', md[2]], [true, null, 'large', md[2]],
    [false, null, 'all', md[0]], [false, null, 'all', md[1]], [false, null, 'all', md[2]],
    [false, null, 'small', md[2]], [false, null, 'medium', md[2]], [false, null, 'large', md[2]],
  ];
  return rows.map(([ap, iouThr, area, maxDets], i) => {
    const title = (ap ? 'Average Precision' : 'Average Recall').padEnd(18);
    const iouStr = (iouThr === null ? `${pyFixed(iouThrs[0], 2)}:${pyFixed(iouThrs[iouThrs.length - 1], 2)}` : pyFixed(iouThr, 2)).padEnd(9);
    return ` ${title} ${ap ? '(AP)' : '(AR)'} @[ IoU=${iouStr} | area=${area.padStart(6)} | maxDets=${String(maxDets).padStart(3)} ] = ${pyFixed(stats[COCO_STAT_NAMES[i]], 3)}`;
  }).join('\n');
}
