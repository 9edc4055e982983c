// The degradation problem (He et al. 2015, section 4.1 and Fig. 6): plain and residual nets
// at two or more depths, trained with one recipe; training and test error per epoch (thin
// training, bold test). The seeds' claim: a deeper plain net ends with *higher training*
// error than a shallower one (an optimisation difficulty, not overfitting), while the
// residual twin of the deeper net ends lower. The trained runs stay in runs/<arch>, so
// `lesion`, `paths` and `responses` can take them as --checkpoint.

import { archInfo } from '../models/registry.js';
import { InvalidArgumentError } from '../errors.js';
import { checkArchs, noCheckpoints, pct, recipe, recipeSummary, trainNet, type Study, type TrainedNet } from './common.js';
import { barChartSvg, linePlotSvg, PALETTE, type Series } from './plot.js';
import { aggregateTrained, fmtStat, perSeed, seedSeries, verdict } from './seeds.js';

export interface DegradationResults {
  nets: TrainedNet[];
  /** Shallowest vs deepest of each family, by final training error (null when a family has one depth). */
  plain: { shallow: string; deep: string; deepTrainsWorse: boolean } | null;
  residual: { shallow: string; deep: string; deepTrainsBetter: boolean } | null;
}

export const DEGRADATION_ARCHS = ['plain20', 'plain56', 'resnet20', 'resnet56'];

function compare(nets: TrainedNet[], plain: boolean): { shallow: TrainedNet; deep: TrainedNet } | null {
  const f = nets.filter((n) => n.plain === plain).sort((a, b) => a.depth - b.depth);
  if (f.length < 2 || f[0].depth === f[f.length - 1].depth) return null;
  return { shallow: f[0], deep: f[f.length - 1] };
}

/** One colour per depth, shared by both panels. */
function depthColors(nets: TrainedNet[]): Map<number, string> {
  const depths = [...new Set(nets.map((n) => n.depth))].sort((a, b) => a - b);
  return new Map(depths.map((d, i) => [d, PALETTE[i % PALETTE.length]]));
}

export const degradation: Study<DegradationResults> = {
  name: 'degradation',
  title: 'Degradation: plain vs residual nets at two depths',
  lead: 'Training (thin) and test (bold) error per epoch of plain nets (first plot) and their residual twins (second plot), all trained with the same recipe, in the style of He et al. 2015, Fig. 6. ' +
    'It tests the degradation argument of the seeds: adding layers to a plain net raises its training error, so the problem is optimisation, not overfitting, and residual learning removes it (the deeper ResNet trains to a lower error).',
  check(opts) {
    noCheckpoints('degradation', opts);
    const archs = opts.archs?.length ? opts.archs : DEGRADATION_ARCHS;
    checkArchs('degradation', archs);
    if (archs.length < 2) throw new InvalidArgumentError('study degradation: needs at least two nets in --archs (e.g. plain20,plain56,resnet20,resnet56)');
  },
  async run(ctx) {
    const archs = ctx.opts.archs?.length ? ctx.opts.archs : DEGRADATION_ARCHS;
    const nets: TrainedNet[] = [];
    for (const a of archs) nets.push(await trainNet(ctx, a, a));
    const p = compare(nets, true);
    const r = compare(nets, false);
    return {
      setup: { ...recipeSummary(recipe(ctx.opts)), archs },
      results: {
        nets,
        plain: p && { shallow: p.shallow.arch, deep: p.deep.arch, deepTrainsWorse: p.deep.final.train_err > p.shallow.final.train_err },
        residual: r && { shallow: r.shallow.arch, deep: r.deep.arch, deepTrainsBetter: r.deep.final.train_err < r.shallow.final.train_err },
      },
    };
  },
  figures(rs) {
    const seeds = rs.map((x) => x.results.nets);
    const nets = seeds[0];
    const agg = aggregateTrained(seeds);
    const colors = depthColors(nets);
    const top = Math.max(5, ...seeds.flat().flatMap((n) => n.metrics.flatMap((m) => [100 * m.train_err, 100 * m.test_err])));
    const yMax = Math.min(100, Math.ceil(top / 5 - 1e-9) * 5);
    const epochs = Math.max(1, ...nets.flatMap((n) => n.metrics.map((m) => m.epoch)));
    const curve = (label: string, k: 'train_err' | 'test_err'): [number, number][][] =>
      seeds.map((ns) => ns.find((n) => n.label === label)?.metrics.map((m) => [m.epoch, 100 * m[k]] as [number, number]) ?? []);
    const panel = (plain: boolean) => {
      const series: Series[] = [];
      for (const n of nets.filter((x) => x.plain === plain)) {
        const color = colors.get(n.depth) ?? PALETTE[0];
        series.push(seedSeries(curve(n.label, 'train_err'), { name: `${n.arch} train`, color, width: 1, markers: n.metrics.length < 3, hideInLegend: true }));
        series.push(seedSeries(curve(n.label, 'test_err'), { name: n.arch, color, width: 3, markers: n.metrics.length < 3 }));
      }
      return series;
    };
    const many = rs.length > 1 ? `; lines = mean of ${rs.length} seeds, bands = min..max` : '';
    const figs = [];
    for (const plain of [true, false]) {
      const series = panel(plain);
      if (!series.length) continue;
      const id = plain ? 'errors-plain' : 'errors-residual';
      const title = plain ? 'Plain nets: error per epoch' : 'Residual nets: error per epoch';
      figs.push({ id, title, svg: linePlotSvg({ title, xLabel: 'epoch', yLabel: 'error (%)', series, xMin: 0, xMax: epochs, yMin: 0, yMax, integerX: true, note: `thin = training error, bold = test error${many}` }) });
    }
    figs.push({
      id: 'final', title: 'Error after the last epoch',
      svg: barChartSvg({
        title: rs.length > 1 ? `Error after the last epoch (mean of ${rs.length} seeds)` : 'Error after the last epoch', xLabel: 'net', yLabel: 'error (%)', categories: agg.map((n) => n.arch),
        groups: [
          { name: 'training error', values: agg.map((n) => 100 * n.final.train_err.mean), color: PALETTE[5] },
          { name: 'test error', values: agg.map((n) => 100 * n.final.test_err.mean), color: PALETTE[0] },
        ],
      }),
    });
    return figs;
  },
  tables(rs) {
    const nets = rs[0].results.nets;
    const agg = aggregateTrained(rs.map((x) => x.results.nets));
    const p = (v: number): string => pct(v);
    const many = rs.length > 1 ? ` (${rs.length} seeds: mean ± half of the 95% interval, (min–max))` : '';
    return [{
      caption: `Final errors (last epoch), parameters and time${many}`,
      head: ['net', 'layers', 'shortcuts', 'parameters', 'training error', 'test error', 'best test error', 's / epoch'],
      rows: agg.map((a, i) => [a.arch, String(nets[i].depth), nets[i].plain ? 'none' : archInfo(a.arch).shortcut, a.params.toLocaleString('en-US'),
        fmtStat(a.final.train_err, p), fmtStat(a.final.test_err, p), fmtStat(a.final.best_test_err, p), fmtStat(a.secondsPerEpoch, (v) => v.toFixed(1))]),
    }, {
      caption: `Error per epoch (training / test)${rs.length > 1 ? `, mean of ${rs.length} seeds` : ''}`,
      head: ['epoch', ...agg.map((n) => n.arch)],
      rows: Array.from({ length: Math.max(0, ...agg.map((n) => n.epochs.length)) }, (_, i) => [String(i + 1),
        ...agg.map((n) => (n.epochs[i] ? `${pct(n.epochs[i].train_err.mean, 1)} / ${pct(n.epochs[i].test_err.mean, 1)}` : '–'))]),
    }];
  },
  finding(rs) {
    const agg = aggregateTrained(rs.map((x) => x.results.nets));
    const r = rs[0].results;
    const by = new Map(agg.map((n) => [n.arch, n]));
    const p = (v: number): string => pct(v);
    const of = rs.length > 1 ? ` (mean of ${rs.length} seeds)` : '';
    const parts: string[] = [];
    if (r.plain) {
      const s = by.get(r.plain.shallow)!;
      const d = by.get(r.plain.deep)!;
      parts.push(`${d.arch} ends with ${fmtStat(d.final.train_err, p)} training error against ${fmtStat(s.final.train_err, p)} for ${s.arch}${of}.`);
    }
    if (r.residual) {
      const s = by.get(r.residual.shallow)!;
      const d = by.get(r.residual.deep)!;
      parts.push(`${d.arch} ends at ${fmtStat(d.final.train_err, p)} against ${fmtStat(s.final.train_err, p)} for ${s.arch}${of}.`);
    }
    if (!parts.length) parts.push(`Each family has one depth here, so the plot compares plain against residual nets only: ${agg.map((n) => `${n.arch} ${fmtStat(n.final.train_err, p)}`).join(', ')} final training error${of}.`);
    return parts.join(' ');
  },
  aggregate(rs) {
    return { nets: aggregateTrained(rs.map((x) => x.results.nets)) };
  },
  verdicts(rs) {
    const r = rs[0].results;
    const out = [];
    if (r.plain) {
      out.push(verdict('A deeper plain net ends with higher training error than a shallower one (degradation)',
        `${r.plain.deep} above ${r.plain.shallow} in final training error`, perSeed(rs, (x) => x.plain?.deepTrainsWorse ?? null)));
    } else {
      out.push(verdict('A deeper plain net ends with higher training error than a shallower one (degradation)', '', [], 'needs two depths of plain nets in --archs'));
    }
    if (r.residual) {
      out.push(verdict('The deeper residual net ends with lower training error than the shallower one',
        `${r.residual.deep} below ${r.residual.shallow} in final training error`, perSeed(rs, (x) => x.residual?.deepTrainsBetter ?? null)));
    } else {
      out.push(verdict('The deeper residual net ends with lower training error than the shallower one', '', [], 'needs two depths of residual nets in --archs'));
    }
    return out;
  },
};
