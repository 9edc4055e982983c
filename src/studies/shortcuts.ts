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
  figures(r) {
    const bars = barChartSvg({
      title: `${r.arch}: error by shortcut option`, xLabel: 'shortcut option', yLabel: 'error after the last epoch (%)',
      categories: r.options.map((o) => `option ${o.option}`),
      groups: [
        { name: 'training error', values: r.options.map((o) => 100 * o.final.train_err), color: PALETTE[5] },
        { name: 'test error', values: r.options.map((o) => 100 * o.final.test_err), color: PALETTE[0] },
      ],
    });
    const series: Series[] = r.options.flatMap((o, i) => [
      { name: `option ${o.option} train`, color: PALETTE[i + 1], width: 1, points: o.metrics.map((m) => [m.epoch, 100 * m.train_err] as [number, number]), hideInLegend: true, markers: o.metrics.length < 3 },
      { name: `option ${o.option}`, color: PALETTE[i + 1], width: 3, points: o.metrics.map((m) => [m.epoch, 100 * m.test_err] as [number, number]), markers: o.metrics.length < 3 },
    ]);
    const curves = linePlotSvg({
      title: `${r.arch}: error per epoch`, xLabel: 'epoch', yLabel: 'error (%)', series, xMin: 0, yMin: 0, integerX: true,
      xMax: Math.max(1, ...r.options.flatMap((o) => o.metrics.map((m) => m.epoch))), note: 'thin = training error, bold = test error',
    });
    return [{ id: 'errors', title: 'Final error by option', svg: bars }, { id: 'curves', title: 'Error per epoch', svg: curves }];
  },
  tables(r) {
    return [{
      caption: `${r.arch}, options A, B, C (He et al. 2015, Table 3 style)`,
      head: ['option', 'shortcuts', 'parameters', 'training error', 'test error', 'best test error', 's / epoch'],
      rows: r.options.map((o) => [o.option, o.option === 'A' ? 'identity, zero-padding' : o.option === 'B' ? 'projection where the shape changes' : 'projection everywhere',
        o.params.toLocaleString('en-US'), pct(o.final.train_err), pct(o.final.test_err), pct(Math.min(...o.metrics.map((m) => m.test_err))), o.secondsPerEpoch.toFixed(1)]),
    }];
  },
  finding(r) {
    const a = r.options.find((o) => o.option === 'A');
    const c = r.options.find((o) => o.option === 'C');
    const best = [...r.options].sort((x, y) => x.final.test_err - y.final.test_err)[0];
    return `Test error: ${r.options.map((o) => `${o.option} ${pct(o.final.test_err)}`).join(', ')}; best ${best.option}.` +
      (a && c ? ` Option C has ${(c.params - a.params).toLocaleString('en-US')} more parameters than A (${((100 * (c.params - a.params)) / a.params).toFixed(1)}%) and takes ${c.secondsPerEpoch.toFixed(1)} s per epoch against ${a.secondsPerEpoch.toFixed(1)} s.` : '');
  },
};
