// Dataset readers on small files made in each format: decoded values, and clear errors that
// name the file for corruption, truncation, wrong sizes, labels out of range and images
// that do not decode.

import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';
import {
  decodeImage, decodeImageFolder, loadCifar10, loadCifar100, loadIdx, loadImageFolder, loadMnist, loadFashionMnist,
  splitImageFolder, stackImages, subsetDataset, MNIST_CLASSES, FASHION_MNIST_CLASSES, CIFAR10_CLASSES,
} from '../src/data/index.js';
import { DataError } from '../src/errors.js';
import {
  cifar100Bytes, cifar10Bytes, idxBytes, tempDir, writeCifar100Dir, writeCifar10Dir, writeImageFolder, writeMnistDir,
  type FolderImage,
} from './helpers/data_files.js';

const tmp = tempDir();
after(() => tmp.remove());

/** Asserts a DataError whose message matches every pattern. */
async function rejectsData(p: Promise<unknown>, ...patterns: RegExp[]): Promise<void> {
  await assert.rejects(p, (e: Error) => {
    assert.ok(e instanceof DataError, `expected DataError, got ${e?.name}: ${e?.message}`);
    assert.equal((e as DataError).code, 'ERR_DATA');
    for (const re of patterns) assert.match(e.message, re);
    return true;
  });
}

describe('IDX', () => {
  for (const gzip of [false, true]) {
    test(`reads ${gzip ? 'gzip' : 'raw'} train and test splits exactly`, async () => {
      const files = writeMnistDir(join(tmp.dir, gzip ? 'mnist-gz' : 'mnist-raw'), { gzip });
      for (const split of ['train', 'test'] as const) {
        const ds = await loadMnist({ dir: files.dir, split });
        const want = files[split];
        assert.equal(ds.n, want.n);
        assert.deepEqual([ds.channels, ds.height, ds.width], [1, files.height, files.width]);
        assert.deepEqual(Array.from(ds.images), Array.from(want.images));
        assert.deepEqual(Array.from(ds.labels), Array.from(want.labels));
        assert.deepEqual(ds.classes, MNIST_CLASSES);
        assert.ok(ds.images.buffer instanceof SharedArrayBuffer, 'images live in a SharedArrayBuffer');
      }
      const fashion = await loadFashionMnist({ dir: files.dir, split: 'test' });
      assert.deepEqual(fashion.classes, FASHION_MNIST_CLASSES);
    });
  }

  test('subsetDataset takes the first N images as views', async () => {
    const files = writeMnistDir(join(tmp.dir, 'mnist-sub'));
    const ds = await loadMnist({ dir: files.dir });
    const sub = subsetDataset(ds, 4);
    assert.equal(sub.n, 4);
    assert.deepEqual(Array.from(sub.images), Array.from(files.train.images.subarray(0, 4 * 30)));
    assert.deepEqual(Array.from(sub.labels), Array.from(files.train.labels.subarray(0, 4)));
    assert.equal(subsetDataset(ds, 1000).n, ds.n);
  });

  test('wrong magic, truncation, extra bytes, count mismatch, bad label, bad gzip, missing file', async () => {
    const dir = join(tmp.dir, 'idx-bad');
    mkdirSync(dir, { recursive: true });
    const images = idxBytes([3, 2, 2], new Uint8Array(12));
    const labels = idxBytes([3], Uint8Array.from([0, 1, 2]));
    const w = (name: string, bytes: Uint8Array) => { const p = join(dir, name); writeFileSync(p, bytes); return p; };
    const goodImages = w('img', images);
    const goodLabels = w('lab', labels);
    assert.equal((await loadIdx(goodImages, goodLabels)).n, 3);

    const magic = Buffer.from(images); magic[2] = 0x09;
    await rejectsData(loadIdx(w('magic', magic), goodLabels), /magic$|magic/, /0x00000903/, /expected 0x00000803/, /magic/);
    await rejectsData(loadIdx(w('magic', magic), goodLabels), new RegExp(`${dir}/magic: wrong IDX magic number`));
    await rejectsData(loadIdx(goodLabels, goodLabels), /lab: wrong IDX magic number 0x00000801, expected 0x00000803/);
    await rejectsData(loadIdx(w('trunc', images.subarray(0, images.length - 1)), goodLabels),
      /trunc: truncated: its header says \[3, 2, 2\], so 28 bytes, found 27/);
    await rejectsData(loadIdx(w('head', images.subarray(0, 9)), goodLabels), /head: truncated IDX header, expected 16 bytes, found 9/);
    await rejectsData(loadIdx(w('long', Buffer.concat([images, Buffer.from([1])])), goodLabels), /long: too long/);
    await rejectsData(loadIdx(goodImages, w('two', idxBytes([2], Uint8Array.from([0, 1])))), /two: holds 2 labels, expected 3/);
    await rejectsData(loadIdx(goodImages, w('range', idxBytes([3], Uint8Array.from([0, 10, 1])))),
      /range: label 1 is 10, expected a class index in 0\.\.9/);
    await rejectsData(loadIdx(w('x.gz', Buffer.from('not gzip at all')), goodLabels), /x\.gz: not valid gzip data/);
    const gz = gzipSync(images);
    await rejectsData(loadIdx(w('cut.gz', gz.subarray(0, gz.length - 8)), goodLabels), /cut\.gz: not valid gzip data/);
    await rejectsData(loadIdx(join(dir, 'nope'), goodLabels), /nope: cannot read: ENOENT \(does not exist\)/);
    await rejectsData(loadMnist({ dir: join(tmp.dir, 'no-such-dir') }), /no-such-dir: no mnist train images file found, expected one of train-images-idx3-ubyte\.gz/);
  });
});

describe('CIFAR', () => {
  test('CIFAR-10: five train batches in order, test batch, class names from batches.meta.txt', async () => {
    const { dir, train, test: testSet } = writeCifar10Dir(join(tmp.dir, 'c10'));
    const ds = await loadCifar10({ dir: join(tmp.dir, 'c10') }); // the parent of cifar-10-batches-bin works too
    assert.equal(ds.n, 15);
    assert.deepEqual([ds.channels, ds.height, ds.width], [3, 32, 32]);
    assert.deepEqual(Array.from(ds.labels), Array.from(train.labels));
    assert.ok(Buffer.from(ds.images).equals(Buffer.from(train.images)));
    assert.deepEqual(ds.classes, ['c0', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7', 'c8', 'c9']);
    const t = await loadCifar10({ dir, split: 'test' });
    assert.equal(t.n, 4);
    assert.ok(Buffer.from(t.images).equals(Buffer.from(testSet.images)));
    // Planar CHW: pixel (c=1, y=0, x=0) of image 0 is record byte 1 + 1024.
    assert.equal(t.images[1024], testSet.images[1024]);
    const noMeta = writeCifar10Dir(join(tmp.dir, 'c10-nometa'), { meta: false });
    assert.deepEqual((await loadCifar10({ dir: noMeta.dir })).classes, CIFAR10_CLASSES);
  });

  test('CIFAR-100: fine labels by default, coarse on request, names', async () => {
    const { dir, train } = writeCifar100Dir(join(tmp.dir, 'c100'));
    const fine = await loadCifar100({ dir });
    assert.equal(fine.n, 7);
    assert.deepEqual(Array.from(fine.labels), Array.from(train.labels));
    assert.ok(Buffer.from(fine.images).equals(Buffer.from(train.images)));
    assert.equal(fine.classes.length, 100);
    assert.equal(fine.classes[5], 'fine5');
    const coarse = await loadCifar100({ dir: join(tmp.dir, 'c100'), label: 'coarse' });
    assert.deepEqual(Array.from(coarse.labels), Array.from(train.coarse));
    assert.equal(coarse.classes[3], 'coarse3');
    assert.equal((await loadCifar100({ dir, split: 'test' })).n, 4);
  });

  test('bad length, labels out of range, missing batch, wrong class-name count', async () => {
    const { dir } = writeCifar10Dir(join(tmp.dir, 'c10-bad'));
    const good = readFileSync(join(dir, 'data_batch_3.bin'));
    writeFileSync(join(dir, 'data_batch_3.bin'), good.subarray(0, good.length - 100));
    await rejectsData(loadCifar10({ dir }), /data_batch_3\.bin: 9119 bytes is not a whole number of 3073-byte records/);
    const bad = cifar10Bytes(2, 1);
    bad.bytes[3073] = 10;
    writeFileSync(join(dir, 'data_batch_3.bin'), bad.bytes);
    await rejectsData(loadCifar10({ dir }), /data_batch_3\.bin: record 1 has label 10, expected a class index in 0\.\.9/);
    writeFileSync(join(dir, 'test_batch.bin'), Buffer.alloc(0));
    await rejectsData(loadCifar10({ dir, split: 'test' }), /test_batch\.bin: 0 bytes is not a whole number/);
    writeFileSync(join(dir, 'batches.meta.txt'), 'a\nb\n');
    writeFileSync(join(dir, 'test_batch.bin'), cifar10Bytes(1, 1).bytes);
    await rejectsData(loadCifar10({ dir, split: 'test' }), /batches\.meta\.txt: lists 2 class names, expected 10/);
    await rejectsData(loadCifar10({ dir: join(tmp.dir, 'nothing-here') }), /data_batch_1\.bin: cannot read: ENOENT \(does not exist\)/);

    const c100 = writeCifar100Dir(join(tmp.dir, 'c100-bad'), { names: false });
    const r = cifar100Bytes(3, 2);
    r.bytes[3074 * 2 + 1] = 100;
    writeFileSync(join(c100.dir, 'train.bin'), r.bytes);
    await rejectsData(loadCifar100({ dir: c100.dir }), /train\.bin: record 2 has fine label 100, expected a class index in 0\.\.99/);
    r.bytes[3074 * 2 + 1] = 1;
    r.bytes[0] = 20;
    writeFileSync(join(c100.dir, 'train.bin'), r.bytes);
    await rejectsData(loadCifar100({ dir: c100.dir }), /train\.bin: record 0 has coarse label 20/);
    writeFileSync(join(c100.dir, 'test.bin'), cifar10Bytes(2, 1).bytes);
    await rejectsData(loadCifar100({ dir: c100.dir, split: 'test' }), /test\.bin: 6146 bytes is not a whole number of 3074-byte records/);
    assert.deepEqual((await loadCifar100({ dir: writeCifar100Dir(join(tmp.dir, 'c100-nonames'), { names: false }).dir })).classes.slice(0, 3), ['0', '1', '2']);
  });
});

describe('image folders', () => {
  let root = '';
  let written: FolderImage[] = [];
  before(async () => {
    root = join(tmp.dir, 'folder');
    written = await writeImageFolder(root);
  });

  test('lists classes sorted and files in ImageFolder order, skipping other files', async () => {
    const ds = await loadImageFolder(root);
    assert.deepEqual(ds.classes, ['cat', 'dog']);
    assert.equal(ds.n, written.length);
    assert.deepEqual(ds.samples.map((s) => [s.path, s.label]), written.map((w) => [w.path, w.label]));
  });

  test('decodes png, webp, grey and RGBA exactly; jpg within compression error', async () => {
    const ds = await loadImageFolder(root);
    const { images, labels } = await decodeImageFolder(ds, { concurrency: 3 });
    assert.deepEqual(Array.from(labels), written.map((w) => w.label));
    images.forEach((img, i) => {
      const w = written[i];
      assert.deepEqual([img.channels, img.height, img.width], [3, w.height, w.width], w.path);
      if (w.lossless) {
        assert.deepEqual(Array.from(img.data), Array.from(w.chw), w.path);
      } else {
        let err = 0;
        for (let k = 0; k < img.data.length; k++) err += Math.abs(img.data[k] - w.chw[k]);
        assert.ok(err / img.data.length < 4, `${w.path}: mean abs error ${err / img.data.length}`);
      }
    });
  });

  test('validation split: deterministic, stratified, disjoint, complete', async () => {
    const ds = await loadImageFolder(root);
    const a = splitImageFolder(ds, 0.34, 7);
    const b = splitImageFolder(ds, 0.34, 7);
    assert.deepEqual(a, b);
    assert.equal(a.train.n + a.val.n, ds.n);
    assert.equal(a.val.samples.filter((s) => s.label === 0).length, 1); // round(4 * 0.34)
    assert.equal(a.val.samples.filter((s) => s.label === 1).length, 1); // round(3 * 0.34)
    const all = new Set([...a.train.samples, ...a.val.samples].map((s) => s.path));
    assert.equal(all.size, ds.n);
    const val = await loadImageFolder(root, { split: 'val', valFraction: 0.34, seed: 7 });
    assert.deepEqual(val.samples, a.val.samples);
    const seeds = new Set(Array.from({ length: 8 }, (_, s) => splitImageFolder(ds, 0.5, s).val.samples.map((x) => x.path).join()));
    assert.ok(seeds.size > 1, 'the seed changes the split');
  });

  test('stackImages packs same-size images and names a different one', async () => {
    const ds = await loadImageFolder(root);
    const { images, labels, classes } = await decodeImageFolder(ds);
    const same = stackImages([images[1], images[1]], Int32Array.from([0, 1]), classes);
    assert.deepEqual([same.n, same.channels, same.height, same.width], [2, 3, 8, 8]);
    assert.throws(() => stackImages(images, labels, classes, ds.samples.map((s) => s.path)),
      (e: Error) => e instanceof DataError && /b\.webp: is 3x8x8, expected 3x7x9 like the first image/.test(e.message));
  });

  test('undecodable, truncated, oversized and missing images name the file', async () => {
    const bad = join(tmp.dir, 'bad-folder');
    mkdirSync(join(bad, 'x'), { recursive: true });
    writeFileSync(join(bad, 'x', 'broken.jpg'), 'this is not a jpeg');
    await rejectsData(decodeImage(join(bad, 'x', 'broken.jpg')), /broken\.jpg: cannot decode image, expected a JPEG, PNG or WebP file/);
    const png = await sharp(Buffer.alloc(64 * 64 * 3, 9), { raw: { width: 64, height: 64, channels: 3 } }).png().toBuffer();
    writeFileSync(join(bad, 'x', 'cut.png'), png.subarray(0, png.length >> 1));
    await rejectsData(decodeImage(join(bad, 'x', 'cut.png')), /cut\.png: cannot decode image/);
    writeFileSync(join(bad, 'x', 'big.png'), png);
    await rejectsData(decodeImage(join(bad, 'x', 'big.png'), { limitInputPixels: 1000 }), /big\.png: cannot decode image.*larger than limitInputPixels = 1000/);
    await rejectsData(decodeImage(join(bad, 'x', 'missing.png')), /missing\.png: cannot decode image/);
    await rejectsData(loadImageFolder(join(tmp.dir, 'absent')), /absent: image folder not found/);
    mkdirSync(join(bad, 'y'));
    await rejectsData(loadImageFolder(bad), /y: no images found for class 'y'/);
  });
});
