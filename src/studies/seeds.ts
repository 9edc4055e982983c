// Seeds as a dimension of a study: the spread of a number over seeds (mean, min, max and a
// 95% Student-t interval with n-1 degrees of freedom; none for one seed), its one-line form
// for tables ("9.04% ± 0.52 (8.80–9.30%), 3 seeds"), the mean line and min–max band of a
// plotted series over seeds, and a verdict: a claim of the seeds counted seed by seed.
// Not here: what a study measures (each study file) or how seeds are trained (common.ts).

import type { TrainedNet } from './common.js';
import type { Series } from './plot.js';

/**
 * A number over seeds.
 * @example const s: Stat = seedStat([0.091, 0.087, 0.095]);  // s.mean, s.min, s.max, s.ci95
 */
export interface Stat {
  n: number;
  mean: number;
  min: number;
  max: number;
  /** 95% interval of the mean, mean ± t(0.975, n-1) · sd / sqrt(n); null for n < 2. */
  ci95: [number, number] | null;
  /** Every seed's value, in seed order. */
  values: number[];
}

/** t(0.975, dof) for dof 1..30 (any statistics table). */
const T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131,
  2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042];

/** The 97.5% quantile of Student's t with `dof` degrees of freedom (table to 30, then the
 *  Cornish-Fisher expansion around z = 1.96, within 1e-3 of the exact value). */
export function t975(dof: number): number {
  if (!(dof >= 1)) return NaN;
  if (dof <= 30) return T975[Math.floor(dof) - 1];
  const z = 1.959964;
  return z + (z ** 3 + z) / (4 * dof) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * dof * dof);
}

/**
 * Mean, min, max and the 95% interval of a number over seeds (non-finite values are left out).
 * @example seedStat([1, 2, 3])  // { n: 3, mean: 2, min: 1, max: 3, ci95: [-0.484, 4.484], values: [1, 2, 3] }
 */
export function seedStat(values: number[]): Stat {
  const v = values.filter((x) => Number.isFinite(x));
  const n = v.length;
  if (!n) return { n: 0, mean: NaN, min: NaN, max: NaN, ci95: null, values: [] };
  const mean = v.reduce((s, x) => s + x, 0) / n;
  let ci95: [number, number] | null = null;
  if (n > 1) {
    const sd = Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1));
    const h = (t975(n - 1) * sd) / Math.sqrt(n);
    ci95 = [mean - h, mean + h];
  }
  return { n, mean, min: Math.min(...v), max: Math.max(...v), ci95, values: v };
}

/** "mean ± half-interval (min–max), n seeds"; the plain value for one seed. `f` formats a
 *  value, `fd` a difference (the half-interval). */
export function fmtStat(s: Stat | null | undefined, f: (v: number) => string, fd: (v: number) => string = f): string {
  if (!s || !s.n) return '–';
  if (s.n === 1) return f(s.mean);
  const half = s.ci95 ? (s.ci95[1] - s.ci95[0]) / 2 : NaN;
  return `${f(s.mean)} ± ${fd(half)} (${f(s.min)}–${f(s.max)}), ${s.n} seeds`;
}

/** Points per seed ([x, y] each), aligned on x: the mean line and, for several seeds, the
 *  min–max band. */
export function seedSeries(perSeed: [number, number][][], base: Omit<Series, 'points' | 'band'>): Series {
  const xs = [...new Set(perSeed.flatMap((p) => p.map((q) => q[0])))].sort((a, b) => a - b);
  const at = xs.map((x) => [x, seedStat(perSeed.map((p) => p.find((q) => q[0] === x)?.[1] ?? NaN))] as const);
  const s: Series = { ...base, points: at.map(([x, st]) => [x, st.mean]) };
  if (perSeed.length > 1) s.band = at.map(([x, st]) => [x, st.min, st.max]);
  return s;
}

/** Values of `f` per seed, as a Stat (null where every seed lacks it). */
export function over<R>(rs: R[], f: (r: R) => number | null | undefined): Stat {
  return seedStat(rs.map((r) => f(r) ?? NaN));
}

/**
 * A claim of the seeds, tested seed by seed: how many seeds support it.
 * @example for (const v of readStudy('studies/degradation').verdicts ?? []) console.log(v.status, v.text);  // holds plain56 above plain20 in final training error in 3 of 3 seeds: holds.
 */
export interface Verdict {
  /** The claim, in the seeds' words. */
  claim: string;
  /** Seeds where it holds, out of n. */
  support: number;
  n: number;
  /** holds (every seed), mixed (some), fails (none), or open (nothing to test it on). */
  status: 'holds' | 'mixed' | 'fails' | 'open';
  /** The plain sentence shown on the page. */
  text: string;
}

/** A verdict from per-seed booleans (null: the seed cannot test it). `what` says what was
 *  counted, e.g. "plain56 above plain20 in final training error"; `extra` adds the numbers. */
export function verdict(claim: string, what: string, perSeed: (boolean | null)[], extra = ''): Verdict {
  const tested = perSeed.filter((b): b is boolean => b !== null);
  const n = tested.length;
  const support = tested.filter(Boolean).length;
  const status = n === 0 ? 'open' : support === n ? 'holds' : support === 0 ? 'fails' : 'mixed';
  const word = { holds: 'holds', mixed: 'holds in some seeds only', fails: 'does not hold here', open: 'cannot be tested here' }[status];
  const text = n === 0 ? `${claim}: ${word}${extra ? ` (${extra})` : ''}.`
    : `${what} in ${support} of ${n} seed${n > 1 ? 's' : ''}: ${word}${extra ? `; ${extra}` : ''}${n === 1 ? ' (this rests on one seed)' : ''}.`;
  return { claim, support, n, status, text };
}

/** "within the spread" when |a - b| is no larger than the larger min–max range of the two,
 *  else "beyond the spread"; for one seed each, there is no spread to compare with. */
export function againstSpread(a: Stat, b: Stat): string {
  if (a.n < 2 || b.n < 2) return 'one seed: no spread to compare with';
  const range = Math.max(a.max - a.min, b.max - b.min);
  return Math.abs(a.mean - b.mean) <= range ? 'within the spread' : 'beyond the spread';
}

/** A trained net over the seeds (degradation, shortcuts): per epoch and at the end. */
export interface TrainedAggregate {
  label: string;
  arch: string;
  params: number;
  n: number;
  epochs: { epoch: number; train_err: Stat; test_err: Stat }[];
  final: { train_err: Stat; test_err: Stat; best_test_err: Stat };
  secondsPerEpoch: Stat;
}

/** The nets of every seed, matched by label (the first seed's order). */
export function aggregateTrained(perSeed: TrainedNet[][]): TrainedAggregate[] {
  return (perSeed[0] ?? []).map((n0) => {
    const ns = perSeed.map((nets) => nets.find((n) => n.label === n0.label)).filter((n): n is TrainedNet => !!n);
    const epochs = [...new Set(ns.flatMap((n) => n.metrics.map((m) => m.epoch)))].sort((a, b) => a - b);
    const at = (e: number, k: 'train_err' | 'test_err'): Stat => seedStat(ns.map((n) => n.metrics.find((m) => m.epoch === e)?.[k] ?? NaN));
    return {
      label: n0.label, arch: n0.arch, params: n0.params, n: ns.length,
      epochs: epochs.map((e) => ({ epoch: e, train_err: at(e, 'train_err'), test_err: at(e, 'test_err') })),
      final: {
        train_err: over(ns, (n) => n.final.train_err), test_err: over(ns, (n) => n.final.test_err),
        best_test_err: over(ns, (n) => Math.min(...n.metrics.map((m) => m.test_err))),
      },
      secondsPerEpoch: over(ns, (n) => n.secondsPerEpoch),
    };
  });
}

/** The share of seeds where `f` holds, for a verdict (null where a seed cannot test it). */
export function perSeed<R>(rs: { results: R }[], f: (r: R) => boolean | null): (boolean | null)[] {
  return rs.map((r) => f(r.results));
}
