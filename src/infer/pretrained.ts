// Pretrained weights by arch name: torchvision 0.14's ImageNet weight files (models/resnet.py,
// the `url=` of each *_Weights enum) downloaded into a cache directory and verified as
// torch.hub's check_hash does it: the sha256 hex digest must start with the hash prefix in
// the file name (HASH_REGEX = -([a-f0-9]*)\.). A download goes to a temp file in the cache
// directory, renamed only once verified; a cached file is verified again before each use.
// The table is injectable (registerPretrained) so tests can serve their own file. No loading
// of the weights here: load.ts does that.

import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { CheckpointError, InvalidArgumentError } from '../errors.js';
import type { ModelOptions } from '../models/registry.js';

/**
 * One weights file: what it is for and how its inputs were prepared.
 * @example const { file, resize, crop }: PretrainedEntry = pretrainedEntry('resnet50', 'IMAGENET1K_V2');
 */
export interface PretrainedEntry {
  arch: string;
  /** torchvision's enum member name: IMAGENET1K_V1, IMAGENET1K_V2. */
  tag: string;
  /** File name under the base URL; its -<hex>. part is the sha256 prefix. */
  file: string;
  /** Evaluation preprocessing of these weights (torchvision's ImageClassification preset). */
  resize: number;
  crop: number;
  numClasses: number;
  /** Top-1 on ImageNet-1k val as torchvision reports it (documentation only). */
  acc1?: number;
  /** Extra model options (tests register reduced-width nets). */
  modelOptions?: ModelOptions;
}

const V1 = { tag: 'IMAGENET1K_V1', resize: 256, crop: 224, numClasses: 1000 };
const V2 = { tag: 'IMAGENET1K_V2', resize: 232, crop: 224, numClasses: 1000 };

const table = new Map<string, { entries: PretrainedEntry[]; defaultTag: string }>();

/**
 * Adds (or replaces) a weights file for an arch; `isDefault` makes it what `--pretrained`
 * with no tag picks.
 * @example registerPretrained({ arch: 'resnet18', tag: 'MINE', file: 'resnet18-0123abcd.pth', resize: 256, crop: 224, numClasses: 1000 });
 */
export function registerPretrained(entry: PretrainedEntry, isDefault = false): void {
  if (!/^[\w.-]+$/.test(entry.file)) throw new InvalidArgumentError(`registerPretrained: file '${entry.file}' must be a plain file name`);
  const t = table.get(entry.arch) ?? { entries: [], defaultTag: entry.tag };
  t.entries = t.entries.filter((e) => e.tag !== entry.tag).concat({ ...entry });
  if (isDefault) t.defaultTag = entry.tag;
  table.set(entry.arch, t);
}

/** Removes one tag of an arch (tests undo their registrations with it); the default moves
 *  to the first entry left.
 * @example unregisterPretrained('resnet18', 'MINE');
 */
export function unregisterPretrained(arch: string, tag: string): void {
  const t = table.get(arch);
  if (!t) return;
  t.entries = t.entries.filter((e) => e.tag !== tag);
  if (t.entries.length === 0) table.delete(arch);
  else if (t.defaultTag === tag) t.defaultTag = t.entries[0].tag;
}

// torchvision 0.14 models/resnet.py; DEFAULT is V2 where a V2 exists (as torchvision).
for (const [arch, v1, acc1, v2, acc2] of [
  ['resnet18', 'resnet18-f37072fd.pth', 69.758],
  ['resnet34', 'resnet34-b627a593.pth', 73.314],
  ['resnet50', 'resnet50-0676ba61.pth', 76.13, 'resnet50-11ad3fa6.pth', 80.858],
  ['resnet101', 'resnet101-63fe2227.pth', 77.374, 'resnet101-cd907fc2.pth', 81.886],
  ['resnet152', 'resnet152-394f9c45.pth', 78.312, 'resnet152-f82ba261.pth', 82.284],
  ['resnext50_32x4d', 'resnext50_32x4d-7cdf4587.pth', 77.618, 'resnext50_32x4d-1a0047aa.pth', 81.198],
  ['resnext101_32x8d', 'resnext101_32x8d-8ba56ff5.pth', 79.312, 'resnext101_32x8d-110c445d.pth', 82.834],
  ['wide_resnet50_2', 'wide_resnet50_2-95faca4d.pth', 78.468, 'wide_resnet50_2-9ba9bcbe.pth', 81.602],
  ['wide_resnet101_2', 'wide_resnet101_2-32ee1156.pth', 78.848, 'wide_resnet101_2-d733dc28.pth', 82.51],
] as [string, string, number, string?, number?][]) {
  registerPretrained({ arch, file: v1, acc1, ...V1 });
  if (v2) registerPretrained({ arch, file: v2, acc1: acc2, ...V2 }, true);
}
// resnext101_64x4d has only a V1, trained with the V2 recipe (resize 232).
registerPretrained({ arch: 'resnext101_64x4d', file: 'resnext101_64x4d-173b62eb.pth', acc1: 83.246, ...V2, tag: 'IMAGENET1K_V1' }, true);

/**
 * Every arch with pretrained weights, and its tags (the default first).
 * @example for (const { arch, tags } of pretrainedArchs()) console.log(arch, tags.join(', '));
 */
export function pretrainedArchs(): { arch: string; tags: string[] }[] {
  return [...table].map(([arch, t]) => ({ arch, tags: [t.defaultTag, ...t.entries.map((e) => e.tag).filter((g) => g !== t.defaultTag)] }));
}

/**
 * The entry for an arch and tag ('DEFAULT' or none: the default); errors list what exists.
 * @example const entry = pretrainedEntry('resnet18');  // the default tag, IMAGENET1K_V1
 */
export function pretrainedEntry(arch: string, tag?: string): PretrainedEntry {
  const t = table.get(arch);
  if (!t) {
    throw new InvalidArgumentError(`--pretrained: no pretrained weights for arch '${arch}'; archs with weights: ${pretrainedArchs().map((a) => a.arch).join(', ')}`);
  }
  const want = tag === undefined || tag.toUpperCase() === 'DEFAULT' ? t.defaultTag : tag.toUpperCase();
  const e = t.entries.find((x) => x.tag === want);
  if (!e) throw new InvalidArgumentError(`--pretrained: ${arch} has no weights '${tag}'; valid: DEFAULT, ${t.entries.map((x) => x.tag).join(', ')}`);
  return { ...e };
}

/**
 * torch.hub's HASH_REGEX: the hex after the first '-' that runs up to a '.'.
 * @example hashPrefix('resnet18-f37072fd.pth')  // 'f37072fd'
 */
export function hashPrefix(file: string): string | null {
  const m = /-([a-f0-9]*)\./.exec(file);
  return m ? m[1] : null;
}

/**
 * `RESNET_CACHE_DIR`, else ~/.cache/resnet-ts.
 * @example console.log(defaultCacheDir());  // ~/.cache/resnet-ts, or $RESNET_CACHE_DIR
 */
export function defaultCacheDir(): string {
  return process.env.RESNET_CACHE_DIR || join(homedir(), '.cache', 'resnet-ts');
}

/** @example const url = `${DEFAULT_WEIGHTS_URL}/resnet18-f37072fd.pth`; */
export const DEFAULT_WEIGHTS_URL = 'https://download.pytorch.org/models';

/**
 * `RESNET_WEIGHTS_URL`, else download.pytorch.org/models.
 * @example const base = defaultWeightsUrl();  // DEFAULT_WEIGHTS_URL unless the environment says another
 */
export function defaultWeightsUrl(): string {
  return process.env.RESNET_WEIGHTS_URL || DEFAULT_WEIGHTS_URL;
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** @example const file = await fetchPretrained(pretrainedEntry('resnet18'), { onProgress: (got, total) => console.log(got, total) } satisfies FetchOptions); */
export interface FetchOptions {
  /** Default defaultCacheDir(). */
  cacheDir?: string;
  /** Default defaultWeightsUrl(). */
  baseUrl?: string;
  /** Bytes received so far and the total (null when the server does not say). */
  onProgress?: (received: number, total: number | null) => void;
  onMessage?: (text: string) => void;
}

/**
 * The local path of an entry's verified file: the cached copy if its sha256 matches,
 * else a fresh download (temp file, verified, renamed). Errors name the URL or file and
 * leave nothing in the cache.
 * @example const file = await fetchPretrained(pretrainedEntry('resnet18'));  // ~/.cache/resnet-ts/resnet18-f37072fd.pth
 */
export async function fetchPretrained(entry: PretrainedEntry, options: FetchOptions = {}): Promise<string> {
  const dir = options.cacheDir ?? defaultCacheDir();
  const base = (options.baseUrl ?? defaultWeightsUrl()).replace(/\/+$/, '');
  const prefix = hashPrefix(entry.file);
  const path = join(dir, entry.file);
  const verified = (digest: string) => prefix === null || prefix === '' || digest.startsWith(prefix);
  if (existsSync(path)) {
    const digest = await sha256File(path);
    if (verified(digest)) return path;
    options.onMessage?.(`${path}: cached file is corrupt (sha256 ${digest.slice(0, 12)}…, expected it to start with ${prefix}); downloading it again`);
  }
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new CheckpointError(`${dir}: cannot create the weights cache directory (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); set RESNET_CACHE_DIR to a writable directory`);
  }
  const url = `${base}/${entry.file}`;
  options.onMessage?.(`downloading ${entry.arch} ${entry.tag} weights from ${url} into ${dir}`);
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    throw new CheckpointError(`${url}: cannot download ${entry.arch} weights (${cause?.code ?? cause?.message ?? (e as Error).message}); ` +
      `check the network or RESNET_WEIGHTS_URL, or put the file at ${path} yourself`);
  }
  if (!res.ok || !res.body) {
    throw new CheckpointError(`${url}: cannot download ${entry.arch} weights: HTTP ${res.status} ${res.statusText}`.trimEnd());
  }
  const lengthHeader = res.headers.get('content-length');
  const total = lengthHeader !== null && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : null;
  const tmp = join(dir, `.${entry.file}.${process.pid}.${Date.now()}.part`);
  const h = createHash('sha256');
  let received = 0;
  const fh = await open(tmp, 'w', 0o644);
  let moved = false;
  try {
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        h.update(chunk);
        await fh.write(chunk);
        received += chunk.length;
        options.onProgress?.(received, total);
      }
    } catch (e) {
      throw new CheckpointError(`${url}: the download broke off after ${received} bytes (${(e as Error).message})`);
    }
    if (total !== null && received !== total) {
      throw new CheckpointError(`${url}: received ${received} bytes, the server announced ${total}`);
    }
    const digest = h.digest('hex');
    if (!verified(digest)) {
      throw new CheckpointError(`${url}: corrupt download: its sha256 is ${digest}, which does not start with ${prefix} (the hash in the file name); nothing was cached`);
    }
    await fh.sync();
    await fh.close();
    await rename(tmp, path);
    moved = true;
    return path;
  } finally {
    if (!moved) {
      await fh.close().catch(() => {});
      await rm(tmp, { force: true });
    }
  }
}
