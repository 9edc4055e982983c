// Per-layer convolution benchmark: our path (NativeBackend calls from TypeScript) against the
// bare oneDNN primitive (the addon's benchConv, timed in C++), alternating in one run, for
// every distinct conv of ResNet-50 (torchvision v1.5, 224x224, batch 16) and each pass.
// Warm runs only; medians. Goal: ours >= 0.95 x bare on every shape.
//   npm run bench:ops               a table
//   npm run bench:ops -- --json     [{ shape, pass, ours_gflops, onednn_gflops }]
// Options: --batch N (16), --arch resnet18|resnet34|resnet50|... (resnet50), --rounds R (>= 5).

import { loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';

import type { Conv2dGeometry, Storage } from '../src/backend/backend.js';
import { type ConvPass, NativeBackend } from '../src/backend/native.js';
import { median } from '../src/bench/model_bench.js';

// ---- shapes ---------------------------------------------------------------------------------

function convGeometry(N: number, C: number, H: number, W: number, K: number, R: number, stride: number,
  pad: number): Conv2dGeometry {
  const OH = Math.floor((H + 2 * pad - R) / stride) + 1;
  const OW = Math.floor((W + 2 * pad - R) / stride) + 1;
  return {
    N, C, H, W, K, R, S: R, OH, OW, strideH: stride, strideW: stride, padH: pad, padW: pad,
    dilationH: 1, dilationW: 1, groups: 1,
  };
}

const IMAGENET_BLOCKS: Record<string, { bottleneck: boolean; blocks: number[] }> = {
  resnet18: { bottleneck: false, blocks: [2, 2, 2, 2] },
  resnet34: { bottleneck: false, blocks: [3, 4, 6, 3] },
  resnet50: { bottleneck: true, blocks: [3, 4, 6, 3] },
  resnet101: { bottleneck: true, blocks: [3, 4, 23, 3] },
  resnet152: { bottleneck: true, blocks: [3, 8, 36, 3] },
};

function distinct(gs: Conv2dGeometry[]): Conv2dGeometry[] {
  const seen = new Map<string, Conv2dGeometry>();
  for (const g of gs) seen.set(JSON.stringify(g), g);
  return [...seen.values()];
}

/** Every distinct conv of a torchvision ImageNet ResNet (v1.5: stride on the 3x3), stem first,
 *  including the downsample 1x1 projections. */
export function imagenetConvGeometries(arch: string, N: number, size = 224, inChannels = 3): Conv2dGeometry[] {
  const spec = IMAGENET_BLOCKS[arch];
  if (!spec) throw new Error(`unknown arch ${arch}`);
  const out: Conv2dGeometry[] = [];
  const stem = convGeometry(N, inChannels, size, size, 64, 7, 2, 3);
  out.push(stem);
  let H = Math.floor((stem.OH + 2 - 3) / 2) + 1; // max pool 3x3/2, pad 1
  let inplanes = 64;
  const expansion = spec.bottleneck ? 4 : 1;
  [64, 128, 256, 512].forEach((planes, stage) => {
    for (let b = 0; b < spec.blocks[stage]; b++) {
      const stride = b === 0 && stage > 0 ? 2 : 1;
      let convs: Conv2dGeometry[];
      if (spec.bottleneck) {
        const c1 = convGeometry(N, inplanes, H, H, planes, 1, 1, 0);
        const c2 = convGeometry(N, planes, H, H, planes, 3, stride, 1);
        const c3 = convGeometry(N, planes, c2.OH, c2.OW, planes * expansion, 1, 1, 0);
        convs = [c1, c2, c3];
      } else {
        const c1 = convGeometry(N, inplanes, H, H, planes, 3, stride, 1);
        convs = [c1, convGeometry(N, planes, c1.OH, c1.OW, planes, 3, 1, 1)];
      }
      if (stride !== 1 || inplanes !== planes * expansion) {
        convs.push(convGeometry(N, inplanes, H, H, planes * expansion, 1, stride, 0));
      }
      out.push(...convs);
      H = convs[convs.length - 1].OH;
      inplanes = planes * expansion;
    }
  });
  return distinct(out);
}

/** Every distinct conv of a CIFAR ResNet (6n+2 layers, 16/32/64 channels, option A shortcuts,
 *  so no 1x1 projections). */
export function cifarConvGeometries(depth: number, N: number, size = 32, inChannels = 3): Conv2dGeometry[] {
  const n = (depth - 2) / 6;
  if (!Number.isInteger(n) || n < 1) throw new Error(`CIFAR ResNet depth must be 6n+2, got ${depth}`);
  const out = [convGeometry(N, inChannels, size, size, 16, 3, 1, 1)];
  let H = size;
  let inplanes = 16;
  [16, 32, 64].forEach((planes, stage) => {
    for (let b = 0; b < n; b++) {
      const stride = b === 0 && stage > 0 ? 2 : 1;
      const c1 = convGeometry(N, inplanes, H, H, planes, 3, stride, 1);
      out.push(c1, convGeometry(N, planes, c1.OH, c1.OW, planes, 3, 1, 1));
      H = c1.OH;
      inplanes = planes;
    }
  });
  return distinct(out);
}

export function shapeName(g: Conv2dGeometry): string {
  return `N${g.N} C${g.C} H${g.H} W${g.W} K${g.K} R${g.R} S${g.strideH}`;
}

export function convFlops(g: Conv2dGeometry): number {
  return 2 * g.N * g.K * g.OH * g.OW * (g.C / g.groups) * g.R * g.S;
}

// ---- timing harness -------------------------------------------------------------------------

/** Milliseconds of each of `iters` calls of `fn`, after `warmup` untimed calls. */
export function timeClosure(fn: () => void, iters: number, warmup = 0): number[] {
  for (let i = 0; i < warmup; i++) fn();
  const out: number[] = [];
  for (let i = 0; i < iters; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    out.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return out;
}

/** Times `ours` (a closure) and `bare` (returns its own per-iteration ms) alternately:
 *  2 warm-up calls each, then `rounds` rounds of one timed call each. Medians in ms, and the
 *  median of the per-round speed ratios bare/ours (robust to load that comes and goes). */
export function compare(ours: () => void, bare: (iters: number, warmup: number) => number[], rounds: number):
  { oursMs: number; bareMs: number; pairedRatio: number } {
  timeClosure(ours, 0, 2);
  bare(1, 2);
  const o: number[] = [];
  const b: number[] = [];
  for (let r = 0; r < rounds; r++) {
    o.push(...timeClosure(ours, 1));
    b.push(...bare(1, 0));
  }
  return { oursMs: median(o), bareMs: median(b), pairedRatio: median(o.map((t, i) => b[i] / t)) };
}

// ---- our side: inputs made as the previous op would leave them -------------------------------

function randomArray(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = (s >>> 8) / 16777216 * 2 - 1;
  }
  return a;
}

/** One timed "ours" closure with its inputs; `dispose` frees them. */
export interface Case {
  run: () => void;
  dispose: () => void;
}

/** Makes the "ours" side of a (shape, pass): swap it to time another layer (e.g. Tensor ops). */
export type CaseFactory = (be: NativeBackend, g: Conv2dGeometry, pass: ConvPass) => Case;

export function oursCase(be: NativeBackend, g: Conv2dGeometry, pass: ConvPass): Case {
  const x = be.fromArray(randomArray(g.N * g.C * g.H * g.W, 1), [g.N, g.C, g.H, g.W], 'float32');
  const w = be.fromArray(randomArray(g.K * (g.C / g.groups) * g.R * g.S, 2), [g.K, g.C / g.groups, g.R, g.S],
    'float32');
  // dy comes from the op after the conv (BN backward), which leaves it in the conv's dst layout.
  const dy = be.conv2d(x, w, null, g);
  const keep: Storage[] = [x, w, dy];
  let run: () => void;
  if (pass === 'forward') run = () => be.free(be.conv2d(x, w, null, g));
  else if (pass === 'backward_data') run = () => be.free(be.conv2dBackwardData(dy, w, g));
  else run = () => be.free(be.conv2dBackwardWeights(x, dy, g, false).dw);
  run(); // any layout conversion of x or w is cached now, as in a training step
  return { run, dispose: () => keep.forEach((s) => be.free(s)) };
}

// ---- main -------------------------------------------------------------------------------------

export interface Row {
  shape: string;
  pass: ConvPass;
  ours_ms: number;
  onednn_ms: number;
  ours_gflops: number;
  onednn_gflops: number;
  paired_ratio: number;
}

function argValue(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

export function runBench(args: string[], makeOurs: CaseFactory = oursCase): Row[] {
  const be = new NativeBackend();
  const N = Number(argValue(args, '--batch') ?? 16);
  const arch = argValue(args, '--arch') ?? 'resnet50';
  const minRounds = Math.max(5, Number(argValue(args, '--rounds') ?? 5));
  const passes: ConvPass[] = ['forward', 'backward_data', 'backward_weights'];
  const rows: Row[] = [];
  for (const g of imagenetConvGeometries(arch, N)) {
    for (const pass of passes) {
      const c = makeOurs(be, g, pass);
      const estimate = median([...be.addon.benchConv(g, pass, 1, 1)]);
      const rounds = Math.min(25, Math.max(minRounds, Math.ceil(400 / Math.max(estimate, 1e-3))));
      const { oursMs, bareMs, pairedRatio } = compare(c.run, (iters, warmup) => [...be.addon.benchConv(g, pass, iters, warmup)],
        rounds);
      c.dispose();
      const f = convFlops(g);
      rows.push({
        shape: shapeName(g), pass, ours_ms: oursMs, onednn_ms: bareMs,
        ours_gflops: f / oursMs / 1e6, onednn_gflops: f / bareMs / 1e6, paired_ratio: pairedRatio,
      });
    }
    be.addon.benchRelease();
  }
  return rows;
}

function printTable(rows: Row[], info: string): void {
  const head = ['shape', 'pass', 'ours ms', 'oneDNN ms', 'ours GF/s', 'oneDNN GF/s', 'ratio', 'paired'];
  const body = rows.map((r) => [r.shape, r.pass, r.ours_ms.toFixed(2), r.onednn_ms.toFixed(2),
    r.ours_gflops.toFixed(1), r.onednn_gflops.toFixed(1), (r.ours_gflops / r.onednn_gflops).toFixed(3),
    r.paired_ratio.toFixed(3)]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i])))
    .join('  ');
  console.log(info);
  console.log(line(head));
  for (const b of body) console.log(line(b));
  const ratios = rows.map((r) => r.ours_gflops / r.onednn_gflops);
  const below = ratios.filter((x) => x < 0.95).length;
  console.log(`ratio = ours/oneDNN GF/s (medians); paired = median of per-round ratios. ` +
    `worst ratio ${Math.min(...ratios).toFixed(3)}, worst paired ${Math.min(...rows.map((r) => r.paired_ratio)).toFixed(3)}; ` +
    `${below} of ${rows.length} below 0.95; geometric mean ratio ` +
    `${Math.exp(ratios.reduce((a, x) => a + Math.log(x), 0) / ratios.length).toFixed(3)}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const be = new NativeBackend();
  const rows = runBench(args);
  if (args.includes('--json')) {
    console.log(JSON.stringify(rows.map((r) => ({
      shape: r.shape, pass: r.pass, ours_gflops: r.ours_gflops, onednn_gflops: r.onednn_gflops,
    })), null, 1));
  } else {
    const i = be.info();
    // NOTE: other processes on these cores distort both columns (alternation keeps the ratio
    // fairer, not exact); the load average says whether the machine was quiet.
    printTable(rows, `resnet-ts bench:ops  oneDNN ${i.onednn}  isa ${i.isa}  threads ${i.threads}  ` +
      `load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  }
}
