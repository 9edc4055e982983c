// The studies layer: the paper's and Veit et al.'s arguments as experiments. `runStudy`
// checks the options, trains or loads the nets, and writes results.json, one SVG and one
// PNG per plot and index.html into `.<out>.partial`, which replaces `out` only at the end. An
// interrupted or killed study leaves its nets' checkpoints there; `resume` continues them,
// provided the study and its recipe are the same (`study.json` there records them).
// `writeReport` gathers several study directories into one page, redrawn from their
// results.json. Nothing here prints: messages go through the options' callbacks.

import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError, DataError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import {
  commandOf, commitOutput, hasResumableWork, prepareOutput, recipe, recipeSummary, setupLine, type Study, type StudyContext, type StudyDocument, type StudyOptions,
} from './common.js';
import { degradation } from './degradation.js';
import { lesion } from './lesion.js';
import { paths } from './paths.js';
import { responses } from './responses.js';
import { shortcuts } from './shortcuts.js';
import { pageHtml, type Section } from './page.js';
import { checkFonts, svgToPng } from './plot.js';

export { partialDir, StudyInterrupted, type StudyOptions, type StudyDocument, type Study } from './common.js';
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
  return {
    id, title: study.title, lead: study.lead, finding: study.finding(doc.results), figures: study.figures(doc.results),
    tables: study.tables(doc.results), command: doc.command, setup: setupLine(doc.setup), createdAt: doc.createdAt, files,
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
  checkFonts();
  const t0 = performance.now();
  const { dir, resumed } = prepareOutput(opts.out, opts.force === true, opts.resume === true);
  const say = (text: string): void => opts.onMessage?.(text);
  const ctx: StudyContext = { opts, dir, say };
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
    const { setup, results } = await study.run(ctx);
    const doc: StudyDocument = {
      format: 1, study: name, title: study.title, command, createdAt: new Date().toISOString(),
      seconds: (performance.now() - t0) / 1000, setup, results,
    };
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
  return { study: name, archs: o.archs ?? null, checkpoints: o.checkpoints ?? null, draws: o.draws ?? null, ...r };
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
export function writeReport(dirs: string[], outFile: string): { out: string; studies: string[] } {
  if (!dirs.length) throw new InvalidArgumentError('report: name at least one study directory');
  if (!outFile) throw new InvalidArgumentError('report: --out FILE.html is required');
  if (existsSync(outFile) && statSync(outFile).isDirectory()) throw new InvalidArgumentError(`report: --out ${outFile} is a directory; give a file name such as report.html`);
  const docs = dirs.map(readStudy);
  const count = new Map<string, number>();
  const sections = docs.map((d) => {
    const k = (count.get(d.study) ?? 0) + 1;
    count.set(d.study, k);
    return section(getStudy(d.study), d, k > 1 ? `${d.study}-${k}` : d.study);
  });
  const intro = 'Why residual learning works, as experiments run with resnet-ts: the degradation problem of deep plain nets, identity vs projection shortcuts (He et al. 2015), ' +
    'and the unrolled view of a ResNet as an ensemble of paths (Veit et al. 2016). Each section says which argument it tests and shows the command that made it.';
  writeFileAtomic(outFile, [enc(pageHtml('resnet-ts studies', sections, intro))]);
  return { out: outFile, studies: docs.map((d) => d.study) };
}
