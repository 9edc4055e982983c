// The ensemble-of-paths view (Veit et al. 2016, section 6, Fig. 6): a ResNet of n blocks
// unrolls into 2^n paths, C(n, k) of them through exactly k residual branches (the path
// length k is binomial, peaking at n/2). The gradient one path of length k carries to the
// input is measured by a normal forward pass and a backward through the branch of k sampled
// blocks and the shortcut of the others (ForwardOptions detachShortcut / detachBranch);
// weighted by C(n, k) it gives the share of the total gradient each length carries. The
// seeds' claim: the gradient comes from short paths, far shorter than the net is deep. The
// "effective" lengths are the smallest window of lengths carrying 90% of the gradient (Veit
// et al. report 5-17 of 54 blocks for resnet110, where the mean path is 27 long).

import { InvalidArgumentError } from '../errors.js';
import { crossEntropy } from '../tensor/ops/loss.js';
import { Rng } from '../tensor/random.js';
import { tidy } from '../tensor/scope.js';
import { tensor, type Tensor } from '../tensor/tensor.js';
import { netsFor, trainingSeed, recipe, recipeSummary, sample, type Study, type StudyNet, type TrainedNet } from './common.js';
import { linePlotSvg, PALETTE, type Series } from './plot.js';
import { fmtStat, over, perSeed, seedSeries, verdict, type Stat } from './seeds.js';

/** The effective window of a net's results (computed if an older results.json lacks it). */
function effectiveOf(n: PathsNet): { from: number; to: number; share: number } {
  return n.effective ?? effectiveWindow(n.lengths.map((l) => l.gradShare));
}

function aggregatePaths(rs: PathsResults[]): { label: string; blocks: number; n: number; meanGradientLength: Stat; halfGradientBelow: Stat; gradient90Below: Stat;
  effectiveFrom: Stat; effectiveTo: Stat; lengths: { k: number; grad: Stat; gradShare: Stat; cumulative: Stat }[] }[] {
  return rs[0].nets.map((n0) => {
    const ns = rs.map((r) => r.nets.find((n) => n.label === n0.label)).filter((n): n is PathsNet => !!n);
    return {
      label: n0.label, blocks: n0.blocks, n: ns.length, meanGradientLength: over(ns, (n) => n.meanGradientLength), halfGradientBelow: over(ns, (n) => n.halfGradientBelow),
      gradient90Below: over(ns, (n) => n.gradient90Below), effectiveFrom: over(ns, (n) => effectiveOf(n).from), effectiveTo: over(ns, (n) => effectiveOf(n).to),
      lengths: n0.lengths.map((l, i) => ({ k: l.k, grad: over(ns, (n) => n.lengths[i]?.grad), gradShare: over(ns, (n) => n.lengths[i]?.gradShare), cumulative: over(ns, (n) => n.lengths[i]?.cumulative) })),
    };
  });
}

export interface PathsNet {
  label: string;
  arch: string;
  file: string;
  /** Residual blocks (n). */
  blocks: number;
  images: number;
  /** Per path length k = 0..n: the binomial share of paths, the gradient norm per path
   *  (mean and spread over draws), its share of the total gradient and the cumulative share. */
  lengths: { k: number; pathShare: number; grad: number; gradMin: number; gradMax: number; draws: number; gradShare: number; cumulative: number }[];
  /** Mean path length of all paths (n / 2) and of the gradient (weighted by gradShare). */
  meanPathLength: number;
  meanGradientLength: number;
  /** Shortest length L such that paths of length <= L carry half / 90% of the gradient. */
  halfGradientBelow: number;
  gradient90Below: number;
  /** The effective path lengths: the smallest window [from, to] of lengths carrying 90% of
   *  the gradient (absent in results made before it was computed). */
  effective?: { from: number; to: number; share: number };
}

/**
 * The smallest window of path lengths [from, to] whose shares sum to at least `q` (ties:
 * the window carrying more).
 * @example effectiveWindow([0.05, 0.5, 0.4, 0.05])  // { from: 1, to: 2, share: 0.9 }
 */
export function effectiveWindow(shares: number[], q = 0.9): { from: number; to: number; share: number } {
  let best = { from: 0, to: shares.length - 1, share: shares.reduce((s, v) => s + v, 0) };
  for (let a = 0; a < shares.length; a++) {
    let sum = 0;
    for (let b = a; b < shares.length; b++) {
      sum += shares[b];
      if (sum >= q - 1e-12) {
        if (b - a < best.to - best.from || (b - a === best.to - best.from && sum > best.share)) best = { from: a, to: b, share: sum };
        break;
      }
    }
  }
  return best;
}

export interface PathsResults { nets: PathsNet[]; trained: TrainedNet[] }

export const PATHS_ARCHS = ['resnet56'];
const BATCH = 64;

/** log C(n, k), exact enough for any depth. */
function logChoose(n: number, k: number): number {
  let s = 0;
  for (let i = 1; i <= k; i++) s += Math.log(n - k + i) - Math.log(i);
  return s;
}

/**
 * The binomial distribution of path lengths through n blocks: C(n, k) / 2^n.
 * @example pathLengthDistribution(3)  // [0.125, 0.375, 0.375, 0.125]: Binomial(3, 1/2)
 */
export function pathLengthDistribution(n: number): number[] {
  return Array.from({ length: n + 1 }, (_, k) => Math.exp(logChoose(n, k) - n * Math.LN2));
}

/** Mean over images of the L2 norm of d(loss_i)/d(x_i), with the branch of `on` only. */
function gradNorm(net: StudyNet, x: Float32Array, y: Int32Array, shape: number[], on: number[]): number {
  const n = net.model.blocks().length;
  const set = new Set(on);
  const all = Array.from({ length: n }, (_, i) => i);
  return tidy(() => {
    const xt = tensor(x, shape, { requiresGrad: true });
    const logits = net.model.forward(xt, { detachShortcut: all.filter((i) => set.has(i)), detachBranch: all.filter((i) => !set.has(i)) });
    // Mean loss over N images: the gradient of image i is (1/N) d(loss_i)/d(x_i).
    crossEntropy(logits, tensor(y, [y.length], { dtype: 'int32' })).backward();
    const g = (xt.grad as Tensor).toFloat32Array();
    const N = shape[0];
    const per = g.length / N;
    let total = 0;
    for (let i = 0; i < N; i++) {
      let s = 0;
      for (let j = i * per; j < (i + 1) * per; j++) s += g[j] * g[j];
      total += Math.sqrt(s) * N;
    }
    return total / N;
  });
}

function pathsNet(net: StudyNet, draws: number, seed: number, say: (t: string) => void): PathsNet {
  if (net.plain) throw new InvalidArgumentError(`study paths: ${net.file} holds ${net.arch}, a plain net: it has one path, so there is no distribution of paths (give a residual net)`);
  const n = net.model.blocks().length;
  const b = net.batches[0];
  const N = Math.min(BATCH, b.y.length);
  const per = b.x.length / b.y.length;
  const x = b.x.slice(0, N * per);
  const y = b.y.slice(0, N);
  const shape = [N, ...b.shape.slice(1)];
  net.model.eval();
  // Only the input's gradient is wanted: the weights take none (nothing accumulates in them).
  for (const p of net.model.parameters()) p.requiresGrad = false;
  const rng = new Rng(seed);
  const idx = Array.from({ length: n }, (_, i) => i);
  say(`${net.label}: gradient along paths of length 0..${n} (${draws} draw(s) each, ${N} images)`);
  const raw = idx.concat([n]).map((k) => {
    const m = k === 0 || k === n ? 1 : draws;
    const gs: number[] = [];
    for (let d = 0; d < m; d++) gs.push(gradNorm(net, x, y, shape, sample(idx, k, () => rng.next())));
    return { k, grad: gs.reduce((s, v) => s + v, 0) / gs.length, gradMin: Math.min(...gs), gradMax: Math.max(...gs), draws: m };
  });
  const dist = pathLengthDistribution(n);
  // Total gradient of length k = C(n, k) * g(k); shares in log space for deep nets.
  const logs = raw.map((r) => logChoose(n, r.k) + Math.log(Math.max(r.grad, 1e-300)));
  const top = Math.max(...logs);
  const w = logs.map((l) => Math.exp(l - top));
  const sum = w.reduce((s, v) => s + v, 0);
  let cum = 0;
  const lengths = raw.map((r, i) => {
    const gradShare = w[i] / sum;
    cum += gradShare;
    return { ...r, pathShare: dist[i], gradShare, cumulative: Math.min(1, cum) };
  });
  const below = (q: number): number => lengths.find((l) => l.cumulative >= q - 1e-12)?.k ?? n;
  return {
    label: net.label, arch: net.arch, file: net.file, blocks: n, images: N, lengths,
    meanPathLength: n / 2, meanGradientLength: lengths.reduce((s, l) => s + l.k * l.gradShare, 0),
    halfGradientBelow: below(0.5), gradient90Below: below(0.9), effective: effectiveWindow(lengths.map((l) => l.gradShare)),
  };
}

export const paths: Study<PathsResults> = {
  name: 'paths',
  title: 'Paths: a ResNet as an ensemble of paths of different lengths',
  lead: 'The distribution of path lengths through the n blocks of a trained ResNet (binomial), the gradient one path of length k carries to the input (measured by sending the gradient through k sampled residual branches and the shortcut elsewhere), and the share of the total gradient from paths of each length, as Veit et al. 2016, Fig. 6. ' +
    'It tests the unrolled view of the seeds: most paths are of middle length, but the gradient that trains the net comes from short paths, so a deep ResNet trains like an ensemble of relatively shallow nets.',
  check(opts) {
    if (opts.archs?.length && opts.checkpoints?.length) throw new InvalidArgumentError('study paths: give --checkpoint or --archs, not both');
  },
  async run(ctx) {
    const draws = ctx.opts.draws ?? 5;
    const { nets, trained } = await netsFor(ctx, 'paths', PATHS_ARCHS);
    const out: PathsNet[] = [];
    try {
      for (const n of nets) out.push(pathsNet(n, draws, ctx.opts.seed ?? 0, ctx.say));
    } finally {
      for (const n of nets) n.model.dispose();
    }
    const setup = ctx.opts.checkpoints?.length
      ? { dataset: (nets[0].meta.config as { dataset?: string }).dataset, checkpoints: ctx.opts.checkpoints, archs: nets.map((n) => n.arch), seed: trainingSeed(nets), testSubset: out[0]?.images ?? null, draws }
      : { ...recipeSummary(recipe(ctx.opts)), archs: nets.map((n) => n.arch), draws, testSubset: out[0]?.images ?? null };
    return { setup, results: { nets: out, trained } };
  },
  figures(rs) {
    const r = rs[0].results;
    const many = rs.length > 1;
    const color = (i: number): string => PALETTE[i % PALETTE.length];
    const per = (label: string, f: (l: PathsNet['lengths'][number]) => number): [number, number][][] =>
      rs.map((x) => x.results.nets.find((n) => n.label === label)?.lengths.map((l) => [l.k, f(l)] as [number, number]) ?? []);
    const dist = linePlotSvg({
      title: 'Distribution of path lengths', xLabel: 'path length k (residual branches on the path)', yLabel: 'share of all paths (%)', xMin: 0, yMin: 0, integerX: true,
      series: r.nets.map((n, i) => ({ name: `${n.label} (n = ${n.blocks})`, color: color(i), markers: true, points: n.lengths.map((l) => [l.k, 100 * l.pathShare] as [number, number]) })),
    });
    const grad = linePlotSvg({
      title: 'Gradient magnitude per path', xLabel: 'path length k', yLabel: 'input-gradient norm per image (log)', xMin: 0, integerX: true, logY: true,
      series: r.nets.map((n, i): Series => (many
        ? seedSeries(per(n.label, (l) => l.grad), { name: n.label, color: color(i), markers: true })
        : {
          name: n.label, color: color(i), markers: true, points: n.lengths.map((l) => [l.k, l.grad] as [number, number]),
          band: n.lengths.map((l) => [l.k, l.gradMin, l.gradMax] as [number, number, number]),
        })),
      note: many ? `line = mean of ${rs.length} seeds, band = min..max over seeds` : 'band = min..max over sampled paths',
    });
    const total = linePlotSvg({
      title: 'Share of the total gradient by path length', xLabel: 'path length k', yLabel: 'share of the gradient (%)', xMin: 0, yMin: 0, yMax: 100, integerX: true,
      series: r.nets.flatMap((n, i) => [
        seedSeries(per(n.label, (l) => 100 * l.gradShare), { name: `${n.label}: at length k`, color: color(i), width: 3, markers: true }),
        seedSeries(per(n.label, (l) => 100 * l.cumulative), { name: `${n.label}: length <= k (cumulative)`, color: color(i), width: 1.5, dash: '6 3' }),
      ]),
      note: many ? `lines = mean of ${rs.length} seeds, bands = min..max` : undefined,
    });
    return [{ id: 'distribution', title: 'Path lengths (binomial)', svg: dist }, { id: 'gradient', title: 'Gradient per path', svg: grad }, { id: 'total', title: 'Total gradient by length', svg: total }];
  },
  tables(rs) {
    const r = rs[0].results;
    const many = rs.length > 1;
    const agg = aggregatePaths(rs.map((x) => x.results));
    const f1 = (v: number): string => v.toFixed(1);
    const win = (a: (typeof agg)[number], n: PathsNet): string => (many ? `${fmtStat(a.effectiveFrom, f1)} to ${fmtStat(a.effectiveTo, f1)}` : `${effectiveOf(n).from}–${effectiveOf(n).to} (${(100 * effectiveOf(n).share).toFixed(1)}%)`);
    return [{
      caption: `Summary${many ? ` (${rs.length} seeds: mean ± half of the 95% interval, (min–max))` : ''}`,
      head: ['net', 'checkpoint', 'blocks n', 'mean path length', 'mean length of the gradient', 'half the gradient from k <=', '90% from k <=', 'effective lengths (90% of the gradient)'],
      rows: r.nets.map((n, i) => [n.label, many ? rs.map((x) => x.results.nets[i]?.file).join(', ') : n.file, String(n.blocks), n.meanPathLength.toFixed(1),
        fmtStat(agg[i].meanGradientLength, f1), fmtStat(agg[i].halfGradientBelow, many ? f1 : String), fmtStat(agg[i].gradient90Below, many ? f1 : String), win(agg[i], n)]),
    }, ...r.nets.map((n, i) => ({
      caption: `${n.label}: per path length${many ? ` (mean of ${rs.length} seeds)` : ''}`,
      head: ['k', 'share of paths', 'gradient per path', 'draws', 'share of gradient', 'cumulative'],
      rows: n.lengths.map((l, j) => [String(l.k), `${(100 * l.pathShare).toPrecision(3)}%`, agg[i].lengths[j].grad.mean.toExponential(3), String(l.draws),
        `${(100 * agg[i].lengths[j].gradShare.mean).toPrecision(3)}%`, `${(100 * agg[i].lengths[j].cumulative.mean).toFixed(1)}%`]),
    }))];
  },
  finding(rs) {
    const agg = aggregatePaths(rs.map((x) => x.results));
    const f1 = (v: number): string => v.toFixed(1);
    const of = rs.length > 1 ? ` (${rs.length} seeds)` : '';
    return rs[0].results.nets.map((n, i) => {
      const a = agg[i];
      const e = effectiveOf(n);
      return `${n.label} (n = ${n.blocks} blocks)${of}: paths average ${n.meanPathLength.toFixed(1)} branches, but the gradient comes from paths of ${fmtStat(a.meanGradientLength, f1)} on average; ` +
        (rs.length > 1
          ? `90% of it from the effective lengths ${a.effectiveFrom.mean.toFixed(1)}–${a.effectiveTo.mean.toFixed(1)} (mean window over seeds).`
          : `half of it from paths of at most ${n.halfGradientBelow} branches, 90% from at most ${n.gradient90Below}; the effective lengths (90% of the gradient) are ${e.from}–${e.to} of ${n.blocks}.`);
    }).join(' ') + ' Veit et al. 2016 report effective paths of 5–17 of 54 blocks for resnet110.';
  },
  aggregate(rs) {
    return { nets: aggregatePaths(rs.map((x) => x.results)) };
  },
  verdicts(rs) {
    const claim = 'The gradient comes from short paths: the effective lengths (the window carrying 90% of the gradient) lie below the mean path length n/2 (Veit et al. 2016)';
    if (!rs[0].results.nets.length) return [verdict(claim, '', [], 'no residual net')];
    return rs[0].results.nets.flatMap((n0) => {
      const get = (r: PathsResults): PathsNet | undefined => r.nets.find((n) => n.label === n0.label);
      const windows = rs.map((x) => get(x.results)).filter((n): n is PathsNet => !!n).map((n) => { const e = effectiveOf(n); return `${e.from}–${e.to}`; });
      return [
        verdict(claim, `${n0.label}: effective lengths end below ${n0.blocks / 2}`, perSeed(rs, (r) => { const n = get(r); return n ? effectiveOf(n).to < n.blocks / 2 : null; }),
          `windows ${windows.join(', ')} of ${n0.blocks} blocks`),
        verdict('The gradient-weighted mean path length is below the mean path length n/2', `${n0.label}: mean length of the gradient below ${n0.blocks / 2}`,
          perSeed(rs, (r) => { const n = get(r); return n ? n.meanGradientLength < n.blocks / 2 : null; })),
      ];
    });
  },
};
