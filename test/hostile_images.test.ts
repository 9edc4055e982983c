// Hostile images and folders (issue 18, part C), generated here in a temp dir: extreme
// aspect ratios (115-byte PNGs that resize to gigapixels), a header claiming 10^10 pixels,
// junk, symlink loops, a FIFO, GIF/TIFF/AVIF, SVG that points at another file. The CLI runs
// as a child process under an address-space cap (prlimit --as) and a time limit; we assert
// the exit code, one-line errors without a stack trace, and that good images get answers.
// Unit tests pin the window resize to the full resize + crop, bit for bit.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import { cropImage, resizeBilinear, resizeBilinearWindow, applyTransforms, resize, centerCrop, randomResizedCrop, Random,
  sniffFormat, parseFormats, decodeImage, IMAGE_EXTENSIONS, resizeOutputSize } from '../src/data/index.js';
import { assembleBatch } from '../src/data/pipeline.js';
import { listFiles } from '../src/data/image_folder.js';
import { preprocessImage } from '../src/infer/index.js';
import type { ImageRecord } from '../src/data/dataset.js';

const ROOT = new URL('..', import.meta.url).pathname;
const BIN = join(ROOT, 'dist/cli/main.js');
const FIX = join(ROOT, 'test/fixtures/predict');
const GOOD = join(FIX, 'images/a_300x200.jpg');
const NET = ['--arch', 'resnet18', '--width', '0.125', '--weights', join(FIX, 'resnet18_w8.safetensors')];
/** Node + the addon start reliably at 2 GiB of address space; the old code needed more for a 10000x1 PNG. */
const CAP = 3 * 1024 ** 3;
const HAS_PRLIMIT = existsSync('/usr/bin/prlimit');

const tmp = mkdtempSync(join(tmpdir(), 'resnet-hostile-img-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

interface Run { code: number | null; stdout: string; stderr: string; killed: boolean }

/** The compiled CLI under the address-space cap and a time limit. */
function cli(args: string[], timeoutMs = 90_000): Promise<Run> {
  const [cmd, pre] = HAS_PRLIMIT ? ['/usr/bin/prlimit', [`--as=${CAP}`, process.execPath]] : [process.execPath, []];
  return new Promise((resolve) => {
    execFile(cmd, [...pre, BIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 16 << 20, env: { ...process.env, RESNET_NUM_THREADS: '1' } },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr, killed: err?.killed === true }));
  });
}

/** stderr: every line one `resnet: ...` line, no stack frame. */
function assertCleanStderr(stderr: string): void {
  assert.doesNotMatch(stderr, /^\s+at /m, `stack trace in stderr:\n${stderr}`);
  for (const line of stderr.split('\n').filter((l) => l !== '')) assert.match(line, /^resnet: /, `not a one-line error: ${line}`);
}

const rgb = (width: number, height: number) => sharp({ create: { width, height, channels: 3, background: { r: 200, g: 40, b: 30 } } });

/** A valid PNG signature + IHDR claiming width x height, then an empty IDAT and IEND. */
function pngHeader(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer): Buffer => {
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0); ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; ihdr[9] = 2; // 8-bit RGB
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', Buffer.alloc(0)), chunk('IEND', Buffer.alloc(0))]);
}

const MIXED = join(tmp, 'mixed');
const FORMATS = join(tmp, 'formats');
const LOOPS = join(tmp, 'loops');

before(async () => {
  mkdirSync(MIXED);
  copyFileSync(GOOD, join(MIXED, 'a_good.jpg'));
  await rgb(10000, 1).png().toFile(join(MIXED, 'b_10000x1.png'));
  await rgb(100000, 1).png().toFile(join(MIXED, 'c_100000x1.png'));
  await rgb(1, 100000).png().toFile(join(MIXED, 'd_1x100000.png'));
  writeFileSync(join(MIXED, 'e_bomb.png'), pngHeader(100000, 100000));
  writeFileSync(join(MIXED, 'f_junk.jpg'), Buffer.from('not a jpeg at all'));
  copyFileSync(GOOD, join(MIXED, 'g_good.jpg'));

  mkdirSync(FORMATS);
  mkdirSync(join(FORMATS, 'sub'));
  await rgb(40, 30).gif().toFile(join(FORMATS, 'g.gif'));
  await rgb(40, 30).tiff().toFile(join(FORMATS, 't.tiff'));
  await rgb(40, 30).png().toFile(join(FORMATS, 'p.png'));
  // The SVG's image points at a FIFO: if anything opened it, open() would wait for a writer
  // and the run would hit the time limit. The same SVG is also saved under a .png name.
  execFileSync('mkfifo', [join(FORMATS, 'sub', 'x.png')]);
  const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="30"><image href="sub/x.png" width="40" height="30"/></svg>';
  writeFileSync(join(FORMATS, 's.svg'), svg);
  writeFileSync(join(FORMATS, 's_svg.png'), `\n  ${svg}`);

  mkdirSync(join(LOOPS, 'sub', 'deep'), { recursive: true });
  copyFileSync(GOOD, join(LOOPS, 'a.jpg'));
  await rgb(40, 30).png().toFile(join(LOOPS, 'sub', 'deep', 'b.png'));
  symlinkSync('.', join(LOOPS, 'l1'));
  symlinkSync('.', join(LOOPS, 'l2'));
  symlinkSync('..', join(LOOPS, 'sub', 'up'));
  symlinkSync('../..', join(LOOPS, 'sub', 'deep', 'top'));
  symlinkSync('a.jpg', join(LOOPS, 'alias.jpg'));
  symlinkSync('nowhere.jpg', join(LOOPS, 'dangling.jpg'));
});

// ---- the window resize is the full resize + crop, bit for bit ----

function randomImage(rng: Random, C: number, H: number, W: number): ImageRecord {
  const data = new Uint8Array(C * H * W);
  for (let i = 0; i < data.length; i++) data[i] = rng.int(256);
  return { data, channels: C, height: H, width: W };
}

test('resizeBilinearWindow equals cropImage(resizeBilinear(...)) for up-, down- and mixed scaling, inside and padded windows', () => {
  const rng = new Random(18);
  for (let t = 0; t < 300; t++) {
    const C = 1 + rng.int(3);
    const H = 1 + rng.int(40);
    const W = 1 + rng.int(40);
    const OH = 1 + rng.int(60);
    const OW = 1 + rng.int(60);
    const ch = 1 + rng.int(OH + 6);
    const cw = 1 + rng.int(OW + 6);
    const top = rng.int(OH + 8) - 4 - (ch > OH ? ch - OH : 0);
    const left = rng.int(OW + 8) - 4 - (cw > OW ? cw - OW : 0);
    const img = randomImage(rng, C, H, W);
    const want = cropImage(resizeBilinear(img, OH, OW), top, left, ch, cw);
    const got = resizeBilinearWindow(img, OH, OW, top, left, ch, cw);
    assert.deepEqual([got.channels, got.height, got.width], [C, ch, cw]);
    assert.ok(Buffer.from(got.data).equals(Buffer.from(want.data)), `case ${t}: ${C}x${H}x${W} -> ${OH}x${OW}, window ${ch}x${cw} at (${top}, ${left})`);
  }
});

test('Resize + CenterCrop through applyTransforms equals the two steps apart; a 100000x1 image costs only the crop', () => {
  const rng = new Random(7);
  for (const [H, W, size, crop] of [[37, 53, 29, 24], [53, 37, 64, 70], [20, 20, 20, 20], [9, 31, 16, 16]] as const) {
    const img = randomImage(rng, 3, H, W);
    const fused = applyTransforms(img, [resize(size), centerCrop(crop)], new Random(0));
    const [h, w] = resizeOutputSize(H, W, size);
    const viaCrop = applyTransforms(resizeBilinear(img, h, w), [centerCrop(crop)], new Random(0));
    assert.deepEqual(Array.from(fused.data), Array.from(viaCrop.data), `${H}x${W} resize ${size} crop ${crop}`);
  }
  const line: ImageRecord = { data: new Uint8Array(3 * 100000).fill(128), channels: 3, height: 1, width: 100000 };
  const x = applyTransforms(line, [resize(256), centerCrop(224)], new Random(0));
  assert.deepEqual([x.channels, x.height, x.width], [3, 224, 224]);
  assert.throws(() => applyTransforms(line, [resize(256)], new Random(0)),
    /resize: the 100000x1 image \(width x height\) would become 25600000x256 = 6553600000 pixels, above the limit of 67108864/);
  // Training transforms stay bounded too: RandomResizedCrop reads a box of the image, then makes size x size.
  const r = applyTransforms(line, [randomResizedCrop(32)], new Random(3));
  assert.deepEqual([r.height, r.width], [32, 32]);
});

test('a transform that fails on one training sample names that sample', () => {
  const img: ImageRecord = { data: new Uint8Array(3 * 100000), channels: 3, height: 1, width: 100000 };
  assert.throws(() => assembleBatch(1, () => img, () => 0, new Uint32Array(1), [resize(256)], () => 'cls/wide.png', true),
    /^DataError: cls\/wide\.png: resize: the 100000x1 image/);
});

// ---- formats and walks, through the API ----

test('formats are told from the first bytes; only jpeg, png, webp by default; SVG never', async () => {
  assert.equal(sniffFormat(readFileSync(GOOD)), 'jpeg');
  assert.equal(sniffFormat(readFileSync(join(FORMATS, 'g.gif'))), 'gif');
  assert.equal(sniffFormat(readFileSync(join(FORMATS, 't.tiff'))), 'tiff');
  assert.equal(sniffFormat(readFileSync(join(FORMATS, 's_svg.png'))), 'svg');
  assert.equal(sniffFormat(Buffer.from('hello')), null);
  assert.deepEqual(parseFormats('JPG, png,tif,gif,png'), ['jpeg', 'png', 'tiff', 'gif']);
  assert.throws(() => parseFormats('png,bmp', '--formats'), /--formats: unknown image format 'bmp'; valid: jpeg, png, webp, gif, tiff, avif, heif/);
  assert.throws(() => parseFormats(['svg']), /SVG is not an image format we accept/);
  await assert.rejects(decodeImage(join(FORMATS, 'g.gif')),
    /g\.gif: cannot decode image: a GIF file, not read unless enabled \(--formats jpeg,png,webp,gif or the 'formats' option\); accepted formats: jpeg, png, webp/);
  const gif = await decodeImage(join(FORMATS, 'g.gif'), { formats: ['gif'] });
  assert.deepEqual([gif.channels, gif.height, gif.width, gif.data[0]], [3, 30, 40, 200]);
  await assert.rejects(decodeImage(join(FORMATS, 's.svg'), { formats: ['jpeg', 'png', 'webp', 'gif', 'tiff'] }), /s\.svg: cannot decode image: looks like SVG/);
  await assert.rejects(decodeImage(join(FORMATS, 'sub', 'x.png')), /x\.png: cannot decode image: not a regular file \(a device, FIFO or socket\)/);
  await assert.rejects(preprocessImage(join(MIXED, 'e_bomb.png')),
    /e_bomb\.png: cannot decode image: 100000x100000 \(width x height\) = 10000000000 pixels, larger than limitInputPixels = 67108864/);
});

test('a folder walk visits each real file once: symlink loops skipped, a link beside its target listed once', async () => {
  assert.deepEqual(await listFiles(LOOPS, IMAGE_EXTENSIONS), [join(LOOPS, 'a.jpg'), join(LOOPS, 'sub', 'deep', 'b.png')]);
});

// ---- the CLI, as a child process under the memory cap and a time limit ----

test('predict on a folder of extreme images: bounded memory, good ones answered, bad ones one line each, exit 1', async () => {
  const r = await cli(['predict', ...NET, '--json', '--top', '1', MIXED]);
  assert.equal(r.killed, false, 'hit the time limit');
  assertCleanStderr(r.stderr);
  assert.equal(r.code, 1, r.stderr);
  const out = JSON.parse(r.stdout) as { file: string; top?: unknown[]; error?: string }[];
  const names = ['a_good.jpg', 'b_10000x1.png', 'c_100000x1.png', 'd_1x100000.png', 'e_bomb.png', 'f_junk.jpg', 'g_good.jpg'];
  assert.deepEqual(out.map((o) => o.file), names.map((n) => join(MIXED, n)));
  for (const i of [0, 1, 2, 3, 6]) assert.equal(out[i].top?.length, 1, `${names[i]}: ${out[i].error}`);
  assert.match(String(out[4].error), /e_bomb\.png: cannot decode image: 100000x100000 \(width x height\) = 10000000000 pixels, larger than limitInputPixels/);
  assert.match(String(out[5].error), /f_junk\.jpg: cannot decode image, expected a JPEG, PNG or WebP file \(unrecognised first bytes\)/);
  assert.match(r.stderr, /2 of 7 image\(s\) could not be read; the others were processed/);
});

test('predict --crop 0 refuses a resize that would make gigapixels, naming the size, and answers the rest', async () => {
  const r = await cli(['predict', ...NET, '--top', '1', '--crop', '0', join(MIXED, 'c_100000x1.png'), GOOD]);
  assert.equal(r.killed, false, 'hit the time limit');
  assertCleanStderr(r.stderr);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /c_100000x1\.png: resize: the 100000x1 image \(width x height\) would become 25600000x256 = 6553600000 pixels, above the limit of 67108864/);
  assert.match(r.stdout, new RegExp(`^${GOOD.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
});

test('features on the same folder writes the good rows and lists the bad ones', async () => {
  const out = join(tmp, 'f.npy');
  const r = await cli(['features', ...NET, '--json', '--out', out, MIXED]);
  assert.equal(r.killed, false, 'hit the time limit');
  assertCleanStderr(r.stderr);
  assert.equal(r.code, 1);
  const res = JSON.parse(r.stdout) as { n: number; failed: string[] };
  assert.equal(res.n, 5);
  assert.deepEqual(res.failed, [join(MIXED, 'e_bomb.png'), join(MIXED, 'f_junk.jpg')]);
  // five paths, then the line that pairs the list with its .npy (see readFeatures)
  const lines = readFileSync(`${out}.files.txt`, 'utf8').trim().split('\n');
  assert.equal(lines.filter((l) => !l.startsWith('# resnet-ts:')).length, 5);
  assert.match(lines.at(-1)!, /^# resnet-ts: rows of .*f\.npy, sha256 [0-9a-f]{64}, 5 rows$/);
});

test('predict on a folder with symlink loops lists each image once and finishes', async () => {
  const r = await cli(['predict', ...NET, '--json', '--top', '1', LOOPS], 60_000);
  assert.equal(r.killed, false, 'hit the time limit');
  assertCleanStderr(r.stderr);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { file: string }[];
  assert.deepEqual(out.map((o) => o.file), [join(LOOPS, 'a.jpg'), join(LOOPS, 'sub', 'deep', 'b.png')]);
});

test('GIF, TIFF and SVG are refused by default with the valid list; --formats enables the raster ones, never SVG, and the SVG href is never opened', async () => {
  const files = ['g.gif', 't.tiff', 's.svg', 's_svg.png', 'p.png'].map((f) => join(FORMATS, f));
  const d = await cli(['predict', ...NET, '--json', '--top', '1', ...files], 60_000);
  assert.equal(d.killed, false, 'hit the time limit (something opened the FIFO)');
  assertCleanStderr(d.stderr);
  assert.equal(d.code, 1);
  const def = JSON.parse(d.stdout) as { file: string; top?: unknown[]; error?: string }[];
  assert.match(String(def[0].error), /g\.gif: cannot decode image: a GIF file, not read unless enabled .*accepted formats: jpeg, png, webp$/);
  assert.match(String(def[1].error), /t\.tiff: cannot decode image: a TIFF file, not read unless enabled/);
  assert.match(String(def[2].error), /s\.svg: cannot decode image: looks like SVG or other XML text, and SVG is not an image format we accept/);
  assert.match(String(def[3].error), /s_svg\.png: cannot decode image: looks like SVG/);
  assert.equal(def[4].top?.length, 1);

  const e = await cli(['predict', ...NET, '--json', '--top', '1', '--formats', 'jpeg,png,webp,gif,tiff', ...files], 60_000);
  assert.equal(e.killed, false, 'hit the time limit (something opened the FIFO)');
  assertCleanStderr(e.stderr);
  assert.equal(e.code, 1);
  const en = JSON.parse(e.stdout) as { file: string; top?: unknown[]; error?: string }[];
  assert.deepEqual(en.map((o) => o.top?.length ?? 0), [1, 1, 0, 0, 1]);
  assert.match(String(en[2].error), /SVG is not an image format we accept.*accepted formats: jpeg, png, webp, gif, tiff$/);

  // A folder walk picks up the extensions of the enabled formats only (the FIFO is skipped).
  const w = await cli(['predict', ...NET, '--json', '--top', '1', '--formats', 'gif', FORMATS], 60_000);
  assert.equal(w.code, 0, w.stderr);
  assert.deepEqual((JSON.parse(w.stdout) as { file: string }[]).map((o) => o.file), [join(FORMATS, 'g.gif')]);

  for (const [arg, re] of [['svg', /--formats: SVG is not an image format we accept .*valid: jpeg, png, webp, gif, tiff, avif, heif/],
    ['png,bmp', /--formats: unknown image format 'bmp'; valid: jpeg, png, webp, gif, tiff, avif, heif/]] as const) {
    const b = await cli(['predict', ...NET, '--formats', arg, GOOD], 60_000);
    assertCleanStderr(b.stderr);
    assert.equal(b.code, 1);
    assert.match(b.stderr, re);
  }
});

test('a FIFO given as an image is refused at once, without waiting for a writer', async () => {
  const r = await cli(['predict', ...NET, '--top', '1', join(FORMATS, 'sub', 'x.png'), GOOD], 60_000);
  assert.equal(r.killed, false, 'hit the time limit');
  assertCleanStderr(r.stderr);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /x\.png: cannot decode image: not a regular file \(a device, FIFO or socket\), expected an image file/);
});
