// Layer responses (He et al. 2015, section 4.2, Fig. 7): the standard deviation of each 3x3
// layer's output after BN and before the ReLU or the addition, over the test images, in
// layer order and sorted, for plain and residual nets. The seeds' claim: residual functions
// are closer to zero than the unreferenced functions of plain nets (smaller responses), and
// deeper ResNets have smaller responses still: identity mappings precondition the problem.
// The std is over every element (images, channels, positions) of the response.

import { InvalidArgumentError } from '../errors.js';
import { Conv2d } from '../nn/conv.js';
import { noGrad } from '../tensor/autograd.js';
import { tidy } from '../tensor/scope.js';
import { tensor } from '../tensor/tensor.js';
import { netsFor, trainingSeed, recipe, recipeSummary, type Study, type StudyNet, type TrainedNet } from './common.js';
import { linePlotSvg, PALETTE } from './plot.js';
import { fmtStat, over, perSeed, seedSeries, verdict, type Stat } from './seeds.js';

function aggregateResponses(rs: ResponsesResults[]): { label: string; n: number; meanStd: Stat; layers: { index: number; name: string; std: Stat }[] }[] {
  return rs[0].nets.map((n0) => {
    const ns = rs.map((r) => r.nets.find((n) => n.label === n0.label)).filter((n): n is ResponsesNet => !!n);
    return { label: n0.label, n: ns.length, meanStd: over(ns, (n) => n.meanStd), layers: n0.layers.map((l, i) => ({ index: l.index, name: l.name, std: over(ns, (n) => n.layers[i]?.std) })) };
  });
}

export interface ResponsesNet {
  label: string;
  arch: string;
  plain: boolean;
  depth: number;
  file: string;
  images: number;
  /** In forward order: the BN's name and the std of its response. */
  layers: { index: number; name: string; std: number }[];
  meanStd: number;
}

export interface ResponsesResults {
  nets: ResponsesNet[];
  trained: TrainedNet[];
  /** Residual vs plain of the same depth: mean std of each. */
  pairs: { depth: number; residual: string; plain: string; residualMean: number; plainMean: number }[];
}

export const RESPONSES_ARCHS = ['plain20', 'resnet20', 'plain56', 'resnet56'];

/** BN names whose conv (the same suffix, in a post-activation net) is 3x3. */
function threeByThree(net: StudyNet): Set<string> {
  const mods = new Map(net.model.namedModules());
  const out = new Set<string>();
  for (const [name] of mods) {
    if (!/(^|\.)bn\d+$/.test(name)) continue;
    const conv = mods.get(name.replace(/bn(\d+)$/, 'conv$1'));
    if (conv instanceof Conv2d && conv.kernelSize[0] === 3 && conv.kernelSize[1] === 3) out.add(name);
  }
  return out;
}

function responsesNet(net: StudyNet, say: (t: string) => void): ResponsesNet {
  if (net.model.preact) throw new InvalidArgumentError(`study responses: ${net.file} holds ${net.arch}, a pre-activation net; Fig. 7 measures post-activation nets (BN right after each 3x3 conv)`);
  const keep = threeByThree(net);
  const acc = new Map<string, { s: number; ss: number; n: number }>();
  say(`${net.label}: responses of ${keep.size} 3x3 layers`);
  for (const b of net.batches) {
    tidy(() => noGrad(() => {
      net.model.forward(tensor(b.x, b.shape), {
        onResponse: (name, t) => {
          if (!keep.has(name)) return;
          const v = t.toFloat32Array();
          let s = 0;
          let ss = 0;
          for (let i = 0; i < v.length; i++) { s += v[i]; ss += v[i] * v[i]; }
          const a = acc.get(name) ?? { s: 0, ss: 0, n: 0 };
          a.s += s; a.ss += ss; a.n += v.length;
          acc.set(name, a);
        },
      });
    }));
  }
  const layers = [...acc.entries()].map(([name, a], i) => {
    const mean = a.s / a.n;
    return { index: i + 1, name, std: Math.sqrt(Math.max(0, a.ss / a.n - mean * mean)) };
  });
  return {
    label: net.label, arch: net.arch, plain: net.plain, depth: net.depth, file: net.file, images: net.batches.reduce((s, b) => s + b.y.length, 0),
    layers, meanStd: layers.reduce((s, l) => s + l.std, 0) / Math.max(1, layers.length),
  };
}

export const responses: Study<ResponsesResults> = {
  name: 'responses',
  title: 'Responses: the size of what each layer adds',
  lead: 'The standard deviation of each 3x3 layer\'s response (its output after BN, before the ReLU or the addition) over the test images, in layer order (top) and sorted by size (bottom), for plain nets (dashed) and ResNets (solid), as He et al. 2015, Fig. 7. ' +
    'It tests the preconditioning argument of the seeds: if identity mappings are close to optimal, residual functions stay small, so ResNets should respond less than plain nets, and deeper ResNets less again.',
  check(opts) {
    if (opts.archs?.length && opts.checkpoints?.length) throw new InvalidArgumentError('study responses: give --checkpoint or --archs, not both');
  },
  async run(ctx) {
    const { nets, trained } = await netsFor(ctx, 'responses', RESPONSES_ARCHS);
    const out: ResponsesNet[] = [];
    try {
      for (const n of nets) out.push(responsesNet(n, ctx.say));
    } finally {
      for (const n of nets) n.model.dispose();
    }
    const pairs: ResponsesResults['pairs'] = [];
    for (const r of out.filter((n) => !n.plain)) {
      const p = out.find((n) => n.plain && n.depth === r.depth);
      if (p) pairs.push({ depth: r.depth, residual: r.label, plain: p.label, residualMean: r.meanStd, plainMean: p.meanStd });
    }
    const setup = ctx.opts.checkpoints?.length
      ? { dataset: (nets[0].meta.config as { dataset?: string }).dataset, checkpoints: ctx.opts.checkpoints, archs: nets.map((n) => n.arch), seed: trainingSeed(nets), testSubset: out[0]?.images ?? null }
      : { ...recipeSummary(recipe(ctx.opts)), archs: nets.map((n) => n.arch) };
    return { setup, results: { nets: out, trained, pairs } };
  },
  figures(rs) {
    const r = rs[0].results;
    const depths = [...new Set(r.nets.map((n) => n.depth))].sort((a, b) => a - b);
    const style = (n: ResponsesNet) => ({ color: PALETTE[depths.indexOf(n.depth) % PALETTE.length], dash: n.plain ? '6 3' : undefined, width: 2 });
    const per = (label: string, sorted: boolean): [number, number][][] => rs.map((x) => {
      const n = x.results.nets.find((q) => q.label === label);
      if (!n) return [];
      return sorted ? [...n.layers].sort((a, b) => b.std - a.std).map((l, i) => [i + 1, l.std] as [number, number]) : n.layers.map((l) => [l.index, l.std] as [number, number]);
    });
    const note = `dashed = plain, solid = residual${rs.length > 1 ? `; lines = mean of ${rs.length} seeds, bands = min..max` : ''}`;
    const order = linePlotSvg({
      title: 'Response std by layer', xLabel: '3x3 layer index (forward order)', yLabel: 'std of the response', xMin: 0, yMin: 0, integerX: true,
      series: r.nets.map((n) => seedSeries(per(n.label, false), { name: n.label, ...style(n) })), note,
    });
    const sorted = linePlotSvg({
      title: 'Response std, sorted', xLabel: 'layer rank (largest response first)', yLabel: 'std of the response', xMin: 0, yMin: 0, integerX: true,
      series: r.nets.map((n) => seedSeries(per(n.label, true), { name: n.label, ...style(n) })), note,
    });
    return [{ id: 'std-by-layer', title: 'In layer order', svg: order }, { id: 'std-sorted', title: 'Sorted by size', svg: sorted }];
  },
  tables(rs) {
    const r = rs[0].results;
    const many = rs.length > 1;
    const agg = aggregateResponses(rs.map((x) => x.results));
    const f3 = (v: number): string => v.toFixed(3);
    return [{
      caption: `Mean response std per net${many ? ` (${rs.length} seeds: mean ± half of the 95% interval, (min–max))` : ''}`,
      head: ['net', 'checkpoint', '3x3 layers', 'test images', 'mean std', 'largest', 'smallest'],
      rows: r.nets.map((n, i) => [n.label, many ? rs.map((x) => x.results.nets[i]?.file).join(', ') : n.file, String(n.layers.length), String(n.images), fmtStat(agg[i].meanStd, f3),
        Math.max(...agg[i].layers.map((l) => l.std.mean)).toFixed(3), Math.min(...agg[i].layers.map((l) => l.std.mean)).toFixed(3)]),
    }, {
      caption: `Response std by layer${many ? `, mean of ${rs.length} seeds` : ''}`,
      head: ['layer', ...r.nets.map((n) => n.label)],
      rows: Array.from({ length: Math.max(0, ...r.nets.map((n) => n.layers.length)) }, (_, i) => [String(i + 1),
        ...agg.map((n) => (n.layers[i] ? `${n.layers[i].std.mean.toFixed(3)} (${n.layers[i].name})` : '–'))]),
    }];
  },
  finding(rs) {
    const r = rs[0].results;
    const agg = new Map(aggregateResponses(rs.map((x) => x.results)).map((a) => [a.label, a]));
    const f3 = (v: number): string => v.toFixed(3);
    const of = rs.length > 1 ? ` (${rs.length} seeds)` : '';
    if (!r.pairs.length) return r.nets.map((n) => `${n.label}: mean response std ${fmtStat(agg.get(n.label)!.meanStd, f3)}${of}.`).join(' ');
    return r.pairs.map((p) => {
      const a = agg.get(p.residual)!.meanStd;
      const b = agg.get(p.plain)!.meanStd;
      return `At ${p.depth} layers the mean response std is ${fmtStat(a, f3)} for ${p.residual} against ${fmtStat(b, f3)} for ${p.plain}${of}` +
        ` (${a.mean < b.mean ? 'smaller, as the paper found' : 'not smaller here'}).`;
    }).join(' ');
  },
  aggregate(rs) {
    return { nets: aggregateResponses(rs.map((x) => x.results)) };
  },
  verdicts(rs) {
    const r = rs[0].results;
    const out = [];
    const claim = 'Residual functions respond less than plain layers: mean std of the 3x3 responses, residual < plain (He et al. 2015, Fig. 7)';
    if (!r.pairs.length) out.push(verdict(claim, '', [], 'needs a plain and a residual net of one depth'));
    for (const p of r.pairs) {
      out.push(verdict(claim, `${p.residual} below ${p.plain} in mean response std`,
        perSeed(rs, (x) => { const q = x.pairs.find((y) => y.depth === p.depth); return q ? q.residualMean < q.plainMean : null; })));
    }
    const res = r.nets.filter((n) => !n.plain).sort((a, b) => a.depth - b.depth);
    const claim2 = 'Deeper ResNets respond less than shallower ones (He et al. 2015, Fig. 7)';
    if (res.length < 2 || res[0].depth === res[res.length - 1].depth) {
      out.push(verdict(claim2, '', [], 'needs residual nets of two depths'));
    } else {
      const [lo, hi] = [res[0].label, res[res.length - 1].label];
      out.push(verdict(claim2, `${hi} below ${lo} in mean response std`, perSeed(rs, (x) => {
        const a = x.nets.find((n) => n.label === hi);
        const b = x.nets.find((n) => n.label === lo);
        return a && b ? a.meanStd < b.meanStd : null;
      })));
    }
    return out;
  },
};
