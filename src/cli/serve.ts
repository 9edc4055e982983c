// `resnet serve`: parse flags, start the server (src/serve/), print where it listens, and
// drain on SIGTERM / SIGINT: stop accepting (503), answer what is in flight within
// --drain-ms, exit 0; a second signal exits at once.

import { basename, extname } from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import { parseFormats } from '../data/image_format.js';
import type { LoadModelOptions } from '../infer/load.js';
import { startServer, type ModelSpec } from '../serve/index.js';

export interface ServeFlags {
  arch?: string; weights?: string; pretrained?: boolean; pretrainedTag?: string; model?: string[]; width?: string;
  host?: string; port?: string; maxBatch?: string; maxDelayMs?: string; maxQueue?: string; timeoutMs?: string;
  token?: string; cors?: string; precision?: string; maxBody?: string; maxPixels?: string; formats?: string;
  decodeThreads?: string; drainMs?: string;
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

function modelsOf(flags: ServeFlags): ModelSpec[] {
  const modelOptions = flags.width === undefined ? undefined : { width: num(flags.width, 'width', 0, false)! };
  if (flags.pretrainedTag !== undefined && !flags.pretrained) throw new InvalidArgumentError('--pretrained-tag needs --pretrained');
  const specs: ModelSpec[] = [];
  if (flags.arch !== undefined || flags.weights !== undefined || flags.pretrained) {
    const options: LoadModelOptions = {
      arch: flags.arch, weights: flags.weights, pretrained: flags.pretrained ? (flags.pretrainedTag ?? true) : undefined, modelOptions,
    };
    const name = flags.arch ?? basename(flags.weights!, extname(flags.weights!));
    specs.push({ name, options });
  }
  for (const m of flags.model ?? []) {
    const eq = m.indexOf('=');
    if (eq < 1 || eq === m.length - 1) throw new InvalidArgumentError(`--model must be NAME=WEIGHTS (a weights file or run directory), got '${m}'`);
    specs.push({ name: m.slice(0, eq), options: { weights: m.slice(eq + 1), modelOptions } });
  }
  if (specs.length === 0) throw new InvalidArgumentError('serve: give --arch A (--weights W | --pretrained) or --model NAME=WEIGHTS (repeatable)');
  for (const s of specs) {
    if (!NAME.test(s.name)) throw new InvalidArgumentError(`serve: model name '${s.name}' must be 1-64 letters, digits, '.', '_' or '-' (it goes in URLs)`);
  }
  return specs;
}

export async function serveCommand(flags: ServeFlags): Promise<void> {
  const models = modelsOf(flags);
  const drainMs = num(flags.drainMs, 'drain-ms', 0) ?? 25000;
  const server = await startServer({
    models, host: flags.host ?? '127.0.0.1', port: num(flags.port, 'port', 0) ?? 8080,
    maxBatch: num(flags.maxBatch, 'max-batch', 1), maxDelayMs: num(flags.maxDelayMs, 'max-delay-ms', 0, false),
    maxQueue: num(flags.maxQueue, 'max-queue', 1), timeoutMs: num(flags.timeoutMs, 'timeout-ms', 1),
    token: flags.token ?? process.env.RESNET_SERVE_TOKEN, cors: flags.cors, precision: flags.precision,
    bodyLimit: num(flags.maxBody, 'max-body', 1), maxPixels: num(flags.maxPixels, 'max-pixels', 1),
    formats: flags.formats === undefined ? undefined : parseFormats(flags.formats, '--formats'),
    decodeThreads: num(flags.decodeThreads, 'decode-threads', 1),
  });
  for (const m of server.engine.models.values()) {
    process.stderr.write(`resnet: ${m.name}: ${m.arch} from ${m.source}, ${m.numClasses} classes, input [${m.channels}, ${m.height}, ${m.width}] (${m.preprocessNote}), ${m.precision}${m.fused ? ', BN folded' : ''}\n`);
  }
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
