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
  figures(r) {
    const colors = depthColors(r.nets);
    const top = Math.max(5, ...r.nets.flatMap((n) => n.metrics.flatMap((m) => [100 * m.train_err, 100 * m.test_err])));
    const yMax = Math.min(100, Math.ceil(top / 5 - 1e-9) * 5);
    const epochs = Math.max(1, ...r.nets.flatMap((n) => n.metrics.map((m) => m.epoch)));
    const panel = (plain: boolean) => {
      const series: Series[] = [];
      for (const n of r.nets.filter((x) => x.plain === plain)) {
        const color = colors.get(n.depth) ?? PALETTE[0];
        series.push({ name: `${n.arch} train`, color, width: 1, points: n.metrics.map((m) => [m.epoch, 100 * m.train_err]), markers: n.metrics.length < 3, hideInLegend: true });
        series.push({ name: n.arch, color, width: 3, points: n.metrics.map((m) => [m.epoch, 100 * m.test_err]), markers: n.metrics.length < 3 });
      }
      return series;
    };
    const figs = [];
    for (const plain of [true, false]) {
      const series = panel(plain);
      if (!series.length) continue;
      const id = plain ? 'errors-plain' : 'errors-residual';
      const title = plain ? 'Plain nets: error per epoch' : 'Residual nets: error per epoch';
      figs.push({ id, title, svg: linePlotSvg({ title, xLabel: 'epoch', yLabel: 'error (%)', series, xMin: 0, xMax: epochs, yMin: 0, yMax, integerX: true, note: 'thin = training error, bold = test error' }) });
    }
    figs.push({
      id: 'final', title: 'Error after the last epoch',
      svg: barChartSvg({
        title: 'Error after the last epoch', xLabel: 'net', yLabel: 'error (%)', categories: r.nets.map((n) => n.arch),
        groups: [
          { name: 'training error', values: r.nets.map((n) => 100 * n.final.train_err), color: PALETTE[5] },
          { name: 'test error', values: r.nets.map((n) => 100 * n.final.test_err), color: PALETTE[0] },
        ],
      }),
    });
    return figs;
  },
  tables(r) {
    return [{
      caption: 'Final errors (last epoch), parameters and time',
      head: ['net', 'layers', 'shortcuts', 'parameters', 'training error', 'test error', 'best test error', 's / epoch'],
      rows: r.nets.map((n) => [n.arch, String(n.depth), n.plain ? 'none' : archInfo(n.arch).shortcut, n.params.toLocaleString('en-US'),
        pct(n.final.train_err), pct(n.final.test_err), pct(Math.min(...n.metrics.map((m) => m.test_err))), n.secondsPerEpoch.toFixed(1)]),
    }, {
      caption: 'Error per epoch (training / test)',
      head: ['epoch', ...r.nets.map((n) => n.arch)],
      rows: Array.from({ length: Math.max(0, ...r.nets.map((n) => n.metrics.length)) }, (_, i) => [String(i + 1),
        ...r.nets.map((n) => (n.metrics[i] ? `${pct(n.metrics[i].train_err, 1)} / ${pct(n.metrics[i].test_err, 1)}` : '–'))]),
    }];
  },
  finding(r) {
    const by = new Map(r.nets.map((n) => [n.arch, n]));
    const parts: string[] = [];
    if (r.plain) {
      const s = by.get(r.plain.shallow)!;
      const d = by.get(r.plain.deep)!;
      parts.push(`${d.arch} ends with ${pct(d.final.train_err)} training error against ${pct(s.final.train_err)} for ${s.arch}: ${r.plain.deepTrainsWorse ? 'the deeper plain net trains worse (degradation)' : 'no degradation in this run'}.`);
    }
    if (r.residual) {
      const s = by.get(r.residual.shallow)!;
      const d = by.get(r.residual.deep)!;
      parts.push(`${d.arch} ends at ${pct(d.final.train_err)} against ${pct(s.final.train_err)} for ${s.arch}: ${r.residual.deepTrainsBetter ? 'the deeper residual net trains better' : 'the deeper residual net does not train better in this run'}.`);
    }
    if (!parts.length) parts.push('Each family has one depth here, so the plot compares plain against residual nets only.');
    return parts.join(' ');
  },
};
