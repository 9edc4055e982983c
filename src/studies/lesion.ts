// The lesion study (Veit et al. 2016, section 5, Fig. 3 and 5): from trained nets, the test
// error with each single block's residual branch deleted (the shortcut kept), and with k
// random blocks deleted, k = 1..n (mean and spread over draws). The seeds' claim: a ResNet
// behaves like an ensemble of paths, so deleting one block barely hurts it except at
// downsampling, and errors grow smoothly with k; a plain net has a single path and collapses.
// In a plain net only blocks that keep the shape can be deleted (they become the identity).

import { InvalidArgumentError } from '../errors.js';
import { Rng } from '../tensor/random.js';
import { errorOf, netsFor, trainingSeed, pct, recipe, recipeSummary, sample, type Study, type StudyNet, type TrainedNet } from './common.js';
import { barChartSvg, linePlotSvg, PALETTE, type Series } from './plot.js';
import { fmtStat, over, perSeed, seedSeries, verdict, type Stat } from './seeds.js';

/** One lesioned net over the seeds. */
interface LesionAggregate {
  label: string;
  n: number;
  baseline: Stat;
  meanIncrease: Stat;
  meanIncreaseDownsampling: Stat | null;
  blocks: { name: string; downsampling: boolean; error: Stat | null }[];
  random: { k: number; mean: Stat }[];
}

function aggregateLesion(rs: LesionResults[]): { nets: LesionAggregate[]; pairs: { residual: string; plain: string; ratio: Stat; residualIncrease: Stat; plainIncrease: Stat }[] } {
  const nets = rs[0].nets.map((n0) => {
    const ns = rs.map((r) => r.nets.find((n) => n.label === n0.label)).filter((n): n is LesionNet => !!n);
    return {
      label: n0.label, n: ns.length, baseline: over(ns, (n) => n.baseline), meanIncrease: over(ns, (n) => n.meanIncrease),
      meanIncreaseDownsampling: n0.meanIncreaseDownsampling === null ? null : over(ns, (n) => n.meanIncreaseDownsampling),
      blocks: n0.blocks.map((b, i) => ({ name: b.name, downsampling: b.downsampling, error: b.error === null ? null : over(ns, (n) => n.blocks[i]?.error) })),
      random: n0.random.map((p, i) => ({ k: p.k, mean: over(ns, (n) => n.random[i]?.mean) })),
    };
  });
  const pairs = rs[0].pairs.map((p0) => {
    const ps = rs.map((r) => r.pairs.find((p) => p.residual === p0.residual && p.plain === p0.plain)).filter((p) => !!p);
    return { residual: p0.residual, plain: p0.plain, ratio: over(ps, (p) => p!.ratio), residualIncrease: over(ps, (p) => p!.residualIncrease), plainIncrease: over(ps, (p) => p!.plainIncrease) };
  });
  return { nets, pairs };
}

export interface LesionNet {
  label: string;
  arch: string;
  plain: boolean;
  file: string;
  /** Test error with nothing deleted (the checkpoint's own error on these images). */
  baseline: number;
  testImages: number;
  blocks: { name: string; index: number; downsampling: boolean; removable: boolean; error: number | null }[];
  /** Mean error increase over deletions of single non-downsampling blocks. */
  meanIncrease: number;
  /** Mean error increase over deletions of single downsampling blocks (null: none removable). */
  meanIncreaseDownsampling: number | null;
  random: { k: number; mean: number; min: number; max: number; std: number; draws: number }[];
}

export interface LesionResults {
  nets: LesionNet[];
  trained: TrainedNet[];
  /** Residual vs plain net of the same number of blocks: ratio of their mean increases. */
  pairs: { residual: string; plain: string; residualIncrease: number; plainIncrease: number; ratio: number }[];
}

export const LESION_ARCHS = ['resnet56', 'plain56'];

function lesionNet(net: StudyNet, draws: number, seed: number, say: (t: string) => void): LesionNet {
  const blocks = net.model.blocks();
  const baseline = errorOf(net);
  say(`${net.label}: error ${pct(baseline)} with every block; deleting each of ${blocks.length} blocks`);
  const single = blocks.map((b) => {
    const downsampling = b.block.stride !== 1 || b.block.inChannels !== b.block.outChannels;
    const removable = b.block.removable;
    return { name: b.name, index: b.index, downsampling, removable, error: removable ? errorOf(net, { dropBlocks: [b.index] }) : null };
  });
  const inc = (f: (b: (typeof single)[number]) => boolean): number | null => {
    const v = single.filter((b) => f(b) && b.error !== null).map((b) => (b.error as number) - baseline);
    return v.length ? v.reduce((s, x) => s + x, 0) / v.length : null;
  };
  const removable = single.filter((b) => b.removable).map((b) => b.index);
  const rng = new Rng(seed);
  const random: LesionNet['random'] = [];
  say(`${net.label}: deleting k random blocks, k = 1..${removable.length}, ${draws} draw(s) each`);
  for (let k = 1; k <= removable.length; k++) {
    const n = k === removable.length ? 1 : draws;
    const errs: number[] = [];
    for (let d = 0; d < n; d++) errs.push(errorOf(net, { dropBlocks: sample(removable, k, () => rng.next()) }));
    const mean = errs.reduce((s, x) => s + x, 0) / errs.length;
    const std = Math.sqrt(errs.reduce((s, x) => s + (x - mean) ** 2, 0) / errs.length);
    random.push({ k, mean, min: Math.min(...errs), max: Math.max(...errs), std, draws: n });
  }
  return {
    label: net.label, arch: net.arch, plain: net.plain, file: net.file, baseline, testImages: net.batches.reduce((s, b) => s + b.y.length, 0),
    blocks: single, meanIncrease: inc((b) => !b.downsampling) ?? NaN, meanIncreaseDownsampling: inc((b) => b.downsampling), random,
  };
}

export const lesion: Study<LesionResults> = {
  name: 'lesion',
  title: 'Lesion: deleting blocks at test time',
  lead: 'Test error of trained nets with one block\'s residual branch deleted (the shortcut kept), block by block, and with k random blocks deleted (mean, band = min..max over draws), as Veit et al. 2016, Fig. 3 and 5. ' +
    'It tests the unrolled view of the seeds: a ResNet is an ensemble of many paths, so it can lose a block without being redimensioned and barely notice (except where it downsamples), while a plain net, one long path, collapses.',
  check(opts) {
    if (opts.archs?.length && opts.checkpoints?.length) throw new InvalidArgumentError('study lesion: give --checkpoint or --archs, not both');
  },
  async run(ctx) {
    const draws = ctx.opts.draws ?? 5;
    const { nets, trained } = await netsFor(ctx, 'lesion', LESION_ARCHS);
    const out: LesionNet[] = [];
    try {
      for (const n of nets) out.push(lesionNet(n, draws, ctx.opts.seed ?? 0, ctx.say));
    } finally {
      for (const n of nets) n.model.dispose();
    }
    const pairs: LesionResults['pairs'] = [];
    for (const r of out.filter((n) => !n.plain)) {
      const p = out.find((n) => n.plain && n.blocks.length === r.blocks.length);
      if (p && Number.isFinite(p.meanIncrease) && Number.isFinite(r.meanIncrease)) {
        pairs.push({ residual: r.label, plain: p.label, residualIncrease: r.meanIncrease, plainIncrease: p.meanIncrease, ratio: p.meanIncrease > 0 ? r.meanIncrease / p.meanIncrease : NaN });
      }
    }
    const setup = ctx.opts.checkpoints?.length
      ? { dataset: (nets[0].meta.config as { dataset?: string }).dataset, checkpoints: ctx.opts.checkpoints, archs: nets.map((n) => n.arch), seed: trainingSeed(nets), testSubset: out[0]?.testImages ?? null, draws }
      : { ...recipeSummary(recipe(ctx.opts)), archs: nets.map((n) => n.arch), draws };
    return { setup, results: { nets: out, trained, pairs } };
  },
  figures(rs) {
    const r = rs[0].results;
    const agg = aggregateLesion(rs.map((x) => x.results));
    const many = rs.length > 1;
    const names = r.nets.reduce<string[]>((a, n) => (n.blocks.length > a.length ? n.blocks.map((b) => b.name) : a), []);
    const single = barChartSvg({
      title: many ? `Test error with one block deleted (mean of ${rs.length} seeds)` : 'Test error with one block deleted',
      xLabel: 'deleted block (× = cannot be deleted: plain and changes the shape)', yLabel: 'test error (%)',
      categories: names.map((s) => s.replace('layer', '')),
      groups: agg.nets.map((n, i) => ({ name: n.label, color: PALETTE[i % PALETTE.length], values: names.map((nm) => { const b = n.blocks.find((x) => x.name === nm); return b && b.error !== null ? 100 * b.error.mean : null; }) })),
      refLines: agg.nets.map((n, i) => ({ y: 100 * n.baseline.mean, label: `${n.label}, nothing deleted`, color: PALETTE[i % PALETTE.length] })),
      yMax: 100,
    });
    const series: Series[] = r.nets.map((n, i) => {
      const base = { name: n.label, color: PALETTE[i % PALETTE.length], markers: true };
      if (!many) {
        return {
          ...base, points: [[0, 100 * n.baseline] as [number, number], ...n.random.map((p) => [p.k, 100 * p.mean] as [number, number])],
          band: [[0, 100 * n.baseline, 100 * n.baseline] as [number, number, number], ...n.random.map((p) => [p.k, 100 * p.min, 100 * p.max] as [number, number, number])],
        };
      }
      return seedSeries(rs.map((x) => {
        const m = x.results.nets.find((q) => q.label === n.label);
        return m ? [[0, 100 * m.baseline] as [number, number], ...m.random.map((p) => [p.k, 100 * p.mean] as [number, number])] : [];
      }), base);
    });
    const random = linePlotSvg({
      title: 'Test error with k random blocks deleted', xLabel: 'blocks deleted (k)', yLabel: 'test error (%)', xMin: 0, yMin: 0, yMax: 100, integerX: true,
      series, note: many ? `line = mean over ${rs.length} seeds of each seed's mean over draws, band = min..max over seeds` : 'line = mean over draws, band = min..max',
    });
    return [{ id: 'single', title: 'Deleting single blocks', svg: single }, { id: 'random', title: 'Deleting k random blocks', svg: random }];
  },
  tables(rs) {
    const r = rs[0].results;
    const agg = aggregateLesion(rs.map((x) => x.results));
    const many = rs.length > 1;
    const p = (v: number): string => pct(v);
    const t = [{
      caption: `Per net: error with nothing deleted and the mean rise from deleting one block${many ? ` (${rs.length} seeds: mean ± half of the 95% interval, (min–max))` : ''}`,
      head: ['net', 'checkpoint', 'test images', 'nothing deleted', 'mean rise, one non-downsampling block', 'mean rise, one downsampling block'],
      rows: agg.nets.map((n, i) => [n.label, many ? rs.map((x) => x.results.nets[i]?.file).join(', ') : r.nets[i].file, String(r.nets[i].testImages), fmtStat(n.baseline, p), fmtStat(n.meanIncrease, p),
        n.meanIncreaseDownsampling === null ? 'cannot delete' : fmtStat(n.meanIncreaseDownsampling, p)]),
    }, {
      caption: `Test error with one block deleted${many ? `, mean of ${rs.length} seeds` : ''}`,
      head: ['block', 'downsampling', ...agg.nets.map((n) => n.label)],
      rows: (agg.nets[0]?.blocks ?? []).map((b, i) => [b.name, b.downsampling ? 'yes' : '', ...agg.nets.map((n) => (!n.blocks[i] || n.blocks[i].error === null ? '–' : pct(n.blocks[i].error!.mean)))]),
    }, {
      caption: many ? `Test error with k random blocks deleted (mean over draws, then over ${rs.length} seeds: mean (min–max))` : 'Test error with k random blocks deleted (mean ± std over draws)',
      head: ['k', ...r.nets.map((n) => n.label)],
      rows: Array.from({ length: Math.max(0, ...r.nets.map((n) => n.random.length)) }, (_, i) => [String(i + 1),
        ...r.nets.map((n, j) => {
          if (!n.random[i]) return '–';
          if (!many) return `${pct(n.random[i].mean, 1)} ± ${(100 * n.random[i].std).toFixed(1)}`;
          const st = agg.nets[j].random[i].mean;
          return `${pct(st.mean, 1)} (${pct(st.min, 1)}–${pct(st.max, 1)})`;
        })]),
    }];
    if (agg.pairs.length) {
      t.splice(1, 0, {
        caption: 'Residual vs plain: mean error rise from deleting one non-downsampling block',
        head: ['residual', 'plain', 'residual rise', 'plain rise', 'ratio'],
        rows: agg.pairs.map((q) => [q.residual, q.plain, fmtStat(q.residualIncrease, p), fmtStat(q.plainIncrease, p), fmtStat(q.ratio, (v) => v.toFixed(3))]),
      });
    }
    return t;
  },
  finding(rs) {
    const agg = aggregateLesion(rs.map((x) => x.results));
    const p = (v: number): string => pct(v);
    const parts = agg.nets.map((n, i) => `${n.label}: ${fmtStat(n.baseline, p)} with every block, ${fmtStat(n.meanIncrease, p)} more on average when one non-downsampling block is deleted` +
      (n.meanIncreaseDownsampling !== null && !rs[0].results.nets[i].plain ? `, ${fmtStat(n.meanIncreaseDownsampling, p)} more for a downsampling block` : '') + '.');
    for (const q of agg.pairs) parts.push(`Ratio ${q.residual} / ${q.plain}: ${q.ratio.n ? fmtStat(q.ratio, (v) => v.toFixed(3)) : 'undefined (the plain net did not get worse)'}${q.ratio.n && q.ratio.mean < 0.1 ? ' (less than a tenth)' : ''}.`);
    return parts.join(' ');
  },
  aggregate(rs) {
    return aggregateLesion(rs.map((x) => x.results));
  },
  verdicts(rs) {
    const claim = 'Deleting one block barely hurts a ResNet but breaks a plain net: the residual / plain ratio of the mean single-block cost is below 0.1 (Veit et al. 2016)';
    const agg = aggregateLesion(rs.map((x) => x.results));
    if (!agg.pairs.length) return [verdict(claim, '', [], 'needs a residual and a plain net of the same number of blocks')];
    return agg.pairs.map((q) => verdict(claim, `${q.residual} / ${q.plain} ratio below 0.1`,
      perSeed(rs, (r) => {
        const x = r.pairs.find((y) => y.residual === q.residual && y.plain === q.plain);
        return x && Number.isFinite(x.ratio) ? x.ratio < 0.1 : null;
      }), `ratio ${fmtStat(q.ratio, (v) => v.toFixed(3))}`));
  },
};
