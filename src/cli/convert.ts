// `resnet convert IN OUT`: any checkpoint we read (.pth/.pt/.bin zip or legacy,
// .safetensors) to .safetensors or .pth, values bit-exact (floats as F32, integer buffers
// such as num_batches_tracked as I64), with loadWeights' unwrapping, --key-map renames and
// name maps. Parsing and printing only; the work is in io/weights.ts.

import { statSync } from 'node:fs';
import { extname } from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import { KEY_MAPPINGS, loadWeights, parseKeyMap, saveWeights, type KeyMapping } from '../io/weights.js';

export interface ConvertFlags {
  keyMap?: string[];
  mapping?: string;
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
  const { tensors, notes, format, info } = loadWeights(input, { keyMap: parseKeyMap(opts.keyMap), mapping });
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
