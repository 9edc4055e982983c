// Reading dataset files: whole-file reads with errors that name the file, and transparent
// gunzip for `.gz`. The only place in data/ that opens files besides the image decoder.
// A gzip stream is inflated streaming and capped: never past GUNZIP_LIMIT, and never past
// the exact size the caller reads from the inflated header (`sizeOf`, e.g. an IDX header's
// dims), so a small .gz cannot make us allocate more than its contents are allowed to be.

import { readFile, stat } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import { DataError, errnoWords } from '../errors.js';

/** Most bytes a gzip'd dataset file may inflate to (the largest IDX sets in use, EMNIST
 *  ByClass at 0.55 GB, fit). */
export const GUNZIP_LIMIT = 2 ** 30;

/**
 * The exact length of a file's contents from its first inflated bytes, or undefined while
 * too few have arrived; it may throw a DataError when the header is wrong.
 */
export type SizeOf = (head: Uint8Array) => number | undefined;

/** Reads a file whole; a `.gz` name is gunzipped (capped, see above). Missing or unreadable: DataError naming it. */
export async function readDataFile(path: string, sizeOf?: SizeOf): Promise<Buffer> {
  let raw: Buffer;
  try {
    raw = await readFile(path);
  } catch (e) {
    throw new DataError(`${path}: cannot read: ${errnoWords(e)}`, { cause: e });
  }
  if (!path.toLowerCase().endsWith('.gz')) return raw;
  return gunzipCapped(raw, path, sizeOf);
}

/** Gunzips in the libuv pool (the main thread stays free while 26 MB inflate), copying into
 *  one buffer of the size `sizeOf` gives as soon as the header is in; stops on excess. */
function gunzipCapped(raw: Buffer, path: string, sizeOf?: SizeOf): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const z = createGunzip({ chunkSize: 64 * 1024 });
    let head: Buffer[] | null = [];
    let out: Buffer | null = null;
    let got = 0;
    let limit = GUNZIP_LIMIT;
    let done = false;
    const fail = (e: unknown) => {
      if (done) return;
      done = true;
      z.destroy();
      reject(e instanceof DataError ? e : new DataError(`${path}: not valid gzip data, expected a gzip stream (${(e as Error).message})`, { cause: e }));
    };
    z.on('data', (c: Buffer) => {
      if (done) return;
      if (c.length > limit - got) {
        return fail(new DataError(out && limit < GUNZIP_LIMIT
          ? `${path}: inflates past the ${limit} bytes its header says it holds (a gzip bomb or a corrupt file)`
          : `${path}: inflates past ${GUNZIP_LIMIT} bytes, the limit for a gzip'd dataset file (a gzip bomb?)`));
      }
      if (out) { c.copy(out, got); got += c.length; return; }
      head!.push(c);
      got += c.length;
      if (!sizeOf) return;
      let size: number | undefined;
      try { size = sizeOf(head!.length === 1 ? head![0] : Buffer.concat(head!)); } catch (e) { return fail(e); }
      if (size === undefined) return;
      if (size > GUNZIP_LIMIT) return fail(new DataError(`${path}: its header says ${size} bytes, over the limit of ${GUNZIP_LIMIT} for a gzip'd dataset file`));
      if (got > size) return fail(new DataError(`${path}: inflates past the ${size} bytes its header says it holds (a gzip bomb or a corrupt file)`));
      limit = size;
      try { out = Buffer.alloc(size); } catch { return fail(new DataError(`${path}: cannot allocate the ${size} bytes its header says it holds (out of memory)`)); }
      let o = 0;
      for (const h of head!) { h.copy(out, o); o += h.length; }
      head = null;
    });
    z.on('error', fail);
    z.on('end', () => {
      if (done) return;
      done = true;
      resolve(out ? out.subarray(0, got) : Buffer.concat(head!));
    });
    z.end(raw);
  });
}

/** The first of `names` that exists in `dir`, else a DataError listing what was looked for. */
export async function findFile(dir: string, names: string[], what: string): Promise<string> {
  for (const name of names) {
    const p = `${dir.replace(/\/+$/, '')}/${name}`;
    try {
      if ((await stat(p)).isFile()) return p;
    } catch { /* try the next name */ }
  }
  throw new DataError(`${dir}: no ${what} file found, expected one of ${names.join(', ')}`);
}

/** Whether a file exists (for optional files such as CIFAR class names). */
export async function fileExists(path: string): Promise<boolean> {
  try { return (await stat(path)).isFile(); } catch { return false; }
}

/** Whether a directory exists. */
export async function dirExists(path: string): Promise<boolean> {
  try { return (await stat(path)).isDirectory(); } catch { return false; }
}
