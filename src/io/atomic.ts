// The one way resnet-ts writes a file (every command and API goes through here): check the
// destination, write a temp file in the target's directory, fsync it, rename it over the
// target, fsync the directory. A crash at any point leaves the old file or the new one,
// never a torn one (REFERENCE.md section 6). Only regular files are written: a path that is
// a directory, device, FIFO or socket is refused before anything is written; a symlink is
// followed and its target replaced (the link stays a link); a dangling link is refused.
// NOTE: the destination is checked once before the work and again just before the rename;
// a file swapped in between those two moments by another process is not detected.

import { accessSync, closeSync, constants, fsyncSync, lstatSync, openSync, realpathSync, renameSync, rmSync, statSync, writeSync, type Stats } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { errnoWords, OutputError } from '../errors.js';

export { errnoWords };

/** What a non-regular file is, in words. */
function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isSocket()) return 'a socket';
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isFile()) return 'a file';
  return 'not a regular file';
}

function lstatOrNull(p: string): Stats | null {
  try { return lstatSync(p); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/** The first ancestor of `dir` that exists but is not a directory (the cause of an ENOTDIR). */
function fileInTheWay(dir: string): string | null {
  const parts = resolve(dir).split('/').filter(Boolean);
  let p = '';
  for (const part of parts) {
    p += `/${part}`;
    let st: Stats;
    try { st = statSync(p); } catch { return null; }
    if (!st.isDirectory()) return p;
  }
  return null;
}

/**
 * Checks that `path` can be written as a regular file, before any work is done: its
 * directory exists, is a directory and is writable; the path is absent, a regular file, or a
 * symlink to a regular file. Returns the path the bytes will go to (a symlink's target).
 * Throws an OutputError naming the path and the cause; `what` names it ('--out', 'convert').
 * @example checkOutputPath('emb.npy', 'features: --out');  // before the inference runs
 */
export function checkOutputPath(path: string, what = ''): string {
  const fail = (cause: string, errno?: string) => new OutputError(what, path, cause, errno);
  if (path === '' || path.endsWith('/')) throw fail('give a file name, not a directory');
  let target = path;
  let st: Stats | null;
  try { st = lstatOrNull(path); } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOTDIR') throw fail(errnoWords(e), (e as NodeJS.ErrnoException).code);
    st = null; // a parent is a file: said below with the parent named
  }
  if (st?.isSymbolicLink()) {
    try {
      target = realpathSync(path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw fail('it is a symlink whose target does not exist (dangling); remove the link or create its target', code);
      if (code === 'ELOOP') throw fail('it is a symlink loop', code);
      throw fail(`cannot resolve the symlink: ${errnoWords(e)}`, code);
    }
    st = statSync(target);
  }
  if (st && !st.isFile()) {
    const hint = st.isDirectory() ? `; give a file inside it, e.g. ${join(path, 'out')}` : '; resnet writes regular files only';
    throw fail(`${target === path ? 'it' : `its symlink target ${target}`} is ${kindOf(st)}${hint}`, st.isDirectory() ? 'EISDIR' : 'EINVAL');
  }
  const dir = dirname(target);
  let dst: Stats;
  try { dst = statSync(dir); } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const inWay = code === 'ENOTDIR' ? fileInTheWay(dir) : null;
    if (inWay) throw fail(`${inWay} is a file, not a directory (ENOTDIR)`, 'ENOTDIR');
    if (code === 'ENOENT') throw fail(`no directory ${dir} (ENOENT)`, code);
    throw fail(`directory ${dir}: ${errnoWords(e)}`, code);
  }
  if (!dst.isDirectory()) throw fail(`${dir} is ${kindOf(dst)}, not a directory (ENOTDIR)`, 'ENOTDIR');
  try { accessSync(dir, constants.W_OK); } catch (e) { throw fail(`directory ${dir} is not writable: ${errnoWords(e)}`, (e as NodeJS.ErrnoException).code); }
  return target;
}

/** One file of a group written by writeFilesAtomic. */
export interface FileToWrite {
  path: string;
  chunks: readonly Uint8Array[];
}

function writeTemp(target: string, chunks: readonly Uint8Array[]): string {
  const tmp = join(dirname(target), `.${basename(target)}.${process.pid}.${Date.now()}.${Math.random().toString(36).slice(2, 8)}.tmp`);
  let fd = -1;
  try {
    fd = openSync(tmp, 'wx', 0o644);
    for (const c of chunks) {
      let off = 0;
      while (off < c.length) off += writeSync(fd, c, off, c.length - off);
    }
    fsyncSync(fd);
    closeSync(fd);
    return tmp;
  } catch (e) {
    // NOTE: the cleanup never hides the cause (an ENOTDIR from rmSync used to replace it).
    try { if (fd >= 0) closeSync(fd); } catch { /* the cause below matters */ }
    try { rmSync(tmp, { force: true }); } catch { /* idem */ }
    throw e;
  }
}

/**
 * Writes several files so that each is replaced atomically, in the order given: every temp
 * file is written and fsynced first (a failure there leaves all the old files untouched), then
 * they are renamed one after another. A reader that must not see a mixed group checks what
 * the last one records of the others (see write_features.ts). Returns the paths written to
 * (symlink targets resolved). Throws an OutputError naming the file and the cause.
 */
export function writeFilesAtomic(files: readonly FileToWrite[], what = ''): string[] {
  const targets = files.map((f) => checkOutputPath(f.path, what));
  const temps: string[] = [];
  try {
    files.forEach((f, i) => {
      try { temps.push(writeTemp(targets[i], f.chunks)); } catch (e) {
        let had = false;
        try { had = lstatOrNull(targets[i]) !== null; } catch { /* said as 'nothing was written' */ }
        throw new OutputError(what, f.path, `${errnoWords(e)}; ${had ? 'the previous file is intact' : 'nothing was written'}`, (e as NodeJS.ErrnoException).code);
      }
    });
    files.forEach((f, i) => {
      // Checked again just before the rename: a FIFO or directory made meanwhile is not replaced.
      const st = lstatOrNull(targets[i]);
      if (st && !st.isFile()) throw new OutputError(what, f.path, `${targets[i]} became ${kindOf(st)} while writing; left it alone`);
      try { renameSync(temps[i], targets[i]); } catch (e) {
        const done = files.slice(0, i).map((g) => g.path);
        throw new OutputError(what, f.path, `${errnoWords(e)}${done.length ? `; ${done.join(', ')} already replaced (a mixed group: write again)` : ''}`, (e as NodeJS.ErrnoException).code);
      }
      temps[i] = '';
    });
  } finally {
    for (const t of temps) if (t) try { rmSync(t, { force: true }); } catch { /* best effort */ }
  }
  for (const dir of new Set(targets.map((t) => dirname(t)))) {
    try {
      const dfd = openSync(dir, 'r');
      try { fsyncSync(dfd); } finally { closeSync(dfd); }
    } catch (e) {
      // Some file systems refuse fsync on a directory (EINVAL); the rename itself is done.
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EINVAL' && code !== 'ENOTSUP') throw new OutputError(what, dir, `the files were renamed into place but the directory's fsync failed: ${errnoWords(e)}`, code);
    }
  }
  return targets;
}

/**
 * Writes `chunks` to `path` atomically (see the file comment for what is refused). Returns
 * the path written to (a symlink's target).
 * @example writeFileAtomic('out.json', [new TextEncoder().encode('{}\n')]);
 */
export function writeFileAtomic(path: string, chunks: readonly Uint8Array[], what = ''): string {
  return writeFilesAtomic([{ path, chunks }], what)[0];
}
