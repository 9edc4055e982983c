// Seeds as a dimension of a study, on the tiny configuration (256 12x12 images, one epoch):
// `seeds: [0, 1]` trains one run per seed into runs/<net>/seed<S> and results.json holds every
// seed's numbers, the aggregate (mean, min, max, 95% interval checked against them) and the
// verdicts (their counts checked against the per-seed numbers); a multi-seed study stopped in
// its second seed resumes without touching the first seed's runs; a multi-seed net directory
// as --checkpoint runs once per seed; `resnet report` of two single-seed directories equals
// aggregating them and refuses recipes that differ in more than the seed. Also the statistics
// themselves (Student t) and the effective window of path lengths.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { makeBandsIdx, tinyOptions } from './helpers/studies.js';
import { tempDir } from './helpers/data_files.js';

process.env.RESNET_NUM_THREADS ??= '1';
const { InvalidArgumentError } = await import('../src/errors.js');
const S = await import('../src/studies/index.js');
const { seedStat, t975, verdict } = await import('../src/studies/seeds.js');
const { effectiveWindow } = await import('../src/studies/paths.js');
type DegradationResults = import('../src/studies/index.js').DegradationResults;
type TrainedAggregate = import('../src/studies/seeds.js').TrainedAggregate;

const ROOT = new URL('..', import.meta.url).pathname;
const CLI = join(ROOT, 'src/cli/main.ts');
const tmp = tempDir('resnet-seeds-');
after(() => tmp.remove());
const DATA = makeBandsIdx(join(tmp.dir, 'data'));
const MULTI = join(tmp.dir, 'multi');
const mean = (v: number[]): number => v.reduce((s, x) => s + x, 0) / v.length;

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, RESNET_NUM_THREADS: '1' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('statistics: mean, min, max and the Student-t 95% interval; verdicts count seeds; the effective window', () => {
  const s = seedStat([1, 2, 3]);
  assert.deepEqual([s.n, s.mean, s.min, s.max], [3, 2, 1, 3]);
  // sd = 1, t(0.975, 2) = 4.303: 2 ± 4.303 / sqrt(3).
  assert.ok(Math.abs(s.ci95![0] - (2 - 4.303 / Math.sqrt(3))) < 1e-12 && Math.abs(s.ci95![1] - (2 + 4.303 / Math.sqrt(3))) < 1e-12);
  assert.equal(seedStat([0.5]).ci95, null, 'no interval on one seed');
  assert.ok(Math.abs(t975(40) - 2.021) < 1e-3 && Math.abs(t975(120) - 1.980) < 1e-3 && t975(1) === 12.706);
  const v = verdict('claim', 'resnet56 below resnet20', [true, false, true]);
  assert.deepEqual([v.support, v.n, v.status], [2, 3, 'mixed']);
  assert.match(v.text, /^resnet56 below resnet20 in 2 of 3 seeds/);
  assert.match(verdict('claim', 'x', [true]).text, /in 1 of 1 seed: holds \(this rests on one seed\)/);
  assert.equal(verdict('claim', 'x', [null, null]).status, 'open');
  // Veit et al.'s reading: the fewest consecutive lengths that carry 90%.
  assert.deepEqual(effectiveWindow([0.05, 0.5, 0.4, 0.05]), { from: 1, to: 2, share: 0.9 });
  assert.deepEqual(effectiveWindow([0.3, 0.1, 0.1, 0.5], 0.5), { from: 3, to: 3, share: 0.5 });
});

test('--seeds 0,1: one run per seed, every seed\'s numbers and the aggregate in results.json; stopped in seed 1, --resume retrains only seed 1', async () => {
  const opts = { archs: ['resnet20', 'resnet32'], seeds: [0, 1], seed: undefined, testSubset: 32 };
  await assert.rejects(S.runStudy('degradation', tinyOptions(DATA, join(tmp.dir, 'both'), { ...opts, seed: 1 })),
    (e: Error) => e instanceof InvalidArgumentError && /--seed S \(one seed\) or --seeds/.test(e.message));
  await assert.rejects(S.runStudy('degradation', tinyOptions(DATA, join(tmp.dir, 'dup'), { ...opts, seeds: [1, 1] })), /names seed 1 twice/);
  assert.ok(!existsSync(join(tmp.dir, 'both')) && !existsSync(S.partialDir(join(tmp.dir, 'both'))));

  // Stop the study in seed 1's first net.
  const ac = new AbortController();
  let steps = 0;
  await assert.rejects(S.runStudy('degradation', tinyOptions(DATA, MULTI, {
    ...opts, signal: ac.signal, onTrainProgress: (label, e) => { if (label === 'resnet20 seed 1' && e.type === 'step' && ++steps === 3) ac.abort(); },
  })), (e: Error) => e instanceof S.StudyInterrupted && e.message.includes('resnet20 seed 1') && e.message.includes('--resume'));
  const work = S.partialDir(MULTI);
  const seed0 = ['resnet20', 'resnet32'].flatMap((a) => ['metrics.jsonl', 'last.safetensors', 'best.safetensors'].map((f) => join('runs', a, 'seed0', f)));
  const before = new Map(seed0.map((f) => [f, { mtime: statSync(join(work, f)).mtimeMs, text: readFileSync(join(work, f)).toString('base64') }]));
  assert.ok(!existsSync(join(work, 'runs/resnet32/seed1')), 'seed 1\'s second net not started');

  await assert.rejects(S.runStudy('degradation', tinyOptions(DATA, MULTI, { ...opts, seeds: [0, 2], resume: true })),
    (e: Error) => e instanceof InvalidArgumentError && /these differ: seeds \[0,1\] \(now \[0,2\]\)/.test(e.message));
  const trained = new Set<string>();
  const r = await S.runStudy('degradation', tinyOptions(DATA, MULTI, { ...opts, resume: true, onTrainProgress: (label, e) => { if (e.type === 'step') trained.add(label); } }));
  assert.deepEqual([...trained].sort(), ['resnet20 seed 1', 'resnet32 seed 1'], 'only seed 1 trains on --resume');
  for (const [f, b] of before) {
    assert.equal(statSync(join(MULTI, f)).mtimeMs, b.mtime, `${f} untouched`);
    assert.equal(readFileSync(join(MULTI, f)).toString('base64'), b.text, `${f} unchanged`);
  }

  const doc = JSON.parse(readFileSync(join(MULTI, 'results.json'), 'utf8')) as import('../src/studies/index.js').StudyDocument<DegradationResults>;
  assert.deepEqual(doc.seeds, [0, 1]);
  assert.deepEqual(doc.setup.seeds, [0, 1]);
  assert.equal(doc.setup.seed, undefined);
  assert.equal(doc.bySeed!.length, 2);
  assert.deepEqual(doc.bySeed![0].results, doc.results, 'results is the first seed\'s');
  assert.deepEqual(r.document.seeds, [0, 1]);
  for (const { seed, results } of doc.bySeed!) {
    for (const n of results.nets) {
      assert.equal(n.runDir, `runs/${n.arch}/seed${seed}`);
      const cfg = JSON.parse(readFileSync(join(MULTI, n.runDir, 'config.json'), 'utf8')) as { seed: number };
      assert.equal(cfg.seed, seed, `${n.runDir} trained with its seed`);
    }
  }
  // The aggregate against the per-seed numbers.
  const agg = (doc.aggregate as { nets: TrainedAggregate[] }).nets;
  assert.deepEqual(agg.map((a) => [a.label, a.n]), [['resnet20', 2], ['resnet32', 2]]);
  for (const a of agg) {
    const per = doc.bySeed!.map((s) => s.results.nets.find((n) => n.label === a.label)!);
    for (const k of ['train_err', 'test_err'] as const) {
      const v = per.map((n) => n.final[k]);
      assert.deepEqual(a.final[k].values, v);
      assert.ok(Math.abs(a.final[k].mean - mean(v)) < 1e-15);
      assert.equal(a.final[k].min, Math.min(...v));
      assert.equal(a.final[k].max, Math.max(...v));
      const half = (12.706 * Math.abs(v[0] - v[1]) / Math.SQRT2) / Math.SQRT2;
      assert.ok(Math.abs(a.final[k].ci95![1] - a.final[k].mean - half) < 1e-12, `${a.label} ${k}: 95% interval, t(0.975, 1) = 12.706`);
      assert.deepEqual(a.epochs[0][k].values, per.map((n) => n.metrics[0][k]));
    }
  }
  // The verdict counts the seeds where resnet32 ends below resnet20.
  const wins = doc.bySeed!.filter((s) => s.results.nets[1].final.train_err < s.results.nets[0].final.train_err).length;
  const v = doc.verdicts!.find((x) => x.text.startsWith('resnet32 below resnet20'))!;
  assert.deepEqual([v.support, v.n], [wins, 2]);
  assert.match(v.text, new RegExp(`in ${wins} of 2 seeds`));
  assert.equal(doc.verdicts![0].status, 'open', 'no plain nets: the plain claim cannot be tested');

  const html = readFileSync(join(MULTI, 'index.html'), 'utf8');
  assert.match(html, /class="verdicts"/);
  assert.match(html, /in \d of 2 seeds/);
  assert.match(html, /± [\d.]+% \([\d.]+%–[\d.]+%\), 2 seeds/, 'tables show mean ± half-interval (min–max), n seeds');
  assert.match(readFileSync(join(MULTI, 'errors-residual.svg'), 'utf8'), /class="band"/, 'the plot draws the min–max band');
  assert.match(html, /--seeds 0,1/);
});

test('a multi-seed net directory as --checkpoint: lesion, paths and responses run once per seed; mixed or with --seeds is refused', async () => {
  const out = join(tmp.dir, 'lesion');
  const r = await S.runStudy('lesion', tinyOptions(DATA, out, { seed: undefined, testSubset: 32, draws: 1, checkpoints: [join(MULTI, 'runs/resnet20'), join(MULTI, 'runs/resnet32')] }));
  assert.deepEqual(r.document.seeds, [0, 1]);
  const runs = r.document.bySeed as { seed: number; results: import('../src/studies/index.js').LesionResults }[];
  assert.deepEqual(runs.map((x) => x.results.nets.map((n) => n.file)), [0, 1].map((s) => ['resnet20', 'resnet32'].map((a) => join(MULTI, 'runs', a, `seed${s}`, 'best.safetensors'))));
  const agg = r.document.aggregate as { nets: { label: string; baseline: { values: number[] } }[] };
  assert.deepEqual(agg.nets[0].baseline.values, runs.map((x) => x.results.nets[0].baseline));
  assert.match(readFileSync(join(out, 'index.html'), 'utf8'), /\(seeds 0, 1\)/);

  // paths and responses over the same two seeds: every seed's numbers, the aggregate, the verdicts.
  const ck = [join(MULTI, 'runs/resnet20'), join(MULTI, 'runs/resnet32')];
  const p = await S.runStudy('paths', tinyOptions(DATA, join(tmp.dir, 'paths'), { seed: undefined, testSubset: 32, draws: 1, checkpoints: ck }));
  const pr = p.document.bySeed as { results: import('../src/studies/index.js').PathsResults }[];
  for (const x of pr) {
    for (const n of x.results.nets) {
      const e = n.effective!;
      const share = n.lengths.slice(e.from, e.to + 1).reduce((t, l) => t + l.gradShare, 0);
      assert.ok(Math.abs(share - e.share) < 1e-9 && share >= 0.9 - 1e-9, `${n.label}: the window carries 90%`);
    }
  }
  const pagg = (p.document.aggregate as { nets: { label: string; effectiveTo: { values: number[] } }[] }).nets;
  assert.deepEqual(pagg[1].effectiveTo.values, pr.map((x) => x.results.nets[1].effective!.to));
  const pv = p.document.verdicts!.find((v) => v.text.startsWith('resnet32: effective lengths end below 7.5'))!;
  assert.equal(pv.support, pr.filter((x) => x.results.nets[1].effective!.to < 7.5).length);
  assert.match(readFileSync(join(tmp.dir, 'paths', 'total.svg'), 'utf8'), /class="band"/);
  const q = await S.runStudy('responses', tinyOptions(DATA, join(tmp.dir, 'responses'), { seed: undefined, testSubset: 32, checkpoints: ck }));
  const qr = q.document.bySeed as { results: import('../src/studies/index.js').ResponsesResults }[];
  const qv = q.document.verdicts!.find((v) => v.text.startsWith('resnet32 below resnet20 in mean response std'))!;
  assert.deepEqual([qv.support, qv.n], [qr.filter((x) => x.results.nets[1].meanStd < x.results.nets[0].meanStd).length, 2]);
  const qagg = (q.document.aggregate as { nets: { meanStd: { mean: number } }[] }).nets;
  assert.ok(Math.abs(qagg[0].meanStd.mean - mean(qr.map((x) => x.results.nets[0].meanStd))) < 1e-15);

  await assert.rejects(S.runStudy('lesion', tinyOptions(DATA, join(tmp.dir, 'x'), { seed: undefined, checkpoints: [join(MULTI, 'runs/resnet20'), join(MULTI, 'runs/resnet32/seed0')] })),
    (e: Error) => e instanceof InvalidArgumentError && /holds several seeds \(seed0, seed1\) but .*seed0 is one checkpoint/.test(e.message));
  await assert.rejects(S.runStudy('lesion', tinyOptions(DATA, join(tmp.dir, 'x'), { seed: undefined, seeds: [0, 1], checkpoints: [join(MULTI, 'runs/resnet20')] })), /--seeds trains nets/);
});

test('resnet report: two single-seed directories become one multi-seed section equal to aggregating them; other recipe differences are refused', async () => {
  const dirs = [0, 1].map((s) => join(tmp.dir, `single${s}`));
  for (const [s, d] of dirs.entries()) await S.runStudy('degradation', tinyOptions(DATA, d, { archs: ['resnet20', 'resnet32'], seed: s, testSubset: 32 }));
  const one = S.readStudy(dirs[0]);
  assert.equal(existsSync(join(dirs[0], 'runs/resnet20/best.safetensors')), true, 'one seed keeps the single-seed layout');
  assert.equal(one.bySeed, undefined);
  assert.deepEqual(one.seeds, [0]);
  assert.match(one.verdicts![1].text, /rests on one seed/);

  const file = join(tmp.dir, 'report.html');
  const rep = S.writeReport([dirs[1], dirs[0]], file);
  assert.deepEqual(rep.studies, ['degradation']);
  const combined = rep.documents[0];
  assert.deepEqual(combined.seeds, [0, 1], 'in seed order');
  const runs = [0, 1].map((i) => ({ seed: i, results: S.readStudy(dirs[i]).results }));
  assert.deepEqual(combined.bySeed, runs);
  const study = S.getStudy('degradation');
  assert.deepEqual(combined.aggregate, JSON.parse(JSON.stringify(study.aggregate(runs))));
  assert.deepEqual(combined.verdicts, study.verdicts(runs));
  // Same recipe, same seeds: the same numbers as the multi-seed study of the test above.
  // (Training is deterministic on one thread; only the seconds differ.)
  const errors = (agg: unknown) => (agg as { nets: TrainedAggregate[] }).nets.map((n) => ({ ...n, secondsPerEpoch: null }));
  assert.deepEqual(errors(combined.aggregate), errors(JSON.parse(JSON.stringify(S.readStudy(MULTI).aggregate))), 'two single-seed runs = one --seeds 0,1 run');
  const html = readFileSync(file, 'utf8');
  assert.match(html, /seeds 0, 1/);
  assert.match(html, /in \d of 2 seeds/);
  assert.doesNotMatch(html, /<script|https?:\/\/(?!www\.w3\.org\/2000\/svg)/);

  // A third run with another seed and another learning rate is not the same study.
  const other = join(tmp.dir, 'other');
  cpSync(dirs[1], other, { recursive: true });
  const doc = JSON.parse(readFileSync(join(other, 'results.json'), 'utf8'));
  Object.assign(doc.setup, { seed: 2, lr: 0.2 });
  writeFileSync(join(other, 'results.json'), JSON.stringify(doc));
  assert.throws(() => S.writeReport([dirs[0], other], file), (e: Error) => e instanceof InvalidArgumentError &&
    e.message === `report: ${dirs[0]} and ${other} hold degradation with different seeds but also a different lr (0.05 vs 0.2); seeds combine only when the rest of the recipe is the same`);

  const ok = cli(['report', dirs[0], dirs[1], '--out', join(tmp.dir, 'cli.html')]);
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(ok.stdout, `wrote ${join(tmp.dir, 'cli.html')}: degradation (2 seeds)\n`);
  const bad = cli(['report', dirs[0], other, '--out', join(tmp.dir, 'cli.html')]);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /^resnet: report: .* different lr \(0\.05 vs 0\.2\)[^\n]*\n$/);
  const seeds = cli(['study', 'degradation', '--seeds', '0,x', '--out', join(tmp.dir, 'z')]);
  assert.equal(seeds.stderr, "resnet: --seeds must list integers >= 0 separated by commas, e.g. 0,1,2; got '0,x'\n");
});
