// Reading dataset files: whole-file reads with errors that name the file, and transparent
// gunzip for `.gz`. The only place in data/ that opens files besides the image decoder.

import { readFile, stat } from 'node:fs/promises';
import { gunzip } from 'node:zlib';
import { promisify } from 'node:util';
import { DataError } from '../errors.js';

const gunzipAsync = promisify(gunzip);

/** Reads a file whole; a `.gz` name is gunzipped. Missing or unreadable: DataError naming it. */
export async function readDataFile(path: string): Promise<Buffer> {
  let raw: Buffer;
  try {
    raw = await readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'file not found' : code === 'EISDIR' ? 'is a directory, expected a file' : (e as Error).message;
    throw new DataError(`${path}: ${why}`, { cause: e });
  }
  if (!path.toLowerCase().endsWith('.gz')) return raw;
  try {
    // zlib runs in the libuv pool: the main thread stays free while 26 MB inflate.
    return await gunzipAsync(raw);
  } catch (e) {
    throw new DataError(`${path}: not valid gzip data, expected a gzip stream (${(e as Error).message})`, { cause: e });
  }
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
