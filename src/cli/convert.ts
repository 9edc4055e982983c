// `resnet convert IN OUT`: any checkpoint we read (.pth/.pt/.bin zip or legacy,
// .safetensors) to .safetensors or .pth, with loadWeights' unwrapping, --key-map renames and
// name maps. Values are bit-exact except float64 tensors, which are written as F32: what that
// changed is said in the notes (count, largest change), and a finite value beyond float32's
// range (it would become inf) is refused unless --allow-narrowing. Integers are never
// narrowed (int64 stays I64; smaller ints and bool widen to I64). Parsing and printing only;
// the work is in io/weights.ts, the narrowing in io/narrowing.ts.

import { statSync } from 'node:fs';
import { extname } from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import { checkOutputPath } from '../io/atomic.js';
import { narrowingOf } from '../io/narrowing.js';
import type { NamedArray } from '../io/safetensors.js';
import { KEY_MAPPINGS, loadWeights, parseKeyMap, saveWeights, type KeyMapping } from '../io/weights.js';

export interface ConvertFlags {
  keyMap?: string[];
  mapping?: string;
  allowNarrowing?: boolean;
  json?: boolean;
}

/** Commander's collector for a repeatable option. */
export function collectKeyMap(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

const FORMAT_NAMES = { 'pth-zip': 'PyTorch zip checkpoint', 'pth-legacy': 'PyTorch legacy (pre-1.6) checkpoint', safetensors: 'safetensors' } as const;

export function convertCommand(input: string, output: string, opts: ConvertFlags): void {
  const ext = extname(output).toLowerCase();
  if (!['.safetensors', '.pth', '.pt', '.bin'].includes(ext)) {
    throw new InvalidArgumentError(`convert: cannot tell the output format of '${output}'; end it in .safetensors, .pth, .pt or .bin`);
  }
  const mapping = (opts.mapping ?? 'auto') as KeyMapping;
  if (!KEY_MAPPINGS.includes(mapping)) throw new InvalidArgumentError(`convert: --mapping '${mapping}'; valid: ${KEY_MAPPINGS.join(', ')}`);
  checkOutputPath(output, 'convert'); // a bad output is said before the input is read
  const { tensors, notes, format, info } = loadWeights(input, { keyMap: parseKeyMap(opts.keyMap), mapping });
  const narrowNote = narrowing(tensors, input, opts.allowNarrowing === true);
  if (narrowNote) notes.push(narrowNote);
  saveWeights(output, tensors, info);  // what the input says about its net (arch, classes, ...) carries over
  let f32 = 0;
  for (const t of tensors.values()) if (t.data instanceof Float32Array) f32++;
  const i64 = tensors.size - f32;
  const bytes = statSync(output).size;
  const formatOut = ext === '.safetensors' ? 'safetensors' : 'pth';
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ in: input, out: output, format_in: format, format_out: formatOut, tensors: tensors.size, f32, i64, bytes, notes })}\n`);
    return;
  }
  const lines = [`read ${input} (${FORMAT_NAMES[format]})`, ...notes.map((n) => `  ${n}`),
    `wrote ${output} (${formatOut}, ${tensors.size} tensors: ${f32} F32, ${i64} I64; ${bytes.toLocaleString('en-US')} bytes)`];
  process.stdout.write(`${lines.join('\n')}\n`);
}

const g = (v: number) => v.toPrecision(3);

/** One note on the float64 tensors written as F32 (null when there were none); throws when a
 *  finite value would become inf, unless `allow`. */
function narrowing(tensors: Map<string, NamedArray>, input: string, allow: boolean): string | null {
  let count = 0, changed = 0, overflow = 0, underflow = 0, maxAbs = 0, maxRel = 0;
  let worst: { name: string; value: number } | null = null;
  for (const [name, t] of tensors) {
    const n = narrowingOf(t.data);
    if (!n) continue;
    count++;
    changed += n.changed;
    overflow += n.overflow;
    underflow += n.underflow;
    maxAbs = Math.max(maxAbs, n.maxAbs);
    maxRel = Math.max(maxRel, n.maxRel);
    if (n.firstOverflow !== null) worst ??= { name, value: n.firstOverflow };
  }
  if (count === 0) return null;
  if (overflow && !allow) {
    throw new InvalidArgumentError(`convert: ${input}: ${overflow} float64 value(s) do not fit float32 and would become inf ` +
      `(e.g. ${worst!.value} in '${worst!.name}'; float32 holds up to ±3.4028235e38); --allow-narrowing writes them as ±inf`);
  }
  const lost = changed === 0 ? 'every value exact' : `${changed} value(s) rounded, largest change ${g(maxAbs)} absolute, ${g(maxRel)} relative` +
    `${underflow ? `, ${underflow} became 0` : ''}${overflow ? `, ${overflow} became ±inf (--allow-narrowing)` : ''}`;
  return `narrowed ${count} float64 tensor(s) to F32: ${lost}`;
}
