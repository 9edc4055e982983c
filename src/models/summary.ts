// The summary of a network, as the paper's Table 1: each stage's output shape, parameters
// and multiply-adds, computed analytically from the module tree (no forward, no memory).
// Multiply-adds count convolutions and the classifier only, the convention of torchvision's
// published GFLOPS (resnet18 1.81, resnet50 4.09 at 224x224); option A shortcuts count none
// (they move data). Parameters count every parameter (buffers are not parameters).

import { InvalidArgumentError } from '../errors.js';
import { Sequential } from '../nn/sequential.js';
import type { Block } from './blocks.js';
import { archInfo, createModel, type ModelOptions } from './registry.js';
import type { ResNet } from './resnet.js';

/** @example for (const s of summarize(model).stages) console.log(s.name, s.shape, s.layers); */
export interface StageSummary {
  /** "conv1", "maxpool", "layer1".."layer4", "bn" (pre-activation), "avgpool", "fc" / "linear". */
  name: string;
  /** Output shape of one image: [C, H, W], or [classes] for the classifier. */
  shape: number[];
  params: number;
  macs: number;
  /** The stage's layers as Table 1 writes them, e.g. "[3x3, 64; 3x3, 64] x 2". */
  layers: string;
}

/** @example const { params, macs }: ModelSummary = summarize(model); */
export interface ModelSummary {
  arch: string;
  /** [C, H, W] of one input image. */
  input: number[];
  params: number;
  macs: number;
  stages: StageSummary[];
}

/** @example const s = summarize(model, { input: [64, 64] } satisfies SummaryOptions); */
export interface SummaryOptions {
  /** Input height and width (default: the arch's usual 224x224 or 32x32). */
  input?: readonly [number, number];
}

function layersOf(model: ResNet, name: string): string {
  if (name === 'conv1') {
    const k = model.conv1.kernelSize[0];
    return `${k}x${k}, ${model.conv1.outChannels}, stride ${model.conv1.stride[0]}`;
  }
  if (name === 'maxpool') return '3x3 max pool, stride 2';
  if (name === 'bn') return 'BN, ReLU';
  if (name === 'avgpool') return 'global average pool';
  if (name === 'fc' || name === 'linear') return `${model.head.inFeatures}-d fc, ${model.numClasses}-way`;
  const stage = model.getChild(name) as Sequential<Block>;
  const first = stage.at(0);
  return `[${first.describe()}] x ${stage.length}`;
}

/**
 * Parameters, multiply-adds and per-stage output shapes of a built model.
 * @example summarize(resnet18(), { input: [224, 224] }).macs // 1,814,073,344
 */
export function summarize(model: ResNet, opts: SummaryOptions = {}): ModelSummary {
  const input = opts.input ?? (model.family === 'imagenet' ? [224, 224] : [32, 32]);
  const [H, W] = input;
  for (const v of [H, W]) {
    if (!Number.isInteger(v) || v < 1) throw new InvalidArgumentError(`summary: input must be two integers >= 1 (HxW), got ${input.join('x')}`);
  }
  const traced = model.traceStages([1, model.inChannels, H, W]);
  const stages: StageSummary[] = traced.map((s) => ({
    name: s.name, shape: s.shape.slice(1), params: s.params, macs: s.macs, layers: layersOf(model, s.name),
  }));
  return {
    arch: model.name,
    input: [model.inChannels, H, W],
    params: model.numParameters(),
    macs: stages.reduce((a, s) => a + s.macs, 0),
    stages,
  };
}

/** The summary of a registered arch with its options (built with zero weights, which
 *  is fast, and freed at once).
 * @example summarizeArch('resnet50').params  // 25557032
 */
export function summarizeArch(arch: string, opts: ModelOptions & SummaryOptions = {}): ModelSummary {
  const { input, ...modelOpts } = opts;
  const info = archInfo(arch);
  const model = createModel(arch, { init: 'none', ...modelOpts });
  try {
    return summarize(model, { input: input ?? info.input });
  } finally {
    model.dispose();
  }
}

function group(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/**
 * A readable table, the paper's Table 1 for one network.
 * @example console.log(formatSummary(summarizeArch('resnet20')));  // Table 1 style
 */
export function formatSummary(s: ModelSummary): string {
  const rows = s.stages.map((st) => [st.name, st.shape.join('x'), st.layers, group(st.params), `${(st.macs / 1e6).toFixed(1)}M`]);
  const head = ['layer', 'output', 'layers', 'params', 'MACs'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i >= 3 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [
    `${s.arch}  input ${s.input.join('x')}`,
    line(head),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
    '',
    `params  ${group(s.params)} (${(s.params / 1e6).toFixed(2)}M)`,
    `MACs    ${group(s.macs)} (${(s.macs / 1e9).toFixed(2)}G)`,
  ].join('\n');
}
