// Every study on a tiny configuration (256 12x12 images, 4 classes, one epoch, resnet20 and
// plain20): results well-formed and plausible (the binomial path distribution sums to 1 and
// peaks at n/2; deleting no block gives the checkpoint's own error; options A < B < C in
// parameters), the files each study writes, and the bad input: unknown study, earlier
// results kept unless --force, a failed run leaves them intact, wrong checkpoints.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { makeBandsIdx, tinyOptions } from './helpers/studies.js';
import { tempDir } from './helpers/data_files.js';

process.env.RESNET_NUM_THREADS ??= '1';
const { CheckpointError, InvalidArgumentError } = await import('../src/errors.js');
const S = await import('../src/studies/index.js');
const { evaluateCheckpoint, readMetrics } = await import('../src/train/index.js');
const { writeSafetensors } = await import('../src/io/safetensors.js');

const ROOT = new URL('..', import.meta.url).pathname;
const CLI = join(ROOT, 'src/cli/main.ts');
const tmp = tempDir('resnet-studies-');
after(() => tmp.remove());
const DATA = makeBandsIdx(join(tmp.dir, 'data'));
const DEG = join(tmp.dir, 'degradation');

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, RESNET_NUM_THREADS: '1' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function assertStudyFiles(dir: string, figures: string[]): void {
  for (const f of ['results.json', 'index.html', ...figures.flatMap((x) => [`${x}.svg`, `${x}.png`])]) assert.ok(existsSync(join(dir, f)), `${dir}/${f} missing`);
  for (const f of figures) {
    const png = readFileSync(join(dir, `${f}.png`));
    assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], `${f}.png is a PNG`);
    assert.match(readFileSync(join(dir, `${f}.svg`), 'utf8'), /^<svg [^>]*viewBox="0 0 \d+ \d+"[\s\S]*class="axis x-axis"[\s\S]*<\/svg>\n$/);
  }
  const html = readFileSync(join(dir, 'index.html'), 'utf8');
  assert.match(html, /^<!doctype html>/);
  assert.doesNotMatch(html, /<script|https?:\/\/(?!www\.w3\.org\/2000\/svg)/, 'no script, no network');
  assert.equal((html.match(/<svg /g) ?? []).length, figures.length);
  assert.match(html, /resnet study /, 'the command is on the page');
  assert.deepEqual(readdirSync(join(dir, '..')).filter((f) => f.endsWith('.partial')), [], 'no work directory left');
}

test('degradation: one epoch of plain20 and resnet20, per-epoch errors, runs kept for the other studies', async () => {
  const r = await S.runStudy('degradation', tinyOptions(DATA, DEG, { archs: ['plain20', 'resnet20'] }));
  const res = r.document.results as import('../src/studies/index.js').DegradationResults;
  assert.equal(r.document.study, 'degradation');
  assert.deepEqual(res.nets.map((n) => [n.arch, n.plain, n.depth]), [['plain20', true, 20], ['resnet20', false, 20]]);
  for (const n of res.nets) {
    assert.equal(n.metrics.length, 1);
    for (const v of [n.final.train_err, n.final.test_err]) assert.ok(v >= 0 && v <= 1, `${n.arch} error ${v}`);
    assert.equal(n.final.test_err, readMetrics(join(DEG, n.runDir, 'metrics.jsonl'))[0].test_err);
    assert.ok(n.secondsPerEpoch > 0);
  }
  assert.equal(res.nets[0].params, res.nets[1].params, 'option A adds no parameters to plain20');
  assert.equal(res.plain, null, 'one depth per family: no verdict');
  assertStudyFiles(DEG, ['errors-plain', 'errors-residual', 'final']);
  assert.equal(JSON.parse(readFileSync(join(DEG, 'results.json'), 'utf8')).results.nets.length, 2);
});

test('lesion: deleting no block gives the checkpoint\'s own error; single and random deletions are well-formed', async () => {
  const out = join(tmp.dir, 'lesion');
  const ckpts = [join(DEG, 'runs/resnet20'), join(DEG, 'runs/plain20')];
  const r = await S.runStudy('lesion', tinyOptions(DATA, out, { checkpoints: ckpts }));
  const res = r.document.results as import('../src/studies/index.js').LesionResults;
  assert.deepEqual(res.nets.map((n) => n.label), ['resnet20', 'plain20']);
  for (const [i, n] of res.nets.entries()) {
    const own = await evaluateCheckpoint(ckpts[i], { subset: 96, workers: 0 });
    assert.equal(Math.round(n.baseline * 96), Math.round((1 - own.top1) * 96), `${n.label}: no deletion = resnet eval's error`);
    assert.ok(Math.abs(n.baseline - (1 - own.top1)) < 1e-12);
    assert.equal(n.testImages, 96);
    assert.equal(n.blocks.length, 9);
    const removable = n.blocks.filter((b) => b.removable).length;
    assert.equal(removable, n.label === 'resnet20' ? 9 : 7);
    assert.deepEqual(n.random.map((p) => p.k), Array.from({ length: removable }, (_, j) => j + 1));
    for (const p of n.random) assert.ok(p.min <= p.mean && p.mean <= p.max && p.max <= 1 && p.draws === (p.k === removable ? 1 : 2));
    for (const b of n.blocks) {
      assert.equal(b.downsampling, b.name === 'layer2.0' || b.name === 'layer3.0');
      if (n.label === 'plain20' && b.downsampling) assert.equal(b.error, null);
      else assert.ok(b.error !== null && b.error >= 0 && b.error <= 1);
    }
  }
  assert.equal(res.pairs.length <= 1, true);
  assertStudyFiles(out, ['single', 'random']);
});

test('paths: the binomial distribution sums to 1 and peaks at n/2; gradient shares sum to 1', async () => {
  for (const n of [9, 10, 27, 54]) {
    const d = S.pathLengthDistribution(n);
    assert.ok(Math.abs(d.reduce((s, v) => s + v, 0) - 1) < 1e-12);
    const peak = d.indexOf(Math.max(...d));
    assert.ok(peak === Math.floor(n / 2) || peak === Math.ceil(n / 2), `n=${n}: peak at ${peak}`);
    d.forEach((v, k) => assert.ok(Math.abs(v - d[n - k]) <= 1e-12 * v, 'symmetric'));
  }
  const out = join(tmp.dir, 'paths');
  const r = await S.runStudy('paths', tinyOptions(DATA, out, { checkpoints: [join(DEG, 'runs/resnet20')] }));
  const [p] = (r.document.results as import('../src/studies/index.js').PathsResults).nets;
  assert.equal(p.blocks, 9);
  assert.deepEqual(p.lengths.map((l) => l.k), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.ok(Math.abs(p.lengths.reduce((s, l) => s + l.pathShare, 0) - 1) < 1e-12);
  assert.ok(Math.abs(p.lengths.reduce((s, l) => s + l.gradShare, 0) - 1) < 1e-9);
  assert.ok(Math.abs(p.lengths[9].cumulative - 1) < 1e-9);
  for (const l of p.lengths) assert.ok(Number.isFinite(l.grad) && l.grad > 0 && l.gradMin <= l.grad && l.grad <= l.gradMax);
  assert.ok(p.halfGradientBelow <= p.gradient90Below && p.gradient90Below <= 9);
  assertStudyFiles(out, ['distribution', 'gradient', 'total']);
  await assert.rejects(S.runStudy('paths', tinyOptions(DATA, join(tmp.dir, 'paths-plain'), { checkpoints: [join(DEG, 'runs/plain20')] })),
    (e: Error) => e instanceof InvalidArgumentError && /plain20, a plain net/.test(e.message) && e.message.includes(join(DEG, 'runs/plain20')));
  assert.ok(!existsSync(join(tmp.dir, 'paths-plain')));
});

test('responses: the 19 3x3 layers of each 20-layer net, in order, with a positive std', async () => {
  const out = join(tmp.dir, 'responses');
  const r = await S.runStudy('responses', tinyOptions(DATA, out, { checkpoints: [join(DEG, 'runs/plain20'), join(DEG, 'runs/resnet20')] }));
  const res = r.document.results as import('../src/studies/index.js').ResponsesResults;
  for (const n of res.nets) {
    assert.equal(n.layers.length, 19);
    assert.equal(n.layers[0].name, 'bn1');
    assert.equal(n.layers[18].name, 'layer3.2.bn2');
    for (const l of n.layers) assert.ok(Number.isFinite(l.std) && l.std > 0);
  }
  assert.deepEqual(res.pairs.map((p) => [p.depth, p.residual, p.plain]), [[20, 'resnet20', 'plain20']]);
  assertStudyFiles(out, ['std-by-layer', 'std-sorted']);
});

test('shortcuts: options A, B, C of resnet20; parameters A < B < C', async () => {
  const out = join(tmp.dir, 'shortcuts');
  const r = await S.runStudy('shortcuts', tinyOptions(DATA, out, { subset: 128 }));
  const res = r.document.results as import('../src/studies/index.js').ShortcutsResults;
  assert.deepEqual(res.options.map((o) => o.option), ['A', 'B', 'C']);
  const [a, b, c] = res.options.map((o) => o.params);
  assert.ok(a < b && b < c, `params ${a}, ${b}, ${c}`);
  for (const o of res.options) assert.ok(o.final.test_err >= 0 && o.final.test_err <= 1);
  assertStudyFiles(out, ['errors', 'curves']);
});

test('report: several study directories on one page, redrawn from results.json', () => {
  const file = join(tmp.dir, 'report.html');
  const r = S.writeReport([DEG, join(tmp.dir, 'lesion'), DEG], file);
  assert.deepEqual(r.studies, ['degradation', 'lesion', 'degradation']);
  const html = readFileSync(file, 'utf8');
  assert.equal((html.match(/<svg /g) ?? []).length, 3 + 2 + 3);
  assert.match(html, /id="degradation-2"/, 'a study twice gets distinct anchors');
  assert.throws(() => S.writeReport([join(tmp.dir, 'data')], file), (e: Error) => /results\.json: no such file/.test(e.message));
});

test('bad input: unknown study, earlier results kept unless --force, failed runs leave them intact, wrong checkpoints', async () => {
  await assert.rejects(S.runStudy('nope', tinyOptions(DATA, join(tmp.dir, 'x'))),
    (e: Error) => e instanceof InvalidArgumentError && /unknown study 'nope'; valid: degradation, shortcuts, lesion, paths, responses/.test(e.message));
  const before = readFileSync(join(DEG, 'results.json'), 'utf8');
  await assert.rejects(S.runStudy('degradation', tinyOptions(DATA, DEG, { archs: ['plain20', 'resnet20'] })),
    (e: Error) => e instanceof InvalidArgumentError && e.message.startsWith(`${DEG}: holds earlier results`) && /--force/.test(e.message));
  assert.equal(readFileSync(join(DEG, 'results.json'), 'utf8'), before);

  // Wrong checkpoints: missing, not a checkpoint at all, plain weights without training metadata.
  const bad = join(tmp.dir, 'bad');
  mkdirSync(bad);
  const garbage = join(bad, 'garbage.safetensors');
  writeFileSync(garbage, 'not a checkpoint');
  const weights = join(bad, 'weights.safetensors');
  writeSafetensors(weights, [['fc.weight', { data: new Float32Array(4), shape: [2, 2] }]], {});
  for (const f of [join(bad, 'missing.safetensors'), garbage, weights]) {
    // --force over earlier results: the failure leaves them intact.
    await assert.rejects(S.runStudy('lesion', tinyOptions(DATA, DEG, { checkpoints: [f], force: true })),
      (e: Error) => e instanceof CheckpointError && e.message.includes(f), f);
    assert.equal(readFileSync(join(DEG, 'results.json'), 'utf8'), before);
    assert.ok(existsSync(join(DEG, 'runs/resnet20/best.safetensors')));
  }
  assert.deepEqual(readdirSync(tmp.dir).filter((f) => f.endsWith('.partial') || f.includes('.old-')), []);
  await assert.rejects(S.runStudy('degradation', tinyOptions(DATA, join(tmp.dir, 'y'), { checkpoints: [weights] })), /takes no --checkpoint/);
  await assert.rejects(S.runStudy('shortcuts', tinyOptions(DATA, join(tmp.dir, 'y'), { archs: ['plain20'] })), /plain net without shortcuts/);
  await assert.rejects(S.runStudy('degradation', tinyOptions(DATA, join(tmp.dir, 'y'), { archs: ['resnet21', 'resnet20'] })), /unknown arch 'resnet21'/);
});

test('--resume: an interrupted study keeps its nets\' checkpoints and continues them; a different recipe is refused', async () => {
  const out = join(tmp.dir, 'resume');
  const opts = { archs: ['plain20', 'resnet20'], epochs: 2 };
  const ac = new AbortController();
  let steps = 0;
  await assert.rejects(S.runStudy('degradation', tinyOptions(DATA, out, {
    ...opts, signal: ac.signal, onTrainProgress: (label, e) => { if (label === 'resnet20' && e.type === 'step' && ++steps === 10) ac.abort(); },
  })), (e: Error) => e instanceof S.StudyInterrupted && e.message.includes('--resume'));
  const work = S.partialDir(out);
  assert.ok(!existsSync(out), 'nothing in --out until the study is complete');
  assert.ok(existsSync(join(work, 'runs/plain20/last.safetensors')) && existsSync(join(work, 'runs/resnet20/last.safetensors')));
  const plain = readFileSync(join(work, 'runs/plain20/metrics.jsonl'), 'utf8');

  // Neither a fresh start nor another recipe may take the interrupted work.
  await assert.rejects(S.runStudy('degradation', tinyOptions(DATA, out, opts)),
    (e: Error) => e instanceof InvalidArgumentError && e.message.startsWith(`${work}: holds the work of an interrupted study`) && /--resume/.test(e.message));
  await assert.rejects(S.runStudy('degradation', tinyOptions(DATA, out, { ...opts, epochs: 3, resume: true })),
    (e: Error) => e instanceof InvalidArgumentError && /these differ: epochs 2 \(now 3\)/.test(e.message));
  assert.ok(existsSync(join(work, 'runs/resnet20/last.safetensors')), 'a refused resume keeps the work');

  const r = await S.runStudy('degradation', tinyOptions(DATA, out, { ...opts, resume: true }));
  const res = r.document.results as import('../src/studies/index.js').DegradationResults;
  assert.deepEqual(res.nets.map((n) => n.metrics.map((m) => m.epoch)), [[1, 2], [1, 2]], 'both nets finished both epochs');
  assert.equal(readFileSync(join(out, 'runs/plain20/metrics.jsonl'), 'utf8'), plain, 'the finished net was read back, not retrained');
  assert.doesNotMatch(r.document.command, /--resume/);
  assert.ok(!existsSync(work) && !existsSync(join(out, 'study.json')));
  assertStudyFiles(out, ['errors-plain', 'errors-residual', 'final']);
});

test('--force replaces earlier results', async () => {
  const out = join(tmp.dir, 'force');
  mkdirSync(out);
  writeFileSync(join(out, 'old.txt'), 'old');
  await S.runStudy('paths', tinyOptions(DATA, out, { checkpoints: [join(DEG, 'runs/resnet20')], draws: 1, force: true }));
  assert.ok(!existsSync(join(out, 'old.txt')));
  assert.ok(existsSync(join(out, 'results.json')));
});

test('CLI: the recipe flags of resnet train also set the recipe of the nets a study trains', () => {
  const out = join(tmp.dir, 'cli-recipe');
  const r = cli(['study', 'degradation', '--archs', 'plain20,resnet20', '--data', DATA, '--epochs', '1', '--test-subset', '32', '--seed', '1',
    '--batch-size', '32', '--lr', '0.05', '--wd', '0', '--warmup', '1', '--aug', 'none', '--nesterov', '--workers', '1', '--out', out, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const setup = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')).setup as Record<string, unknown>;
  assert.deepEqual({ batchSize: setup.batchSize, lr: setup.lr, weightDecay: setup.weightDecay, warmup: setup.warmup, aug: setup.aug, nesterov: setup.nesterov },
    { batchSize: 32, lr: 0.05, weightDecay: 0, warmup: 1, aug: 'none', nesterov: true });
  const run = JSON.parse(readFileSync(join(out, 'runs/resnet20/config.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(run.warmup, 1, 'the trained run got the recipe');
  const bad = cli(['study', 'degradation', '--lr', 'fast', '--out', join(tmp.dir, 'z')]);
  assert.equal(bad.status, 1);
  assert.equal(bad.stderr, "resnet: --lr must be a number, got 'fast'\n");
  assert.ok(!existsSync(join(tmp.dir, 'z')));
});

test('CLI: resnet study and resnet report; bad input is one line on stderr, exit 1, no stack trace', () => {
  const unknown = cli(['study', 'nope', '--out', join(tmp.dir, 'z')]);
  assert.equal(unknown.status, 1);
  assert.equal(unknown.stderr, "resnet: unknown study 'nope'; valid: degradation, shortcuts, lesion, paths, responses\n");
  const kept = cli(['study', 'lesion', '--checkpoint', join(DEG, 'runs/resnet20'), '--out', DEG]);
  assert.equal(kept.status, 1);
  assert.match(kept.stderr, /^resnet: .*holds earlier results .*--force/);
  const garbage = join(tmp.dir, 'bad', 'garbage.safetensors');
  const wrong = cli(['study', 'lesion', '--checkpoint', garbage, '--out', join(tmp.dir, 'z')]);
  assert.equal(wrong.status, 1);
  assert.ok(wrong.stderr.startsWith('resnet: ') && wrong.stderr.includes(garbage) && !/\n\s+at /.test(wrong.stderr), wrong.stderr);
  assert.ok(!existsSync(join(tmp.dir, 'z')));
  const out = join(tmp.dir, 'cli-responses');
  const ok = cli(['study', 'responses', '--checkpoint', join(DEG, 'runs/resnet20'), '--test-subset', '32', '--out', out, '--json']);
  assert.equal(ok.status, 0, ok.stderr);
  const j = JSON.parse(ok.stdout.trim().split('\n').pop() as string) as { study: string; out: string; files: string[] };
  assert.equal(j.study, 'responses');
  assert.ok(j.files.includes('index.html'));
  assert.match(readFileSync(join(out, 'index.html'), 'utf8'), /resnet study responses --checkpoint \S+resnet20 --test-subset 32 --out \S+ --json/);
  const rep = cli(['report', DEG, out, '--out', join(tmp.dir, 'r.html')]);
  assert.equal(rep.status, 0, rep.stderr);
  assert.ok(existsSync(join(tmp.dir, 'r.html')));
});
