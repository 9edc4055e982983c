// `resnet serve` with a detector: POST /v1/models/{name}/detect answers what `detect()` gives
// for the same image and model in this process (the server opens it the same way, through
// openServedDetector), filtered by ?score; the wrong route for a model's kind is a 400 naming
// what the model is and its routes; bad images 400, unknown models 404; the route is counted
// in /metrics; the CLI's flags tell detectors from classifiers; and the page, in Debian's
// chromium, draws the boxes of a dropped image and lists them, without console errors.
// Model: torchvision's fasterrcnn_resnet18_fpn keys with formula weights (a torchvision-format
// file, 91 COCO classes), served at min size 32 / max size 48 so a forward is quick (a few
// seconds on the reference backend, in-process, ~20 ms on the native one).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import sharp from 'sharp';
import { backendByName, setBackend } from '../src/backend/index.js';
import { modelSpecsOf } from '../src/cli/serve.js';
import { createDetector } from '../src/detect/models.js';
import { detect, type ImageDetections } from '../src/detect/predict.js';
import { saveWeights } from '../src/io/weights.js';
import { createModel } from '../src/models/index.js';
import { openServedDetector } from '../src/serve/detector.js';
import { startServer, type RunningServer } from '../src/serve/server.js';
import { watchPage } from './helpers/browser.js';
import { syntheticStateDict } from './helpers/synthetic_weights.js';

const BIN = new URL('../dist/cli/main.js', import.meta.url).pathname;
const ARCH = 'fasterrcnn_resnet18_fpn';
const RESIZE = { minSize: 32, maxSize: 48 };
let dir: string;
let detWeights: string;
let clsWeights: string;
let png: Buffer;
let png2: Buffer;
let server: RunningServer;
/** detect() in this process (reference backend) on png and png2, every detection kept. */
let want: ImageDetections[];

interface Detection { box: number[]; score: number; label: number; name: string }

/** A 64x48 scene: bright blocks on a textured ground (seeded, so detections are stable). */
async function scene(w: number, h: number, seed: number): Promise<Buffer> {
  const px = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const inBlock = (x > 8 + seed && x < 30 + seed && y > 10 && y < 40) || (x > 40 && x < 58 && y > 4 + seed && y < 24 + seed);
      for (let c = 0; c < 3; c++) px[(y * w + x) * 3 + c] = inBlock ? 220 - 40 * c : ((x * 37 + y * 11 + c * 71 + seed * 13) % 251) >> 1;
    }
  }
  return sharp(px, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer();
}

async function post(path: string, body: Buffer | FormData | string, headers: Record<string, string> = {}): Promise<{ status: number; json: any }> {
  const res = await fetch(`${server.url}${path}`, { method: 'POST', headers, body });
  return { status: res.status, json: await res.json() };
}

function assertSameDetections(got: Detection[], exp: ImageDetections, minScore: number, what: string): void {
  const keep = exp.scores.map((s, i) => i).filter((i) => exp.scores[i] >= minScore);
  assert.equal(got.length, keep.length, `${what}: ${got.length} detections, detect() gives ${keep.length}`);
  // NOTE: the server's engine runs the native backend, this process the reference one: the
  // same model and image, sums in a different order (features agree to ~1e-6 relative).
  got.forEach((d, k) => {
    const i = keep[k];
    assert.equal(d.label, exp.labels[i], `${what}: detection ${k}'s label`);
    assert.equal(d.name, exp.names[i]);
    assert.ok(Math.abs(d.score - exp.scores[i]) < 1e-4, `${what}: detection ${k}'s score ${d.score} vs ${exp.scores[i]}`);
    for (let j = 0; j < 4; j++) assert.ok(Math.abs(d.box[j] - exp.boxes[i][j]) < 1e-3, `${what}: detection ${k}'s box ${d.box} vs ${exp.boxes[i]}`);
  });
}

before(async () => {
  setBackend('reference'); // the native backend belongs to the server's engine thread
  dir = mkdtempSync(join(tmpdir(), 'resnet-serve-detect-'));
  // A torchvision-format detection file: the detector's own keys, formula values; the class
  // logits scaled so that a few boxes score over 0.5 and many under, the box deltas down so
  // that boxes stay near their anchors (large deltas through exp() would amplify the
  // backends' last-bit differences into visible ones).
  const m = createDetector(ARCH, { backend: backendByName('reference') });
  const keys = Object.entries(m.stateDict()).map(([k, t]) => [k, [...t.shape]] as [string, number[]]);
  m.dispose();
  detWeights = join(dir, 'det.safetensors');
  saveWeights(detWeights, syntheticStateDict(keys, { 'roi_heads.box_predictor.cls_score.weight': 0.3, 'rpn.head.bbox_pred.weight': 0.1, 'roi_heads.box_predictor.bbox_pred.weight': 0.1 }));
  clsWeights = join(dir, 'r20.safetensors');
  const c = createModel('resnet20', { numClasses: 10, seed: 5 });
  saveWeights(clsWeights, c.stateDict(), { arch: 'resnet20', labels: Array.from({ length: 10 }, (_, i) => `class-${i}`), inputSize: [32, 32] });
  c.dispose();
  png = await scene(64, 48, 0);
  png2 = await scene(48, 64, 3);
  server = await startServer({
    models: [{ name: 'det', kind: 'detector', detector: { weights: detWeights, arch: ARCH, ...RESIZE } }, { name: 'r20', options: { weights: clsWeights } }],
    port: 0, precision: 'fp32', decodeThreads: 1,
  });
  const { model } = openServedDetector('det', { weights: detWeights, arch: ARCH, ...RESIZE }, backendByName('reference'));
  want = await detect(model, [png, png2]);
  model.dispose();
  for (const w of want) {
    assert.ok(w.scores.some((s) => s >= 0.5) && w.scores.some((s) => s < 0.5), `the scene has detections on both sides of 0.5: ${w.scores}`);
    assert.ok(w.scores.every((s) => Math.abs(s - 0.5) > 1e-3), 'no score so near 0.5 that the backends could put it on different sides');
  }
});

after(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('POST /v1/models/{name}/detect', () => {
  test('answers {detections: [{box, score, label, name}], width, height, ms}, the boxes detect() gives in-process', async () => {
    for (const [i, img] of [png, png2].entries()) {
      const r = await post('/v1/models/det/detect', img, { 'Content-Type': 'image/png' });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.deepEqual(Object.keys(r.json).sort(), ['detections', 'height', 'model', 'ms', 'width']);
      assert.equal(r.json.model, 'det');
      assert.deepEqual([r.json.width, r.json.height], i === 0 ? [64, 48] : [48, 64]);
      assert.deepEqual(Object.keys(r.json.ms).sort(), ['compute', 'decode', 'queue', 'total']);
      for (const d of r.json.detections as Detection[]) {
        assert.deepEqual(Object.keys(d), ['box', 'score', 'label', 'name']);
        assert.ok(d.box[0] >= 0 && d.box[1] >= 0 && d.box[0] <= d.box[2] && d.box[1] <= d.box[3] && d.box[2] <= r.json.width && d.box[3] <= r.json.height, `box ${d.box} inside the image`);
      }
      assertSameDetections(r.json.detections, want[i], 0.5, `image ${i}`);
    }
    // The same image as a multipart file part.
    const form = new FormData();
    form.append('image', new Blob([png], { type: 'image/png' }), 'scene.png');
    const m = await post('/v1/models/det/detect', form);
    assert.equal(m.status, 200, JSON.stringify(m.json));
    assertSameDetections(m.json.detections, want[0], 0.5, 'multipart');
  });

  test('?score filters (default 0.5); it must be a number from 0 to 1', async () => {
    const all = (await post('/v1/models/det/detect?score=0', png)).json.detections as Detection[];
    assert.equal(all.length, want[0].scores.length, 'score=0: every detection the model keeps');
    assert.ok(all.some((d) => d.score < 0.5));
    const byDefault = (await post('/v1/models/det/detect', png)).json.detections;
    assert.deepEqual(byDefault, all.filter((d) => d.score >= 0.5));
    // A threshold between the lowest and the highest score, exactly one of them.
    const scores = [...new Set(all.map((d) => d.score))].sort((a, b) => a - b);
    const cut = scores[Math.floor(scores.length / 2)];
    const some = (await post(`/v1/models/det/detect?score=${cut}`, png)).json.detections;
    assert.deepEqual(some, all.filter((d) => d.score >= cut));
    assert.ok(some.length > 0 && some.length < all.length, `score=${cut}: ${some.length} of ${all.length}`);
    assert.deepEqual((await post('/v1/models/det/detect?score=1', png)).json.detections, all.filter((d) => d.score >= 1));
    for (const bad of ['2', '-0.1', 'abc', '', '0x1', 'NaN', '1e3']) {
      const r = await post(`/v1/models/det/detect?score=${encodeURIComponent(bad)}`, png);
      assert.equal(r.status, 400, bad);
      assert.match(r.json.error, /'score' must be a number from 0 to 1/);
    }
  });

  test('a request to a route the model does not have is a 400 naming its kind and its routes', async () => {
    for (const route of ['classify', 'embed']) {
      const r = await post(`/v1/models/det/${route}`, png);
      assert.equal(r.status, 400, route);
      assert.match(r.json.error, new RegExp(`model 'det' is a detector \\(${ARCH}\\): it has no ${route}; use POST /v1/models/det/detect`));
    }
    const infer = await post('/v2/models/det/infer', JSON.stringify({ inputs: [{ name: 'image', shape: [1], datatype: 'BYTES', data: [png.toString('base64')] }] }), { 'Content-Type': 'application/json' });
    assert.equal(infer.status, 400);
    assert.match(infer.json.error, /model 'det' is a detector .*no v2 infer .*use POST \/v1\/models\/det\/detect/);
    assert.equal((await fetch(`${server.url}/v2/models/det/config`)).status, 400);
    const onClassifier = await post('/v1/models/r20/detect', png);
    assert.equal(onClassifier.status, 400);
    assert.match(onClassifier.json.error, /model 'r20' is a classifier \(resnet20\): it does not detect; use POST \/v1\/models\/r20\/classify, POST \/v1\/models\/r20\/embed, POST \/v2\/models\/r20\/infer/);
    // The classifier beside it still classifies.
    assert.equal((await post('/v1/models/r20/classify', png)).status, 200);
  });

  test('GET /v2/models and /v2/models/{name} say each model\'s kind', async () => {
    const list = await (await fetch(`${server.url}/v2/models`)).json();
    assert.deepEqual(list.models.map((m: { name: string; kind: string; arch: string }) => [m.name, m.kind, m.arch]), [['det', 'detector', ARCH], ['r20', 'classifier', 'resnet20']]);
    const meta = await (await fetch(`${server.url}/v2/models/det`)).json();
    assert.equal(meta.kind, 'detector');
    assert.equal(meta.parameters.route, '/v1/models/det/detect');
    assert.deepEqual([meta.parameters.min_size, meta.parameters.max_size, meta.parameters.classes], [32, 48, 91]);
    assert.equal((await (await fetch(`${server.url}/v2/models/r20`)).json()).kind, 'classifier');
    assert.equal((await fetch(`${server.url}/v2/models/det/ready`)).status, 200);
  });

  test('bad images are 400 naming why; an unknown model is 404', async () => {
    const cases: [Buffer | string, RegExp][] = [
      [Buffer.alloc(0), /image: empty body/],
      [png.subarray(0, 60), /image/],
      ['not an image at all', /image/],
    ];
    for (const [body, re] of cases) {
      const r = await post('/v1/models/det/detect', body as Buffer, { 'Content-Type': 'application/octet-stream' });
      assert.equal(r.status, 400, `${r.json.error}`);
      assert.match(r.json.error, re);
      assert.equal(r.json.error.split('\n').length, 1);
    }
    // 1 x 400: resized by min(32 / 1, 48 / 400) its height would be 0 pixels.
    const thin = await sharp(Buffer.alloc(400 * 3, 128), { raw: { width: 400, height: 1, channels: 3 } }).png().toBuffer();
    const t = await post('/v1/models/det/detect', thin);
    assert.equal(t.status, 400);
    assert.match(t.json.error, /400x1 is too elongated for model 'det'/);
    const u = await post('/v1/models/nope/detect', png);
    assert.equal(u.status, 404);
    assert.match(u.json.error, /unknown model 'nope'; loaded: det, r20/);
  });

  test('concurrent requests queue per model, run one image per forward, and each gets its own image\'s answer', async () => {
    const alone = [(await post('/v1/models/det/detect?score=0', png)).json.detections, (await post('/v1/models/det/detect?score=0', png2)).json.detections];
    const imgs = [png, png2, png, png2, png, png2];
    const rs = await Promise.all(imgs.map((img) => post('/v1/models/det/detect?score=0', img)));
    rs.forEach((r, i) => {
      assert.equal(r.status, 200);
      assert.deepEqual(r.json.detections, alone[i % 2], `request ${i}: the same as its image alone`);
    });
    const text = await (await fetch(`${server.url}/metrics`)).text();
    const count = Number(/resnet_batch_size_count\{model="det"\} (\d+)/.exec(text)![1]);
    assert.equal(Number(/resnet_batch_size_bucket\{le="1",model="det"\} (\d+)/.exec(text)![1]), count, 'every batch of the detector held one image');
  });

  test('/metrics counts the detect route and the detector\'s batches', async () => {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(text, /resnet_http_requests_total\{route="\/v1\/models\/:name\/detect",method="POST",status="200"\} [1-9]/);
    assert.match(text, /resnet_http_requests_total\{route="\/v1\/models\/:name\/detect",method="POST",status="400"\} [1-9]/);
    assert.match(text, /resnet_request_duration_seconds_count\{route="\/v1\/models\/:name\/detect"\} [1-9]/);
    assert.match(text, /resnet_batch_size_count\{model="det"\} [1-9]/);
    assert.match(text, /resnet_queue_depth\{model="det"\} 0/);
  });
});

describe('resnet serve flags', () => {
  test('--arch with a detection arch, --model NAME=ARCH:FILE and a detect-train run are detectors; the rest classifiers', () => {
    assert.deepEqual(modelSpecsOf({ arch: ARCH, weights: detWeights, minSize: '64' }), [{ name: ARCH, kind: 'detector', detector: { weights: detWeights, arch: ARCH, minSize: 64 } }]);
    assert.deepEqual(modelSpecsOf({ model: [`det=${ARCH}:${detWeights}`, `r20=${clsWeights}`, `r=resnet20:${clsWeights}`], bnEps: '0' }), [
      { name: 'det', kind: 'detector', detector: { weights: detWeights, arch: ARCH, bnEps: 0 } },
      { name: 'r20', options: { weights: clsWeights, arch: undefined, modelOptions: undefined } },
      { name: 'r', options: { weights: clsWeights, arch: 'resnet20', modelOptions: undefined } },
    ]);
    // A training checkpoint naming a detection arch (the header is all that is read).
    const run = join(dir, 'run');
    mkdirSync(run);
    const meta = JSON.stringify({ __metadata__: { resnet_ts: JSON.stringify({ arch: ARCH }) } });
    const head = Buffer.alloc(8);
    head.writeBigUInt64LE(BigInt(meta.length));
    writeFileSync(join(run, 'best.safetensors'), Buffer.concat([head, Buffer.from(meta)]));
    assert.deepEqual(modelSpecsOf({ model: [`d2=${run}`] }), [{ name: 'd2', kind: 'detector', detector: { weights: run } }]);
    assert.deepEqual(modelSpecsOf({ weights: run }), [{ name: 'run', kind: 'detector', detector: { weights: run } }]);
  });

  test('detector flags are checked: one-line errors naming the flag', () => {
    const cases: [Parameters<typeof modelSpecsOf>[0], RegExp][] = [
      [{ arch: ARCH }, /--arch fasterrcnn_resnet18_fpn needs --weights/],
      [{ arch: ARCH, pretrained: true }, /--pretrained: no pretrained weights are fetched for detectors/],
      [{ model: [`r20=${clsWeights}`], minSize: '64' }, /--min-size applies to detectors, and no model served is one/],
      [{ arch: ARCH, weights: detWeights, minSize: '0' }, /--min-size must be an integer >= 1, got '0'/],
      [{ arch: ARCH, weights: detWeights, bnEps: '2' }, /--bn-eps must be a number from 0 to 1/],
      [{ model: [`det=${ARCH}:`] }, /--model det=fasterrcnn_resnet18_fpn:: no weights after 'fasterrcnn_resnet18_fpn:'/],
      // A torchvision detection file without its arch (it cannot name one).
      [{ model: [`det=${detWeights}`] }, /det\.safetensors: a detection checkpoint \(rpn\.\*, roi_heads\.\* keys\) does not name its arch; give it: --model det=ARCH:.*det\.safetensors, ARCH one of .*fasterrcnn_resnet50_fpn/],
      [{ weights: detWeights }, /does not name its arch; give it: --arch ARCH --weights /],
    ];
    for (const [flags, re] of cases) assert.throws(() => modelSpecsOf(flags), (e: Error) => re.test(e.message) && !e.message.includes('\n'), JSON.stringify(flags));
  });

  test('the compiled CLI serves a detector named by --model NAME=ARCH:FILE beside a classifier, and drains on SIGTERM', async () => {
    const child = spawn(process.execPath, [BIN, 'serve', '--model', `det=${ARCH}:${detWeights}`, '--model', `r20=${clsWeights}`, '--min-size', '32', '--max-size', '48', '--port', '0', '--decode-threads', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => { stderr += d; });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout!.on('data', (d) => { out += d; const m = /serving det, r20 at (http:\/\/127\.0\.0\.1:\d+)/.exec(out); if (m) resolve(m[1]); });
        child.on('exit', (c) => reject(new Error(`exited ${c}: ${stderr}`)));
      });
      assert.match(stderr, /resnet: det: detector fasterrcnn_resnet18_fpn from .*det\.safetensors \(torchvision checkpoint\), 91 classes, images resized to min side 32 \(max 48\)/);
      const r = await fetch(`${url}/v1/models/det/detect`, { method: 'POST', body: png });
      assert.equal(r.status, 200);
      assertSameDetections((await r.json()).detections, want[0], 0.5, 'CLI');
      const exited = new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
      child.kill('SIGTERM');
      assert.equal(await exited, 0, stderr);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});

describe('the page with a detector', () => {
  let browser: Browser;
  before(async () => {
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  });
  after(async () => { await browser?.close(); });

  test('an image dropped on the page draws the detector\'s boxes with labels and scores and lists them; no console errors', async () => {
    const api = (await post('/v1/models/det/detect', png)).json as { detections: Detection[] };
    assert.ok(api.detections.length > 0);
    const page = await browser.newPage({ viewport: { width: 900, height: 800 } });
    const { errors, external } = await watchPage(page, server.url);
    await page.goto(`${server.url}/`);
    await page.locator('#model option').first().waitFor({ state: 'attached' });
    // Keyboard: the model select, then the detector.
    await page.focus('#model');
    await page.selectOption('#model', 'det');
    assert.equal(await page.locator('#score').isVisible(), true, 'the score control shows for a detector');
    const dataTransfer = await page.evaluateHandle((b64) => {
      const dt = new DataTransfer();
      dt.items.add(new File([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], 'scene.png', { type: 'image/png' }));
      return dt;
    }, png.toString('base64'));
    const [res] = await Promise.all([page.waitForResponse((r) => r.url().includes('/detect')), page.locator('#drop').dispatchEvent('drop', { dataTransfer })]);
    assert.equal(res.status(), 200);
    await page.locator('#dets li').nth(api.detections.length - 1).waitFor();
    assert.equal(await page.locator('#dets li').count(), api.detections.length);
    assert.equal(await page.locator('#boxes rect').count(), api.detections.length);
    assert.deepEqual(await page.locator('#boxes text').allTextContents(), api.detections.map((d) => `${d.name} ${(100 * d.score).toFixed(0)}%`));
    assert.deepEqual(await page.locator('#dets li .label').allTextContents(), api.detections.map((d) => d.name));
    assert.equal(await page.locator('#boxes').getAttribute('viewBox'), '0 0 64 48');
    // The first box lies where the API puts it, over the shown image.
    const img = (await page.locator('#preview').boundingBox())!;
    const rect = (await page.locator('#boxes rect').first().boundingBox())!;
    const [x1, y1, x2] = api.detections[0].box;
    const sx = img.width / 64;
    assert.ok(Math.abs(rect.x - (img.x + x1 * sx)) < 3 && Math.abs(rect.y - (img.y + y1 * sx)) < 3 && Math.abs(rect.width - (x2 - x1) * sx) < 5, `rect ${JSON.stringify(rect)} vs box ${api.detections[0].box} over ${JSON.stringify(img)}`);
    assert.equal(await page.locator('#top').isVisible(), false, 'no top-5 for a detector');
    // At a phone's width nothing overflows sideways, and the boxes still cover the image.
    await page.setViewportSize({ width: 390, height: 844 });
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth), 'no sideways overflow at 390 px');
    const [phoneImg, phoneSvg] = [(await page.locator('#preview').boundingBox())!, (await page.locator('#boxes').boundingBox())!];
    assert.ok(Math.abs(phoneImg.width - phoneSvg.width) < 1 && Math.abs(phoneImg.height - phoneSvg.height) < 1, 'the overlay has the image\'s size');
    await page.setViewportSize({ width: 900, height: 800 });
    assert.match(await page.textContent('#status') ?? '', /\d+ detections? at score >= 0\.5; server [\d.]+ ms/);
    // Keyboard: Tab reaches a detection, which outlines its box.
    await page.locator('#dets li').first().focus();
    assert.equal(await page.locator('#boxes rect').first().getAttribute('class'), 'hot');
    // A lower score asks again and shows more.
    const all = (await post('/v1/models/det/detect?score=0', png)).json.detections.length;
    await Promise.all([page.waitForResponse((r) => r.url().includes('/detect?score=0')), page.locator('#score').fill('0').then(() => page.locator('#score').dispatchEvent('change'))]);
    await page.locator('#dets li').nth(all - 1).waitFor();
    assert.equal(await page.locator('#boxes rect').count(), all);
    // Back to the classifier: top-5 as before.
    await Promise.all([page.waitForResponse((r) => r.url().includes('/classify')), page.selectOption('#model', 'r20')]);
    await page.locator('#top li').nth(4).waitFor();
    assert.equal(await page.locator('#boxes rect').count(), 0);
    assert.equal(await page.locator('#dets').isVisible(), false);
    assert.deepEqual(errors, []);
    assert.deepEqual(external, []);
    await page.close();
  });
});

describe('a detector under --precision', () => {
  test("fp32 is reported; bf16 runs the detector's convolutions in bf16 (boxes near fp32's), or is a clear error where the CPU has no bf16", async () => {
    const fp32 = await (await fetch(`${server.url}/v2/models/det`)).json();
    assert.equal(fp32.parameters.precision, 'fp32');
    // Its own process: one process's native backend belongs to one engine thread.
    const child = spawn(process.execPath, [BIN, 'serve', '--model', `det=${ARCH}:${detWeights}`, '--min-size', String(RESIZE.minSize), '--max-size', String(RESIZE.maxSize),
      '--precision', 'bf16', '--port', '0', '--decode-threads', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => { stderr += d; });
    try {
      const url = await new Promise<string | null>((resolve) => {
        let out = '';
        child.stdout!.on('data', (d) => { out += d; const m = /serving det at (http:\/\/127\.0\.0\.1:\d+)/.exec(out); if (m) resolve(m[1]); });
        child.on('exit', () => resolve(null));
      });
      if (url === null) {
        // oneDNN 2.6 has no bf16 convolution without AVX-512 (the AVX2-only kind of machine).
        assert.match(stderr, /bf16/);
        assert.equal(stderr.trim().split('\n').length, 1, `one line: ${stderr}`);
        return;
      }
      assert.equal((await (await fetch(`${url}/v2/models/det`)).json()).parameters.precision, 'bf16');
      const res = await fetch(`${url}/v1/models/det/detect?score=0`, { method: 'POST', headers: { 'Content-Type': 'image/png' }, body: png });
      assert.equal(res.status, 200);
      const got = (await res.json()).detections as Detection[];
      // bf16 keeps 8 bits of mantissa: the same scene, the same strongest detection, close.
      assert.ok(got.length > 0);
      const best = want[0].scores.indexOf(Math.max(...want[0].scores));
      assert.equal(got[0].label, want[0].labels[best]);
      assert.ok(Math.abs(got[0].score - want[0].scores[best]) < 0.05, `bf16 top score ${got[0].score} vs fp32 ${want[0].scores[best]}`);
      got[0].box.forEach((v, j) => assert.ok(Math.abs(v - want[0].boxes[best][j]) < 2, `bf16 top box ${got[0].box} vs fp32 ${want[0].boxes[best]}`));
    } finally {
      child.kill('SIGKILL');
    }
  });
});
