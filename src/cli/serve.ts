// `resnet serve`: parse flags, start the server (src/serve/), print where it listens, and
// drain on SIGTERM / SIGINT: stop accepting (503), answer what is in flight within
// --drain-ms, exit 0; a second signal exits at once.
// Which models are detectors: `--arch` a detection arch, or `--model NAME=ARCH:FILE` with ARCH
// a detection arch (a torchvision detection file does not name its arch), or weights that
// are a `resnet detect train` run (its checkpoints name a detection arch). Everything else is
// a classifier, as before.

import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import { parseFormats } from '../data/image_format.js';
import { DETECTION_ARCHS } from '../detect/models.js';
import type { LoadModelOptions } from '../infer/load.js';
import { modelNames } from '../models/registry.js';
import { startServer, type DetectorLoadOptions, type ModelSpec } from '../serve/index.js';
import type { HelperPriority } from '../serve/priority.js';
import { BEST, LAST, META_KEY } from '../train/checkpoint.js';

export interface ServeFlags {
  arch?: string; weights?: string; pretrained?: boolean; pretrainedTag?: string; model?: string[]; width?: string;
  host?: string; port?: string; maxBatch?: string; maxDelayMs?: string; maxQueue?: string; timeoutMs?: string;
  token?: string; cors?: string; precision?: string; maxBody?: string; maxPixels?: string; formats?: string;
  decodeThreads?: string; threads?: string; streams?: string; helperPriority?: string; drainMs?: string; bnEps?: string; minSize?: string; maxSize?: string;
}

function num(v: string | undefined, flag: string, min: number, int = true): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < min || (int && !Number.isInteger(n))) {
    throw new InvalidArgumentError(`--${flag} must be ${int ? 'an integer' : 'a number'} >= ${min}, got '${v}'`);
  }
  return n;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** The JSON header of a safetensors file (of a run directory: its best, else last
 *  checkpoint), without reading its tensors; null when `path` is not one. */
function safetensorsHeader(path: string): Record<string, unknown> | null {
  if (!existsSync(path)) return null;
  let file = path;
  if (statSync(path).isDirectory()) {
    const found = [BEST, LAST].map((f) => join(path, f)).find((f) => existsSync(f));
    if (!found) return null;
    file = found;
  }
  let fd: number;
  try { fd = openSync(file, 'r'); } catch { return null; }
  try {
    const head = Buffer.alloc(8);
    if (readSync(fd, head, 0, 8, 0) !== 8) return null;
    const n = Number(head.readBigUInt64LE(0));
    if (n < 2 || n > 100_000_000 || n + 8 > statSync(file).size) return null;
    const json = Buffer.alloc(n);
    readSync(fd, json, 0, n, 8);
    const doc = JSON.parse(json.toString('utf8')) as unknown;
    return typeof doc === 'object' && doc !== null && !Array.isArray(doc) ? doc as Record<string, unknown> : null;
  } catch {
    return null; // not a safetensors file: the loaders say what it is
  } finally {
    closeSync(fd);
  }
}

/** The arch a training checkpoint or run names (its header's META_KEY JSON), else null. */
function trainingArchOf(header: Record<string, unknown> | null): string | null {
  const meta = (header?.__metadata__ as Record<string, unknown> | undefined)?.[META_KEY];
  if (typeof meta !== 'string') return null;
  try {
    const arch = (JSON.parse(meta) as { arch?: unknown }).arch;
    return typeof arch === 'string' ? arch : null;
  } catch {
    return null;
  }
}

/** Whether a header's tensors are a torchvision detector's (it names no arch). */
const detectorKeys = (header: Record<string, unknown> | null): boolean =>
  header !== null && Object.keys(header).some((k) => k.startsWith('rpn.head.') || k.startsWith('roi_heads.box_predictor.'));

const isDetectionArch = (a: string | undefined | null): boolean => a != null && DETECTION_ARCHS.includes(a);

/** The models the flags name (classifiers and detectors), checked before anything loads.
 * @example modelSpecsOf({ model: ["det=fasterrcnn_resnet50_fpn:coco.pth"] })  // [{ name: "det", kind: "detector", detector: { weights: "coco.pth", arch: ... } }]
 */
export function modelSpecsOf(flags: ServeFlags): ModelSpec[] {
  const modelOptions = flags.width === undefined ? undefined : { width: num(flags.width, 'width', 0, false)! };
  if (flags.pretrainedTag !== undefined && !flags.pretrained) throw new InvalidArgumentError('--pretrained-tag needs --pretrained');
  const bnEps = flags.bnEps === undefined ? undefined : num(flags.bnEps, 'bn-eps', 0, false);
  if (bnEps !== undefined && bnEps > 1) throw new InvalidArgumentError(`--bn-eps must be a number from 0 to 1, got '${flags.bnEps}'`);
  const resize = { minSize: num(flags.minSize, 'min-size', 1), maxSize: num(flags.maxSize, 'max-size', 1) };
  const detector = (name: string, weights: string, arch?: string): ModelSpec => {
    const d: DetectorLoadOptions = { weights, arch, bnEps, ...resize };
    for (const k of Object.keys(d) as (keyof DetectorLoadOptions)[]) if (d[k] === undefined) delete d[k];
    return { name, kind: 'detector', detector: d };
  };
  /** Whether weights given without an arch are a detector (a detect-train run), refusing a
   *  torchvision detection file, which cannot say its arch. */
  const runIsDetector = (weights: string, how: string): boolean => {
    const header = safetensorsHeader(weights);
    if (isDetectionArch(trainingArchOf(header))) return true;
    if (trainingArchOf(header) === null && detectorKeys(header)) {
      throw new InvalidArgumentError(`${weights}: a detection checkpoint (rpn.*, roi_heads.* keys) does not name its arch; give it: ${how}, ARCH one of ${DETECTION_ARCHS.join(', ')}`);
    }
    return false;
  };
  const specs: ModelSpec[] = [];
  if (isDetectionArch(flags.arch) || (flags.arch === undefined && flags.weights !== undefined && runIsDetector(flags.weights, `--arch ARCH --weights ${flags.weights}`))) {
    if (flags.pretrained) throw new InvalidArgumentError(`--pretrained: no pretrained weights are fetched for detectors; give --weights (a torchvision ${flags.arch ?? 'Faster R-CNN'} checkpoint or a 'resnet detect train' run)`);
    if (flags.weights === undefined) throw new InvalidArgumentError(`--arch ${flags.arch} needs --weights: a torchvision Faster R-CNN checkpoint or a 'resnet detect train' run`);
    specs.push(detector(flags.arch ?? basename(flags.weights, extname(flags.weights)), flags.weights, flags.arch));
  } else if (flags.arch !== undefined || flags.weights !== undefined || flags.pretrained) {
    const options: LoadModelOptions = {
      arch: flags.arch, weights: flags.weights, pretrained: flags.pretrained ? (flags.pretrainedTag ?? true) : undefined, modelOptions,
    };
    const name = flags.arch ?? basename(flags.weights!, extname(flags.weights!));
    specs.push({ name, options });
  }
  for (const m of flags.model ?? []) {
    const eq = m.indexOf('=');
    if (eq < 1 || eq === m.length - 1) throw new InvalidArgumentError(`--model must be NAME=WEIGHTS or NAME=ARCH:WEIGHTS (a weights file or run directory), got '${m}'`);
    const name = m.slice(0, eq);
    let weights = m.slice(eq + 1);
    // ARCH: prefix only when it names a registered arch (a file name may hold a colon too).
    const colon = weights.indexOf(':');
    const prefix = colon > 0 ? weights.slice(0, colon) : '';
    let arch: string | undefined;
    if (isDetectionArch(prefix) || modelNames().includes(prefix)) {
      arch = prefix;
      weights = weights.slice(colon + 1);
      if (weights === '') throw new InvalidArgumentError(`--model ${m}: no weights after '${arch}:'`);
    }
    if (isDetectionArch(arch) || (arch === undefined && runIsDetector(weights, `--model ${name}=ARCH:${weights}`))) specs.push(detector(name, weights, arch));
    else specs.push({ name, options: { weights, arch, modelOptions } });
  }
  const detectors = specs.filter((s) => s.kind === 'detector').length;
  if (detectors === 0) {
    for (const [flag, v] of [['bn-eps', flags.bnEps], ['min-size', flags.minSize], ['max-size', flags.maxSize]] as const) {
      if (v !== undefined) throw new InvalidArgumentError(`--${flag} applies to detectors, and no model served is one (give --arch with a detection arch, or --model NAME=ARCH:FILE)`);
    }
  }
  if (specs.length === 0) throw new InvalidArgumentError('serve: give --arch A (--weights W | --pretrained) or --model NAME=WEIGHTS (repeatable)');
  for (const s of specs) {
    if (!NAME.test(s.name)) throw new InvalidArgumentError(`serve: model name '${s.name}' must be 1-64 letters, digits, '.', '_' or '-' (it goes in URLs)`);
  }
  return specs;
}

export async function serveCommand(flags: ServeFlags): Promise<void> {
  const models = modelSpecsOf(flags);
  const drainMs = num(flags.drainMs, 'drain-ms', 0) ?? 25000;
  const server = await startServer({
    models, host: flags.host ?? '127.0.0.1', port: num(flags.port, 'port', 0) ?? 8080,
    maxBatch: num(flags.maxBatch, 'max-batch', 1), maxDelayMs: num(flags.maxDelayMs, 'max-delay-ms', 0, false),
    maxQueue: num(flags.maxQueue, 'max-queue', 1), timeoutMs: num(flags.timeoutMs, 'timeout-ms', 1),
    token: flags.token ?? process.env.RESNET_SERVE_TOKEN, cors: flags.cors, precision: flags.precision,
    bodyLimit: num(flags.maxBody, 'max-body', 1), maxPixels: num(flags.maxPixels, 'max-pixels', 1),
    formats: flags.formats === undefined ? undefined : parseFormats(flags.formats, '--formats'),
    decodeThreads: num(flags.decodeThreads, 'decode-threads', 1), threads: num(flags.threads, 'threads', 1),
    streams: num(flags.streams, 'streams', 1), helperPriority: flags.helperPriority as HelperPriority | undefined,
  });
  for (const m of server.engine.models.values()) {
    if (m.kind === 'detector') {
      process.stderr.write(`resnet: ${m.name}: detector ${m.arch} from ${m.source}, ${m.numClasses} classes, images resized to min side ${m.minSize} (max ${m.maxSize}), one image per forward${m.notes.length ? `; ${m.notes.join('; ')}` : ''}\n`);
      continue;
    }
    process.stderr.write(`resnet: ${m.name}: ${m.arch} from ${m.source}, ${m.numClasses} classes, input [${m.channels}, ${m.height}, ${m.width}] (${m.preprocessNote}), ${m.precision}${m.fused ? ', BN folded' : ''}\n`);
  }
  const { streams, threads } = server.engine;
  process.stderr.write(streams === 1
    ? `resnet: engine: ${threads} compute thread${threads === 1 ? '' : 's'} (--threads)\n`
    : `resnet: engine: ${streams} streams of ${threads} compute thread${threads === 1 ? '' : 's'} each (--streams, --threads)\n`);
  process.stdout.write(`resnet: serving ${[...server.engine.models.keys()].join(', ')} at ${server.url}\n`);
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      process.stderr.write(`resnet: ${sig} again: exiting now\n`);
      process.exit(1);
    }
    process.stderr.write(`resnet: ${sig}: draining (new requests get 503; ${sig} again exits now)\n`);
    const timer = setTimeout(() => {
      process.stderr.write(`resnet: requests still in flight after --drain-ms ${drainMs}; exiting\n`);
      process.exit(1);
    }, drainMs);
    timer.unref();
    server.close().then(() => {
      process.stderr.write('resnet: drained; bye\n');
      process.exit(0);
    }, (e: unknown) => {
      process.stderr.write(`resnet: while draining: ${(e as Error)?.message ?? String(e)}\n`);
      process.exit(1);
    });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
