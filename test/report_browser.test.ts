// The study pages in a real browser: Debian's chromium driven by playwright-core (never a
// downloaded browser). Every study's index.html and the combined report (its degradation
// section over two seeds, with bands and verdicts), at a laptop and a
// phone viewport: every plot renders with non-empty axes, series and legend, nothing
// overflows the page sideways, no console error, no request leaves file://. Screenshots
// of the report are kept in test-artifacts/.

import assert from 'node:assert/strict';
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { tempDir } from './helpers/data_files.js';
import { makeBandsIdx, tinyOptions } from './helpers/studies.js';
import { watchPage } from './helpers/browser.js';

process.env.RESNET_NUM_THREADS ??= '1';
const S = await import('../src/studies/index.js');

const ROOT = new URL('..', import.meta.url).pathname;
const ARTIFACTS = join(ROOT, 'test-artifacts');
const tmp = tempDir('resnet-report-');
const DATA = makeBandsIdx(join(tmp.dir, 'data'), 64, 32);
const VIEWPORTS = [{ name: 'laptop', width: 1280, height: 800 }, { name: 'phone', width: 390, height: 844 }];
const pages: { name: string; file: string; plots: number }[] = [];
let browser: Browser;

before(async () => {
  const deg = join(tmp.dir, 'degradation');
  const tiny = (out: string, extra: Partial<import('../src/studies/index.js').StudyOptions> = {}) => tinyOptions(DATA, out, { testSubset: 32, draws: 1, ...extra });
  await S.runStudy('degradation', tiny(deg, { archs: ['plain20', 'resnet20'], epochs: 2 }));
  pages.push({ name: 'degradation', file: join(deg, 'index.html'), plots: 3 });
  const ck = [join(deg, 'runs/resnet20'), join(deg, 'runs/plain20')];
  const more: [string, Partial<import('../src/studies/index.js').StudyOptions>, number][] = [
    ['lesion', { checkpoints: ck }, 2], ['paths', { checkpoints: [ck[0]] }, 3], ['responses', { checkpoints: ck }, 2], ['shortcuts', {}, 2],
  ];
  for (const [name, extra, plots] of more) {
    await S.runStudy(name, tiny(join(tmp.dir, name), extra));
    pages.push({ name, file: join(tmp.dir, name, 'index.html'), plots });
  }
  // A second seed of the degradation run, made up from the first (errors moved a little), so
  // the report draws a multi-seed section: mean lines, min–max bands, "± (min–max), 2 seeds".
  const seed2 = join(tmp.dir, 'degradation-seed2');
  cpSync(deg, seed2, { recursive: true });
  const doc = JSON.parse(readFileSync(join(seed2, 'results.json'), 'utf8'));
  doc.setup.seed = 2;
  doc.seeds = [2];
  delete doc.aggregate;
  delete doc.verdicts;
  for (const n of doc.results.nets) {
    for (const m of n.metrics) Object.assign(m, { train_err: m.train_err * 0.8, test_err: Math.min(1, m.test_err * 1.1) });
    n.final = { train_err: n.metrics.at(-1).train_err, test_err: n.metrics.at(-1).test_err };
  }
  writeFileSync(join(seed2, 'results.json'), JSON.stringify(doc));
  const report = join(tmp.dir, 'report.html');
  S.writeReport([...pages.map((p) => join(p.file, '..')), seed2], report);
  pages.push({ name: 'report', file: report, plots: pages.reduce((s, p) => s + p.plots, 0) });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  mkdirSync(ARTIFACTS, { recursive: true });
});

after(async () => {
  await browser?.close();
  tmp.remove();
});

// Runs in the page; a string, because tsx's helpers (__name) do not exist there.
const MEASURE = `[...document.querySelectorAll('figure svg.plot')].map((svg) => {
  const r = svg.getBoundingClientRect();
  const texts = (sel) => [...svg.querySelectorAll(sel)].map((t) => (t.textContent || '').trim()).filter(Boolean);
  const drawn = [...svg.querySelectorAll('.series path.line, .series rect, .series circle')].filter((e) => {
    const b = e.getBBox();
    if (e.tagName === 'rect') return b.height > 0;
    if (e.tagName === 'circle') return b.width > 0;
    return b.width > 0 || b.height > 0;
  }).length;
  return {
    width: r.width, height: r.height, xTicks: texts('.x-axis .tick'), yTicks: texts('.y-axis .tick'), axisLabels: texts('.axis-label'),
    series: svg.querySelectorAll('.series').length, drawn, legend: svg.querySelectorAll('.legend text').length, title: texts('.plot-title')[0] || '',
  };
})`;

interface PlotCheck { width: number; height: number; xTicks: string[]; yTicks: string[]; axisLabels: string[]; series: number; drawn: number; legend: number; title: string }

for (const vp of VIEWPORTS) {
  test(`every page renders its plots with axes, series and legends, offline and without errors (${vp.name} ${vp.width}x${vp.height})`, async () => {
    for (const p of pages) {
      const page = await browser.newPage({ viewport: { width: vp.width, height: vp.height } });
      const { errors, external } = await watchPage(page, 'file://');
      await page.goto(`file://${p.file}`);
      const plots = await page.evaluate(MEASURE) as PlotCheck[];
      assert.equal(plots.length, p.plots, `${p.name}: plots`);
      for (const [i, c] of plots.entries()) {
        const where = `${p.name} plot ${i + 1} (${c.title}) at ${vp.name}`;
        assert.ok(c.width > 200 && c.width <= vp.width && c.height > 120, `${where}: size ${c.width}x${c.height}`);
        assert.ok(c.xTicks.length >= 1 && c.yTicks.length >= 2, `${where}: ticks x ${c.xTicks.length}, y ${c.yTicks.length}`);
        assert.equal(c.axisLabels.length, 2, `${where}: axis labels`);
        assert.ok(c.series >= 1 && c.drawn >= 1, `${where}: ${c.series} series, ${c.drawn} drawn`);
        assert.ok(c.legend >= 1, `${where}: legend`);
      }
      const overflow = await page.evaluate('document.documentElement.scrollWidth - window.innerWidth') as number;
      assert.ok(overflow <= 0, `${p.name} at ${vp.name}: the page is ${overflow}px wider than the viewport`);
      assert.ok(await page.$('table'), `${p.name}: a table of the numbers`);
      assert.match(await page.textContent('pre') ?? '', /resnet study /, `${p.name}: the command`);
      if (p.name === 'report') {
        assert.match(await page.textContent('#degradation') ?? '', /2 seeds/, 'the two seeds of degradation are one section');
        assert.ok((await page.$$('#degradation .band')).length >= 2, 'the multi-seed plots draw bands');
      }
      assert.ok(await page.$('.verdicts li'), `${p.name}: the verdicts`);
      if (p.name === 'report') await page.screenshot({ path: join(ARTIFACTS, `report-${vp.name}.png`), fullPage: true });
      assert.deepEqual(errors, [], `${p.name}: console errors`);
      assert.deepEqual(external, [], `${p.name}: network requests`);
      await page.close();
    }
  });
}
