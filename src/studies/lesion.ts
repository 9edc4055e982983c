// The lesion study (Veit et al. 2016, section 5, Fig. 3 and 5): from trained nets, the test
// error with each single block's residual branch deleted (the shortcut kept), and with k
// random blocks deleted, k = 1..n (mean and spread over draws). The seeds' claim: a ResNet
// behaves like an ensemble of paths, so deleting one block barely hurts it except at
// downsampling, and errors grow smoothly with k; a plain net has a single path and collapses.
// In a plain net only blocks that keep the shape can be deleted (they become the identity).

import { InvalidArgumentError } from '../errors.js';
import { Rng } from '../tensor/random.js';
import { errorOf, netsFor, pct, recipe, recipeSummary, sample, type Study, type StudyNet, type TrainedNet } from './common.js';
import { barChartSvg, linePlotSvg, PALETTE } from './plot.js';

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
      ? { dataset: (nets[0].meta.config as { dataset?: string }).dataset, checkpoints: ctx.opts.checkpoints, testSubset: out[0]?.testImages ?? null, draws }
      : { ...recipeSummary(recipe(ctx.opts)), archs: nets.map((n) => n.arch), draws };
    return { setup, results: { nets: out, trained, pairs } };
  },
  figures(r) {
    const names = r.nets.reduce<string[]>((a, n) => (n.blocks.length > a.length ? n.blocks.map((b) => b.name) : a), []);
    const single = barChartSvg({
      title: 'Test error with one block deleted', xLabel: 'deleted block (× = cannot be deleted: plain and changes the shape)', yLabel: 'test error (%)',
      categories: names.map((s) => s.replace('layer', '')),
      groups: r.nets.map((n, i) => ({ name: n.label, color: PALETTE[i % PALETTE.length], values: names.map((nm) => { const b = n.blocks.find((x) => x.name === nm); return b && b.error !== null ? 100 * b.error : null; }) })),
      refLines: r.nets.map((n, i) => ({ y: 100 * n.baseline, label: `${n.label}, nothing deleted`, color: PALETTE[i % PALETTE.length] })),
      yMax: 100,
    });
    const random = linePlotSvg({
      title: 'Test error with k random blocks deleted', xLabel: 'blocks deleted (k)', yLabel: 'test error (%)', xMin: 0, yMin: 0, yMax: 100, integerX: true,
      series: r.nets.map((n, i) => ({
        name: n.label, color: PALETTE[i % PALETTE.length], markers: true,
        points: [[0, 100 * n.baseline] as [number, number], ...n.random.map((p) => [p.k, 100 * p.mean] as [number, number])],
        band: [[0, 100 * n.baseline, 100 * n.baseline] as [number, number, number], ...n.random.map((p) => [p.k, 100 * p.min, 100 * p.max] as [number, number, number])],
      })),
      note: 'line = mean over draws, band = min..max',
    });
    return [{ id: 'single', title: 'Deleting single blocks', svg: single }, { id: 'random', title: 'Deleting k random blocks', svg: random }];
  },
  tables(r) {
    const t = [{
      caption: 'Per net: error with nothing deleted and the mean rise from deleting one block',
      head: ['net', 'checkpoint', 'test images', 'nothing deleted', 'mean rise, one non-downsampling block', 'mean rise, one downsampling block'],
      rows: r.nets.map((n) => [n.label, n.file, String(n.testImages), pct(n.baseline), pct(n.meanIncrease), n.meanIncreaseDownsampling === null ? 'cannot delete' : pct(n.meanIncreaseDownsampling)]),
    }, {
      caption: 'Test error with one block deleted',
      head: ['block', 'downsampling', ...r.nets.map((n) => n.label)],
      rows: (r.nets[0]?.blocks ?? []).map((b, i) => [b.name, b.downsampling ? 'yes' : '', ...r.nets.map((n) => (n.blocks[i]?.error === null || !n.blocks[i] ? '–' : pct(n.blocks[i].error)))]),
    }, {
      caption: 'Test error with k random blocks deleted (mean ± std over draws)',
      head: ['k', ...r.nets.map((n) => n.label)],
      rows: Array.from({ length: Math.max(0, ...r.nets.map((n) => n.random.length)) }, (_, i) => [String(i + 1),
        ...r.nets.map((n) => (n.random[i] ? `${pct(n.random[i].mean, 1)} ± ${(100 * n.random[i].std).toFixed(1)}` : '–'))]),
    }];
    if (r.pairs.length) {
      t.splice(1, 0, {
        caption: 'Residual vs plain: mean error rise from deleting one non-downsampling block',
        head: ['residual', 'plain', 'residual rise', 'plain rise', 'ratio'],
        rows: r.pairs.map((p) => [p.residual, p.plain, pct(p.residualIncrease), pct(p.plainIncrease), Number.isFinite(p.ratio) ? p.ratio.toFixed(3) : '–']),
      });
    }
    return t;
  },
  finding(r) {
    const parts = r.nets.map((n) => `${n.label}: ${pct(n.baseline)} with every block, ${pct(n.meanIncrease)} more on average when one non-downsampling block is deleted` +
      (n.meanIncreaseDownsampling !== null && !n.plain ? `, ${pct(n.meanIncreaseDownsampling)} more for a downsampling block` : '') + '.');
    for (const p of r.pairs) parts.push(`Ratio ${p.residual} / ${p.plain}: ${Number.isFinite(p.ratio) ? p.ratio.toFixed(3) : 'undefined (the plain net did not get worse)'}${p.ratio < 0.1 ? ' (less than a tenth)' : ''}.`);
    return parts.join(' ');
  },
};
