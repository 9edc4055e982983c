// `resnet list` and `resnet summary`: the registry and the paper's Table 1 for one arch.
// Parsing and printing only; the numbers come from models/summary.ts (analytic, no forward).

import { InvalidArgumentError } from '../errors.js';
import { listModels, summarizeArch, formatSummary, type ModelOptions, type ShortcutOption } from '../models/index.js';

export function listCommand(opts: { json?: boolean }): void {
  const archs = listModels();
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(archs)}\n`);
    return;
  }
  const rows = archs.map((a) => [a.name, a.family, a.block, `[${a.layers.join(', ')}]`, a.plain ? 'none' : a.shortcut, a.description]);
  const head = ['arch', 'family', 'block', 'layers', 'shortcut', 'description'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  process.stdout.write(`${[line(head), ...rows.map(line)].join('\n')}\n`);
}

export interface SummaryFlags {
  classes?: string;
  inChannels?: string;
  input?: string;
  shortcut?: string;
  json?: boolean;
}

function int(flag: string, v: string): number {
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new InvalidArgumentError(`summary: ${flag} must be an integer >= 1, got '${v}'`);
  return Number(v);
}

/** "224x224", "224" (square) -> [H, W]. */
export function parseInput(v: string): [number, number] {
  const m = /^(\d+)(?:x(\d+))?$/i.exec(v.trim());
  if (!m) throw new InvalidArgumentError(`summary: --input must be HxW (e.g. 224x224) or one size, got '${v}'`);
  const h = int('--input', m[1]);
  return [h, m[2] === undefined ? h : int('--input', m[2])];
}

export function summaryCommand(arch: string, flags: SummaryFlags): void {
  const opts: ModelOptions & { input?: [number, number] } = {};
  if (flags.classes !== undefined) opts.numClasses = int('--classes', flags.classes);
  if (flags.inChannels !== undefined) opts.inChannels = int('--in-channels', flags.inChannels);
  if (flags.input !== undefined) opts.input = parseInput(flags.input);
  if (flags.shortcut !== undefined) {
    const s = flags.shortcut.toUpperCase();
    if (s !== 'A' && s !== 'B' && s !== 'C') throw new InvalidArgumentError(`summary: --shortcut must be A, B or C, got '${flags.shortcut}'`);
    opts.shortcut = s as ShortcutOption;
  }
  const s = summarizeArch(arch, opts);
  if (flags.json) {
    process.stdout.write(`${JSON.stringify({ arch: s.arch, params: s.params, macs: s.macs, stages: s.stages.map((st) => ({ name: st.name, shape: st.shape })) })}\n`);
    return;
  }
  process.stdout.write(`${formatSummary(s)}\n`);
}
