// Writes a small image folder of Fashion-MNIST PNGs for the fine-tuning measurement (issue
// 14, README "Fine-tuning"): OUT/train/<class>/*.png and OUT/val/<class>/*.png, grey 28x28,
// taken from the TEST split only, so none of them was seen by the default run (which trains
// on the train split). Deterministic: the first images of each class in file order.
// Run: node --import tsx scripts/fashion_mnist_folder.ts OUT [--classes 0,2,4,6] [--train 50] [--val 200] [--data DIR]

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { FASHION_MNIST_CLASSES, loadFashionMnist } from '../src/index.js';

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

const out = process.argv[2];
if (!out || out.startsWith('--')) {
  process.stderr.write('usage: node --import tsx scripts/fashion_mnist_folder.ts OUT [--classes 0,2,4,6] [--train 50] [--val 200] [--data DIR]\n');
  process.exit(2);
}
const classes = flag('classes', '0,2,4,6').split(',').map(Number);
const nTrain = Number(flag('train', '50'));
const nVal = Number(flag('val', '200'));
const dataFlag = process.argv.indexOf('--data');
const ds = await loadFashionMnist({ split: 'test', dir: dataFlag >= 0 ? process.argv[dataFlag + 1] : undefined });
const plane = ds.height * ds.width;
for (const k of classes) {
  const name = FASHION_MNIST_CLASSES[k].replace(/[^\w-]+/g, '-');
  const idx: number[] = [];
  for (let i = 0; i < ds.n && idx.length < nTrain + nVal; i++) if (ds.labels[i] === k) idx.push(i);
  for (const [j, i] of idx.entries()) {
    const split = j < nTrain ? 'train' : 'val';
    const dir = join(out, split, name);
    mkdirSync(dir, { recursive: true });
    const px = Buffer.from(ds.images.subarray(i * plane, (i + 1) * plane));
    await sharp(px, { raw: { width: ds.width, height: ds.height, channels: 1 } }).png().toFile(join(dir, `${i}.png`));
  }
  process.stdout.write(`${name}: ${Math.min(idx.length, nTrain)} train, ${Math.max(0, idx.length - nTrain)} val\n`);
}
