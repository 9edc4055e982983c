// `resnet detect`: the detection command group (issue 16). This file declares the group and
// its `synth` subcommand; `predict`, `eval` and `train` are added to the same group by their
// own files. Commands parse and print; the work is in src/detect/.

import { Command } from 'commander';
import { InvalidArgumentError } from '../errors.js';
import { writeSynthDataset, type SynthResult } from '../detect/data/synth.js';

export interface SynthFlags {
  out: string; images: string; seed?: string; size?: string; split?: string; maxObjects?: string; force?: boolean; data?: string; json?: boolean;
}

function intFlag(v: string | undefined, flag: string, min: number): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v.trim()) || Number(v) < min) throw new InvalidArgumentError(`--${flag} must be an integer >= ${min}, got '${v}'`);
  return Number(v);
}

/** `resnet detect synth`: writes the scenes, then one line (or JSON) saying what was written. */
export async function synthCommand(flags: SynthFlags): Promise<SynthResult> {
  const split = flags.split ?? 'train';
  if (split !== 'train' && split !== 'test') throw new InvalidArgumentError(`--split must be train or test, got '${split}'`);
  const r = await writeSynthDataset({
    out: flags.out,
    images: intFlag(flags.images, 'images', 1)!,
    seed: intFlag(flags.seed, 'seed', 0),
    size: intFlag(flags.size, 'size', 32),
    maxObjects: intFlag(flags.maxObjects, 'max-objects', 1),
    split,
    force: flags.force === true,
    data: flags.data,
  });
  if (flags.json) {
    process.stdout.write(`${JSON.stringify({ out: r.out, images: r.images, annotations: r.annotations, seconds: Number(r.seconds.toFixed(2)) })}\n`);
  } else {
    process.stdout.write(`wrote ${r.images} scenes with ${r.annotations} objects to ${r.out} (images/*.png, instances.json) in ${r.seconds.toFixed(1)} s\n`);
  }
  return r;
}

/**
 * The `resnet detect` command group, for `program.addCommand(detectCommand)`.
 * @example program.addCommand(detectCommand);  // resnet detect synth --out DIR --images N
 */
export const detectCommand = new Command('detect')
  .description('object detection with ResNet backbones (Faster R-CNN): synthetic data, and (as they land) predict, eval, train');

detectCommand
  .command('synth')
  .description('write a COCO-format detection dataset of scenes made of Fashion-MNIST items (10 classes) on textured backgrounds: DIR/images/*.png and DIR/instances.json')
  .requiredOption('--out <dir>', 'the folder to create (must be new or empty unless --force)')
  .requiredOption('--images <n>', 'number of scenes')
  .option('--seed <s>', 'seed: the same seed writes byte-identical files, another seed other scenes', '0')
  .option('--size <px>', 'side of the square scenes in pixels', '320')
  .option('--split <split>', "Fashion-MNIST items to use: train | test (held-out scenes never show a training item)", 'train')
  .option('--max-objects <n>', 'at most N objects a scene (1..N drawn)', '6')
  .option('--data <dir>', 'Fashion-MNIST IDX folder (default /usr/share/datasets/fashion-mnist)')
  .option('--force', 'replace an earlier synth output in --out (only a folder holding images/ and instances.json)')
  .option('--json', 'print {"out","images","annotations","seconds"}')
  .action(async (opts: SynthFlags) => { await synthCommand(opts); });
