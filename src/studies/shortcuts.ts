// Identity vs projection shortcuts (He et al. 2015, section 4.1, Table 3) on our data: one
// residual arch trained with option A (zero-padding identity, parameter-free), B
// (projections where the shape changes) and C (projections everywhere), same recipe; error,
// parameters and time per epoch. The seeds' claim: all three beat the plain net, C is
// marginally better than B and B than A, but the differences are small and not essential
// to the degradation problem, while C costs parameters and time.

import { InvalidArgumentError } from '../errors.js';
import { archInfo } from '../models/registry.js';
import type { ShortcutOption } from '../models/shortcut.js';
import { checkArchs, noCheckpoints, pct, recipe, recipeSummary, trainNet, type Study, type TrainedNet } from './common.js';
import { barChartSvg, linePlotSvg, PALETTE, type Series } from './plot.js';
import { againstSpread, aggregateTrained, fmtStat, perSeed, seedSeries, verdict } from './seeds.js';

export interface ShortcutsResults {
  arch: string;
  options: (TrainedNet & { option: ShortcutOption })[];
}

export const SHORTCUTS_ARCH = 'resnet20';
const OPTIONS: ShortcutOption[] = ['A', 'B', 'C'];

export const shortcuts: Study<ShortcutsResults> = {
  name: 'shortcuts',
  title: 'Shortcuts: identity (A) vs projection (B, C)',
  lead: 'One residual net trained three times with the same recipe: option A (identity shortcuts, zero-padded channels where the shape changes, no parameters), B (1x1 projections where the shape changes) and C (projections everywhere): error, parameters and time per epoch, the paper\'s Table 3 on our data. ' +
    'It tests the seeds\' argument that identity shortcuts suffice: projections help little, so the parameter-free identity is what makes deep residual nets cheap.',
  check(opts) {
    noCheckpoints('shortcuts', opts);
    const archs = opts.archs?.length ? opts.archs : [SHORTCUTS_ARCH];
    checkArchs('shortcuts', archs);
    if (archs.length !== 1) throw new InvalidArgumentError(`study shortcuts: compares options A, B and C of one net; --archs names ${archs.length} (${archs.join(', ')})`);
    if (archInfo(archs[0]).plain) throw new InvalidArgumentError(`study shortcuts: ${archs[0]} is a plain net without shortcuts; name a residual net such as resnet20`);
  },
  async run(ctx) {
    const arch = ctx.opts.archs?.length ? ctx.opts.archs[0] : SHORTCUTS_ARCH;
    const options: ShortcutsResults['options'] = [];
    for (const option of OPTIONS) options.push({ ...(await trainNet(ctx, `${arch}-${option}`, arch, { shortcut: option })), option });
    return { setup: { ...recipeSummary(recipe(ctx.opts)), arch }, results: { arch, options } };
  },
  figures(rs) {
    const r = rs[0].results;
    const agg = aggregateTrained(rs.map((x) => x.results.options));
    const bars = barChartSvg({
      title: rs.length > 1 ? `${r.arch}: error by shortcut option (mean of ${rs.length} seeds)` : `${r.arch}: error by shortcut option`,
      xLabel: 'shortcut option', yLabel: 'error after the last epoch (%)',
      categories: r.options.map((o) => `option ${o.option}`),
      groups: [
        { name: 'training error', values: agg.map((o) => 100 * o.final.train_err.mean), color: PALETTE[5] },
        { name: 'test error', values: agg.map((o) => 100 * o.final.test_err.mean), color: PALETTE[0] },
      ],
    });
    const curve = (label: string, k: 'train_err' | 'test_err'): [number, number][][] =>
      rs.map((x) => x.results.options.find((o) => o.label === label)?.metrics.map((m) => [m.epoch, 100 * m[k]] as [number, number]) ?? []);
    const series: Series[] = r.options.flatMap((o, i) => [
      seedSeries(curve(o.label, 'train_err'), { name: `option ${o.option} train`, color: PALETTE[i + 1], width: 1, hideInLegend: true, markers: o.metrics.length < 3 }),
      seedSeries(curve(o.label, 'test_err'), { name: `option ${o.option}`, color: PALETTE[i + 1], width: 3, markers: o.metrics.length < 3 }),
    ]);
    const curves = linePlotSvg({
      title: `${r.arch}: error per epoch`, xLabel: 'epoch', yLabel: 'error (%)', series, xMin: 0, yMin: 0, integerX: true,
      xMax: Math.max(1, ...r.options.flatMap((o) => o.metrics.map((m) => m.epoch))),
      note: `thin = training error, bold = test error${rs.length > 1 ? `; lines = mean of ${rs.length} seeds, bands = min..max` : ''}`,
    });
    return [{ id: 'errors', title: 'Final error by option', svg: bars }, { id: 'curves', title: 'Error per epoch', svg: curves }];
  },
  tables(rs) {
    const r = rs[0].results;
    const agg = aggregateTrained(rs.map((x) => x.results.options));
    const p = (v: number): string => pct(v);
    return [{
      caption: `${r.arch}, options A, B, C (He et al. 2015, Table 3 style)${rs.length > 1 ? `, ${rs.length} seeds: mean ± half of the 95% interval, (min–max)` : ''}`,
      head: ['option', 'shortcuts', 'parameters', 'training error', 'test error', 'best test error', 's / epoch'],
      rows: r.options.map((o, i) => [o.option, o.option === 'A' ? 'identity, zero-padding' : o.option === 'B' ? 'projection where the shape changes' : 'projection everywhere',
        o.params.toLocaleString('en-US'), fmtStat(agg[i].final.train_err, p), fmtStat(agg[i].final.test_err, p), fmtStat(agg[i].final.best_test_err, p),
        fmtStat(agg[i].secondsPerEpoch, (v) => v.toFixed(1))]),
    }];
  },
  finding(rs) {
    const r = rs[0].results;
    const agg = aggregateTrained(rs.map((x) => x.results.options));
    const by = new Map(r.options.map((o, i) => [o.option, agg[i]]));
    const a = by.get('A');
    const c = by.get('C');
    const best = [...r.options].sort((x, y) => by.get(x.option)!.final.test_err.mean - by.get(y.option)!.final.test_err.mean)[0];
    return `Test error${rs.length > 1 ? ` (mean of ${rs.length} seeds)` : ''}: ${r.options.map((o) => `${o.option} ${pct(by.get(o.option)!.final.test_err.mean)}`).join(', ')}; best ${best.option}.` +
      (a && c ? ` Option C has ${(c.params - a.params).toLocaleString('en-US')} more parameters than A (${((100 * (c.params - a.params)) / a.params).toFixed(1)}%) and takes ${c.secondsPerEpoch.mean.toFixed(1)} s per epoch against ${a.secondsPerEpoch.mean.toFixed(1)} s.` : '');
  },
  aggregate(rs) {
    return { options: aggregateTrained(rs.map((x) => x.results.options)).map((a, i) => ({ option: rs[0].results.options[i].option, ...a })) };
  },
  verdicts(rs) {
    const agg = aggregateTrained(rs.map((x) => x.results.options));
    const opt = (r: ShortcutsResults, o: ShortcutOption) => r.options.find((x) => x.option === o)?.final.test_err;
    const by = new Map(rs[0].results.options.map((o, i) => [o.option, agg[i]]));
    const [a, b, c] = (['A', 'B', 'C'] as const).map((o) => by.get(o));
    const extra = a && b && c
      ? `A − B ${pct(a.final.test_err.mean - b.final.test_err.mean)} (${againstSpread(a.final.test_err, b.final.test_err)}), B − C ${pct(b.final.test_err.mean - c.final.test_err.mean)} (${againstSpread(b.final.test_err, c.final.test_err)}) in mean test error`
      : '';
    return [verdict('Projection shortcuts help a little: test error C <= B <= A (He et al. 2015, Table 3)', 'C <= B <= A in final test error',
      perSeed(rs, (r) => {
        const [ea, eb, ec] = (['A', 'B', 'C'] as const).map((o) => opt(r, o));
        return ea === undefined || eb === undefined || ec === undefined ? null : ec <= eb && eb <= ea;
      }), extra)];
  },
};
