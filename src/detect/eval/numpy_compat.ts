// The few NumPy routines the evaluation ports (coco_eval.ts, voc_eval.ts) need, written to give
// the SAME float64 bits as NumPy 1.24, since pycocotools' numbers are NumPy's arithmetic:
// linspace (i * step + start, last = stop), arange (start + i * step), np.sum/np.mean
// (pairwise summation in blocks of 8192, see pairwiseSum), searchsorted(side='left') and the
// stable argsort (kind='mergesort'). Internal to src/detect/eval/: not public API.

/**
 * np.linspace(start, stop, num) (endpoint=True): y[i] = i * ((stop - start) / (num - 1)) + start,
 * and y[num - 1] = stop exactly (numpy/core/function_base.py). So linspace(.5, .95, 10)[8] is
 * 0.8999999999999999 and linspace(0, 1, 101)[35] is 0.35000000000000003, as in NumPy.
 * @example linspace(0.5, 0.95, 10);
 */
export function linspace(start: number, stop: number, num: number): number[] {
  const div = num - 1;
  const delta = stop - start;
  const out: number[] = [];
  if (div <= 0) return num === 1 ? [start] : [];
  const step = delta / div;
  for (let i = 0; i < num; i++) out.push(step === 0 ? (i / div) * delta + start : i * step + start);
  out[num - 1] = stop;
  return out;
}

/**
 * np.arange(start, stop, step) for floats: length ceil((stop - start) / step), y[i] = start + i * step
 * (so arange(0, 1.1, 0.1)[3] is 0.30000000000000004, which matters for VOC07's `rec >= t`).
 * @example arange(0, 1.1, 0.1).length === 11;
 */
export function arange(start: number, stop: number, step: number): number[] {
  const n = Math.max(0, Math.ceil((stop - start) / step));
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(start + i * step);
  return out;
}

// numpy/core/src/umath/loops_utils.h.src pairwise_sum: < 8 terms one by one; <= 128 terms in
// eight interleaved partial sums; above that, split in two halves (the left a multiple of 8).
function pairwise(a: ArrayLike<number>, lo: number, n: number): number {
  if (n < 8) {
    let res = 0;
    for (let i = 0; i < n; i++) res += a[lo + i];
    return res;
  }
  if (n <= 128) {
    const r = [a[lo], a[lo + 1], a[lo + 2], a[lo + 3], a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]];
    let i = 8;
    for (; i < n - (n % 8); i += 8) for (let j = 0; j < 8; j++) r[j] += a[lo + i + j];
    let res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; i++) res += a[lo + i];
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return pairwise(a, lo, n2) + pairwise(a, lo + n2, n - n2);
}

/**
 * np.sum of a 1-D float64 array: the reduction sees the array in buffer-sized blocks of 8192
 * elements, pairwise within a block and one by one across blocks (checked against NumPy 1.24
 * on arrays up to 300,000 elements by scripts/make_deteval_fixtures.py).
 * @example pairwiseSum([0.1, 0.2, 0.3]);
 */
export function pairwiseSum(a: ArrayLike<number>): number {
  let res = 0;
  for (let lo = 0; lo < a.length; lo += 8192) res += pairwise(a, lo, Math.min(8192, a.length - lo));
  return res;
}

/**
 * np.mean of a 1-D float64 array: pairwiseSum(a) / a.length (NaN when empty, as NumPy).
 * @example npMean([1, 2, 3]) === 2;
 */
export function npMean(a: ArrayLike<number>): number {
  return pairwiseSum(a) / a.length;
}

/**
 * np.searchsorted(a, v, side='left') for an ascending a: the first i with a[i] >= v (a.length if none).
 * @example searchsortedLeft([0, 0.5, 0.5, 1], 0.5) === 1;
 */
export function searchsortedLeft(a: ArrayLike<number>, v: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * np.argsort(-score, kind='mergesort'): indices by descending score, ties in input order
 * (a stable sort; V8's Array.prototype.sort is stable since ES2019).
 * @example argsortDescendingStable([0.5, 0.9, 0.5]); // [1, 0, 2]
 */
export function argsortDescendingStable(score: ArrayLike<number>): number[] {
  const idx = Array.from({ length: score.length }, (_, i) => i);
  return idx.sort((i, j) => (score[i] > score[j] ? -1 : score[i] < score[j] ? 1 : 0));
}

/**
 * np.argsort(flag, kind='mergesort') of a 0/1 array: the zeros first, then the ones, each in input order.
 * @example argsortFlagsStable([1, 0, 1, 0]); // [1, 3, 0, 2]
 */
export function argsortFlagsStable(flag: ArrayLike<number>): number[] {
  const out: number[] = [];
  for (let i = 0; i < flag.length; i++) if (!flag[i]) out.push(i);
  for (let i = 0; i < flag.length; i++) if (flag[i]) out.push(i);
  return out;
}

/**
 * Python's '{:0.Nf}'.format(x): like toFixed(N), but an exact tie rounds half to even (Python
 * rounds the exact binary value, half-even; toFixed picks the larger candidate). A tie at 3
 * digits means x = k/16 with k odd, e.g. 0.0625 -> '0.062' in Python, '0.063' from toFixed.
 * @example pyFixed(0.0625, 3) === '0.062';
 */
export function pyFixed(x: number, digits: number): string {
  const s = x.toFixed(digits);
  if (!Number.isFinite(x) || x === 0) return s;
  // x = M * 2^E exactly; 2 * |x| * 10^digits is an odd integer iff x sits exactly halfway.
  const bits = new BigUint64Array(new Float64Array([Math.abs(x)]).buffer)[0];
  const expBits = Number((bits >> 52n) & 0x7ffn);
  const frac = bits & ((1n << 52n) - 1n);
  const M = expBits === 0 ? frac : frac | (1n << 52n);
  const E = (expBits === 0 ? 1 : expBits) - 1075;
  let twice: bigint; // 2 * |x| * 10^digits, when an integer
  const num = M * 10n ** BigInt(digits);
  if (E + 1 >= 0) twice = num << BigInt(E + 1);
  else {
    const den = 1n << BigInt(-(E + 1));
    if (num % den !== 0n) return s;
    twice = num / den;
  }
  if (twice % 2n === 0n) return s;
  const lower = (twice - 1n) / 2n;
  const even = lower % 2n === 0n ? lower : lower + 1n;
  const str = even.toString().padStart(digits + 1, '0');
  const body = digits === 0 ? str : `${str.slice(0, -digits)}.${str.slice(-digits)}`;
  return (x < 0 ? '-' : '') + body;
}
