// The studies layer: the paper's and Veit et al.'s arguments as experiments. `runStudy`
// checks the options, trains or loads the nets, and writes results.json, one SVG and one
// PNG per plot and index.html into `.<out>.partial`, which replaces `out` only at the end. An
// interrupted or killed study leaves its nets' checkpoints there; `resume` continues them,
// provided the study and its recipe are the same (`study.json` there records them).
// With several seeds the study runs once per seed (seed-major: seed 0's nets, then seed
// 1's), and results.json adds every seed's results, the aggregate per net and the verdicts.
// `writeReport` gathers several study directories into one page, redrawn from their
// results.json; single-seed directories of one study that differ only in the seed become
// one multi-seed section. Nothing here prints: messages go through the options' callbacks.

import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError, DataError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import {
  checkpointsBySeed, commandOf, commitOutput, hasResumableWork, prepareOutput, recipe, recipeSummary, seedRuns, seedsOf, setupLine,
  type SeedRun, type Study, type StudyContext, type StudyDocument, type StudyOptions,
} from './common.js';
import { degradation } from './degradation.js';
import { lesion } from './lesion.js';
import { paths } from './paths.js';
import { responses } from './responses.js';
import { shortcuts } from './shortcuts.js';
import { pageHtml, type Section } from './page.js';
import { checkFonts, svgToPng } from './plot.js';

export { partialDir, seedRuns, StudyInterrupted, type SeedRun, type StudyOptions, type StudyDocument, type Study } from './common.js';
export { seedStat, type Stat, type Verdict } from './seeds.js';
export { degradation, type DegradationResults } from './degradation.js';
export { lesion, type LesionResults, type LesionNet } from './lesion.js';
export { paths, pathLengthDistribution, type PathsResults, type PathsNet } from './paths.js';
export { responses, type ResponsesResults, type ResponsesNet } from './responses.js';
export { shortcuts, type ShortcutsResults } from './shortcuts.js';
export { linePlotSvg, barChartSvg, svgToPng } from './plot.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const STUDIES: Record<string, Study<any>> = {
  degradation,
  shortcuts,
  lesion,
  paths,
  responses,
};

/** @example STUDY_NAMES.join(', ')  // 'degradation', 'shortcuts', 'lesion', 'paths', 'responses' */
export const STUDY_NAMES = Object.keys(STUDIES);

/** @example console.log(getStudy('lesion').title); */
export function getStudy(name: string): Study<unknown> {
  const s = Object.hasOwn(STUDIES, name) ? STUDIES[name] : undefined;
  if (!s) throw new InvalidArgumentError(`unknown study '${String(name)}'; valid: ${STUDY_NAMES.join(', ')}`);
  return s;
}

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

function section(study: Study<unknown>, doc: StudyDocument, id: string, files?: string[]): Section {
  const rs = seedRuns(doc);
  return {
    id, title: study.title, lead: study.lead, finding: study.finding(rs), verdicts: doc.verdicts ?? study.verdicts(rs), figures: study.figures(rs),
    tables: study.tables(rs), command: doc.command, setup: setupLine(doc.setup), createdAt: doc.createdAt, files,
  };
}

/** The document of a study's seeds: `results` the first seed's, `bySeed` all of them (several
 *  seeds), the aggregate and the verdicts; `setup` says `seeds` when there are several. */
function seedDocument(study: Study<unknown>, base: Omit<StudyDocument, 'results' | 'seeds' | 'bySeed' | 'aggregate' | 'verdicts'>, runs: SeedRun[]): StudyDocument {
  const seeds = runs.map((r) => r.seed).filter((s): s is number => typeof s === 'number');
  const setup = { ...base.setup };
  if (runs.length > 1) {
    delete setup.seed;
    setup.seeds = seeds;
  }
  return {
    ...base, setup, results: runs[0].results, seeds, ...(runs.length > 1 ? { bySeed: runs } : {}),
    aggregate: study.aggregate(runs), verdicts: study.verdicts(runs),
  };
}

/** @example const { out, files }: StudyRun = await runStudy('shortcuts', { out: 'studies/shortcuts', epochs: 2 }); */
export interface StudyRun {
  out: string;
  files: string[];
  document: StudyDocument;
}

/**
 * Runs a study and writes its directory.
 * @example await runStudy('degradation', { out: 'studies/degradation', subset: 10000, epochs: 6 });
 */
export async function runStudy(name: string, opts: StudyOptions): Promise<StudyRun> {
  const study = getStudy(name);
  if (!opts || typeof opts.out !== 'string' || !opts.out) throw new InvalidArgumentError(`study ${name}: --out DIR (the output directory) is required`);
  if (opts.draws !== undefined && (!Number.isInteger(opts.draws) || opts.draws < 1)) throw new InvalidArgumentError(`study ${name}: --draws must be an integer >= 1, got ${String(opts.draws)}`);
  study.check(opts);
  // One run per seed: the seeds of --seeds, or of multi-seed net directories given as
  // --checkpoint, or the one seed.
  if (opts.checkpoints?.length && opts.seeds !== undefined) throw new InvalidArgumentError(`study ${name}: --seeds trains nets; with --checkpoint the seeds are the checkpoints' (a multi-seed net directory such as DIR/runs/resnet56 gives all of its seeds)`);
  const bySeed = opts.checkpoints?.length ? checkpointsBySeed(name, opts.checkpoints) : null;
  const plan: StudyOptions[] = bySeed ? [...bySeed].map(([seed, checkpoints]) => ({ ...opts, seed, checkpoints }))
    : opts.checkpoints?.length ? [opts] : seedsOf(opts).map((seed) => ({ ...opts, seed, seeds: undefined }));
  const multi = plan.length > 1 && !bySeed;
  checkFonts();
  const t0 = performance.now();
  const { dir, resumed } = prepareOutput(opts.out, opts.force === true, opts.resume === true);
  const say = (text: string): void => opts.onMessage?.(text);
  let command = opts.command ?? commandOf(name, opts);
  const identity = studyIdentity(name, opts);
  try {
    const file = join(dir, STUDY_JSON);
    if (resumed && existsSync(file)) {
      const was = JSON.parse(readFileSync(file, 'utf8')) as { identity: Record<string, unknown>; command: string };
      const differ = Object.keys({ ...was.identity, ...identity })
        .filter((k) => JSON.stringify(was.identity[k]) !== JSON.stringify(identity[k]));
      if (differ.length) {
        throw new InvalidArgumentError(`${dir}: --resume continues the same study with the same settings; these differ: ` +
          `${differ.map((k) => `${k} ${JSON.stringify(was.identity[k])} (now ${JSON.stringify(identity[k])})`).join(', ')}`);
      }
      command = was.command;
      say(`resuming the study in ${dir}`);
    } else {
      writeFileAtomic(file, [enc(`${JSON.stringify({ identity, command }, null, 1)}\n`)]);
    }
    const runs: SeedRun[] = [];
    let setup: Record<string, unknown> = {};
    for (const p of plan) {
      if (plan.length > 1) say(`seed ${p.seed} (${runs.length + 1} of ${plan.length})`);
      const ctx: StudyContext = { opts: p, dir, say, multi };
      const r = await study.run(ctx);
      if (!runs.length) setup = r.setup;
      const seed = bySeed || !opts.checkpoints?.length ? p.seed : r.setup.seed;
      runs.push({ seed: typeof seed === 'number' ? seed : null, results: r.results });
    }
    if (bySeed) setup = { ...setup, checkpoints: opts.checkpoints };
    const doc = seedDocument(study, {
      format: 1, study: name, title: study.title, command, createdAt: new Date().toISOString(),
      seconds: (performance.now() - t0) / 1000, setup,
    }, runs);
    const files = ['results.json'];
    writeFileAtomic(join(dir, 'results.json'), [enc(`${JSON.stringify(doc, null, 1)}\n`)]);
    const sec = section(study, doc, name);
    for (const f of sec.figures) {
      writeFileAtomic(join(dir, `${f.id}.svg`), [enc(f.svg)]);
      writeFileAtomic(join(dir, `${f.id}.png`), [svgToPng(f.svg)]);
      files.push(`${f.id}.svg`, `${f.id}.png`);
    }
    sec.files = [...files];
    writeFileAtomic(join(dir, 'index.html'), [enc(pageHtml(`resnet-ts study: ${study.title}`, [sec]))]);
    files.push('index.html');
    rmSync(join(dir, STUDY_JSON), { force: true });
    commitOutput(dir, opts.out);
    return { out: opts.out, files, document: doc };
  } catch (e) {
    if (hasResumableWork(dir)) {
      say(`study ${name} stopped; ${opts.out} is as it was; the nets trained so far are kept in ${dir} (continue with --resume)`);
    } else {
      say(`study ${name} failed; ${opts.out} is as it was`);
      rmSync(dir, { recursive: true, force: true });
    }
    throw e;
  }
}

const STUDY_JSON = 'study.json';

/** What must match for `resume`: the study, its nets and draws, and the training recipe. */
function studyIdentity(name: string, o: StudyOptions): Record<string, unknown> {
  const { data: _data, ...r } = recipeSummary(recipe(o));
  return { study: name, archs: o.archs ?? null, checkpoints: o.checkpoints ?? null, draws: o.draws ?? null, ...r, ...(o.seeds ? { seeds: o.seeds } : {}) };
}

/**
 * Reads a study directory's results.json; errors name the file.
 * @example const doc = readStudy('studies/degradation');  // its results.json
 */
export function readStudy(dir: string): StudyDocument {
  const file = existsSync(dir) && statSync(dir).isDirectory() ? join(dir, 'results.json') : dir;
  if (!existsSync(file)) throw new DataError(`${file}: no such file; a study directory holds results.json (made by resnet study NAME --out DIR)`);
  let doc: StudyDocument;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8')) as StudyDocument;
  } catch (e) {
    throw new DataError(`${file}: not JSON (${(e as Error).message})`);
  }
  if (!doc || doc.format !== 1 || typeof doc.study !== 'string' || !doc.results) throw new DataError(`${file}: not a study's results.json (format 1 with 'study' and 'results')`);
  if (!Object.hasOwn(STUDIES, doc.study)) throw new DataError(`${file}: unknown study '${doc.study}'; valid: ${STUDY_NAMES.join(', ')}`);
  return doc;
}

/**
 * One page from several study directories (each redrawn from its results.json).
 * @example writeReport(['studies/degradation', 'studies/lesion'], 'report.html');
 */
export function writeReport(dirs: string[], outFile: string): { out: string; studies: string[]; documents: StudyDocument[] } {
  if (!dirs.length) throw new InvalidArgumentError('report: name at least one study directory');
  if (!outFile) throw new InvalidArgumentError('report: --out FILE.html is required');
  if (existsSync(outFile) && statSync(outFile).isDirectory()) throw new InvalidArgumentError(`report: --out ${outFile} is a directory; give a file name such as report.html`);
  const docs = combineSeeds(dirs, dirs.map(readStudy));
  const count = new Map<string, number>();
  const sections = docs.map((d) => {
    const k = (count.get(d.study) ?? 0) + 1;
    count.set(d.study, k);
    return section(getStudy(d.study), d, k > 1 ? `${d.study}-${k}` : d.study);
  });
  const intro = 'Why residual learning works, as experiments run with resnet-ts: the degradation problem of deep plain nets, identity vs projection shortcuts (He et al. 2015), ' +
    'and the unrolled view of a ResNet as an ensemble of paths (Veit et al. 2016). Each section says what the seeds claim, what we measured, whether the claim holds here and on how many seeds, and shows the command that made it.';
  writeFileAtomic(outFile, [enc(pageHtml('resnet-ts studies', sections, intro))]);
  return { out: outFile, studies: docs.map((d) => d.study), documents: docs };
}

/** Fields of a setup that may differ between runs of one study combined over seeds. */
const PER_RUN = new Set(['seed', 'seeds', 'data', 'checkpoints']);

/** The seeds of a document (none known: []). */
function docSeeds(d: StudyDocument): number[] {
  return seedRuns(d).map((r) => r.seed).filter((s): s is number => typeof s === 'number');
}

/**
 * Documents of one study whose seeds are all different are combined into one multi-seed
 * document (every seed's results, the aggregate and the verdicts recomputed), provided
 * their recipes differ only in the seed (else a one-line error naming the field); documents
 * that share a seed, or say none, stay separate sections. Order: where each study first comes.
 * @example const docs = combineSeeds(['a', 'b'], [readStudy('a'), readStudy('b')]);  // one document with seeds 0 and 1
 */
export function combineSeeds(dirs: string[], docs: StudyDocument[]): StudyDocument[] {
  const out: StudyDocument[] = [];
  const groups = new Map<string, number[]>();
  docs.forEach((d, i) => groups.set(d.study, [...(groups.get(d.study) ?? []), i]));
  const done = new Set<number>();
  docs.forEach((d, i) => {
    if (done.has(i)) return;
    const g = groups.get(d.study)!;
    const seeds = g.map((j) => docSeeds(docs[j]));
    const all = seeds.flat();
    const distinct = g.length > 1 && seeds.every((s) => s.length > 0) && new Set(all).size === all.length;
    if (!distinct) {
      done.add(i);
      out.push(d);
      return;
    }
    for (const j of g.slice(1)) {
      const a = docs[g[0]].setup;
      const b = docs[j].setup;
      const field = [...new Set([...Object.keys(a), ...Object.keys(b)])].find((k) => !PER_RUN.has(k) && JSON.stringify(a[k]) !== JSON.stringify(b[k]));
      if (field) {
        throw new InvalidArgumentError(`report: ${dirs[g[0]]} and ${dirs[j]} hold ${d.study} with different seeds but also a different ${field} ` +
          `(${JSON.stringify(a[field] ?? null)} vs ${JSON.stringify(b[field] ?? null)}); seeds combine only when the rest of the recipe is the same`);
      }
    }
    for (const j of g) done.add(j);
    const runs = g.flatMap((j) => seedRuns(docs[j])).sort((x, y) => (x.seed as number) - (y.seed as number));
    const first = docs[g[0]];
    out.push(seedDocument(getStudy(d.study), {
      format: 1, study: d.study, title: first.title, command: [...new Set(g.map((j) => docs[j].command))].join('\n'),
      createdAt: g.map((j) => docs[j].createdAt).sort().pop() as string, seconds: g.reduce((s, j) => s + docs[j].seconds, 0),
      setup: { ...first.setup, ...(first.setup.checkpoints ? { checkpoints: g.flatMap((j) => (docs[j].setup.checkpoints as string[] | undefined) ?? []) } : {}) },
    }, runs));
  });
  return out;
}
