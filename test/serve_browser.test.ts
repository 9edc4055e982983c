// The page of `resnet serve` in a real browser (Debian's chromium via playwright-core, as
// test/report_browser.test.ts): at a laptop and a phone width, an image chosen with the
// keyboard (Enter on the drop zone opens the file chooser) and one dropped in show the
// server's top-5 (the same as /v1 classify) with bars and the time taken; no console error,
// no request outside the server, nothing overflows sideways.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import sharp from 'sharp';
import { setBackend } from '../src/backend/index.js';
import { saveWeights } from '../src/io/weights.js';
import { createModel } from '../src/models/index.js';
import { startServer, type RunningServer } from '../src/serve/server.js';
import { watchPage } from './helpers/browser.js';

const VIEWPORTS = [{ name: 'laptop', width: 1280, height: 800 }, { name: 'phone', width: 390, height: 844 }];
const LABELS = Array.from({ length: 10 }, (_, i) => `class number ${i}`);
let dir: string;
let server: RunningServer;
let browser: Browser;
let png: Buffer;

before(async () => {
  setBackend('reference'); // the native backend belongs to the server's engine thread
  dir = mkdtempSync(join(tmpdir(), 'resnet-serve-page-'));
  const weights = join(dir, 'r20.safetensors');
  const m = createModel('resnet20', { numClasses: 10, seed: 5 });
  saveWeights(weights, m.stateDict(), { arch: 'resnet20', labels: LABELS, inputSize: [32, 32] });
  m.dispose();
  const px = Buffer.alloc(40 * 30 * 3);
  for (let i = 0; i < px.length; i++) px[i] = (i * 37) % 251;
  png = await sharp(px, { raw: { width: 40, height: 30, channels: 3 } }).png().toBuffer();
  server = await startServer({ models: [{ name: 'r20', options: { weights } }], port: 0, precision: 'fp32', decodeThreads: 1 });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream'] });
});

after(async () => {
  await browser?.close();
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

for (const vp of VIEWPORTS) {
  test(`the page classifies a chosen and a dropped image, offline and without errors (${vp.name})`, async () => {
    const want = await (await fetch(`${server.url}/v1/models/r20/classify?top=5`, { method: 'POST', body: png })).json();
    const page = await browser.newPage({ viewport: { width: vp.width, height: vp.height } });
    const { errors, external } = await watchPage(page, server.url);
    // Listening before the page loads: file chooser interception is switched on asynchronously.
    const chooserP = page.waitForEvent('filechooser', { timeout: 60000 });
    await page.goto(`${server.url}/`);
    // Locators and function arguments only: the page's CSP forbids string evaluation.
    await page.locator('#model option').first().waitFor({ state: 'attached' });
    // Keyboard: focus the drop zone, Enter opens the file chooser.
    await page.focus('#drop');
    await page.keyboard.press('Enter');
    const chooser = await chooserP;
    await chooser.setFiles({ name: 'a.png', mimeType: 'image/png', buffer: png });
    await page.locator('#top li').nth(4).waitFor();
    assert.deepEqual(await page.locator('#top li .label').allTextContents(), want.top.map((t: { label: string }) => t.label));
    assert.equal(await page.locator('#top li .prob').first().textContent(), `${(100 * want.top[0].prob).toFixed(1)}%`);
    assert.ok(((await page.locator('#top li .fill').first().boundingBox())?.width ?? 0) > 0, 'the first bar is drawn');
    assert.match(await page.textContent('#status') ?? '', /server [\d.]+ ms \(decode/);
    assert.equal(await page.locator('#preview').evaluate((img) => (img as HTMLImageElement).naturalWidth), 40, 'the image is shown');
    // Drop: a DataTransfer holding the same image, dropped on the zone.
    const dataTransfer = await page.evaluateHandle((b64) => {
      const dt = new DataTransfer();
      dt.items.add(new File([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], 'b.png', { type: 'image/png' }));
      return dt;
    }, png.toString('base64'));
    const [res] = await Promise.all([page.waitForResponse((r) => r.url().includes('/classify')), page.locator('#drop').dispatchEvent('drop', { dataTransfer })]);
    assert.equal(res.status(), 200);
    await page.locator('#top li').nth(4).waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `the page overflows sideways by ${overflow}px`);
    assert.deepEqual(errors, []);
    assert.deepEqual(external, []);
    await page.close();
  });
}

test('the camera: a frame from it is classified, and the camera stops on the second click', async () => {
  // Chromium's fake camera (a moving test pattern) stands in for a real one.
  const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
  const { errors, external } = await watchPage(page, server.url);
  await page.goto(`${server.url}/`);
  await page.locator('#model option').first().waitFor({ state: 'attached' });
  await page.locator('#camera').click();
  await page.locator('#capture').waitFor({ state: 'visible' });
  await page.waitForFunction(() => (document.getElementById('video') as HTMLVideoElement).videoWidth > 0);
  const [res] = await Promise.all([page.waitForResponse((r) => r.url().includes('/classify')), page.locator('#capture').click()]);
  assert.equal(res.status(), 200);
  await page.locator('#top li').nth(4).waitFor();
  assert.equal(await page.locator('#preview').evaluate((img) => (img as HTMLImageElement).naturalWidth > 0), true, 'the frame sent is shown');
  await page.locator('#camera').click();
  await page.locator('#video').waitFor({ state: 'hidden' });
  assert.equal(await page.locator('#capture').isVisible(), false);
  assert.deepEqual(errors, []);
  assert.deepEqual(external, []);
  await page.close();
});
