// The zip container of PyTorch's .pth files (PKWARE APPNOTE 4.3): read the central
// directory (zip64 too) with every offset and count checked against the file, give each
// entry's bytes after checking its CRC-32 (zlib.crc32: fflate checks none), and write a
// STORED archive with each entry's data 64-byte aligned as PyTorch's writer does (an 'FB'
// padding extra field). Not here: what the entries mean (pth.ts).
// NOTE: the directory is parsed here, not by fflate's unzipSync, which exposes no CRCs and
// trusts a zip64 entry count (billions of iterations on a forged file); fflate only inflates.
// Entries are inflated only when asked for (an unused entry costs nothing), streaming into
// a buffer of the declared size, and stop as soon as the output would pass it; the
// declared sizes are capped before anything is inflated (INFLATE_LIMITS).

import { crc32 } from 'node:zlib';
import { Inflate } from 'fflate';
import { CheckpointError } from '../errors.js';

export interface ZipEntry {
  name: string;
  method: number;
  crc: number;
  compressedSize: number;
  size: number;
  /** Where the entry's data starts in the archive. */
  dataStart: number;
}

const SIG_EOCD = 0x06054b50;
const SIG_EOCD64 = 0x06064b50;
const SIG_LOC64 = 0x07064b50;
const SIG_CEN = 0x02014b50;
const SIG_LOC = 0x04034b50;
/**
 * What deflated entries may inflate to. PyTorch writes every entry STORED, so a deflated
 * .pth was re-zipped by someone; float weights compress little, zeros ~1000:1. One entry
 * may declare at most `ratio` x its compressed bytes + `slack` (Apache POI's ZipSecureFile
 * refuses below a 1% inflate ratio, i.e. above 100:1) and at most `entry` bytes; all the
 * entries read from one archive together at most `ratio` x the archive's bytes +
 * `totalSlack`. A declared size is checked before inflating, and the inflated output
 * against the declared size while inflating.
 */
export const INFLATE_LIMITS = { ratio: 100, slack: 2 ** 20, entry: 2 ** 32 - 1, totalSlack: 64 * 2 ** 20 } as const;

/** Bytes of compressed input pushed per step: at most ~1032x that comes out per step. */
const PUSH = 16 * 1024;

/** What is left of an archive's total inflate budget (one per archive read). */
export interface InflateBudget { left: number }

/** A fresh total budget for an archive of `archiveBytes`. */
export function inflateBudget(archiveBytes: number): InflateBudget {
  return { left: INFLATE_LIMITS.ratio * archiveBytes + INFLATE_LIMITS.totalSlack };
}

/** The entries of a zip archive, by name, in directory order. */
export function readZipEntries(buf: Uint8Array, file: string): Map<string, ZipEntry> {
  const bad = (msg: string): never => { throw new CheckpointError(`${file}: corrupt zip archive: ${msg}`); };
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = buf.length;
  let eocd = -1;
  for (let i = n - 22; i >= Math.max(0, n - 22 - 0xffff); i--) {
    if (dv.getUint32(i, true) === SIG_EOCD && i + 22 + dv.getUint16(i + 20, true) <= n) { eocd = i; break; }
  }
  if (eocd < 0) bad(`no end-of-central-directory record in its ${n} bytes (truncated?)`);
  let count = dv.getUint16(eocd + 10, true);
  let cdSize = dv.getUint32(eocd + 12, true);
  let cdOff = dv.getUint32(eocd + 16, true);
  let cdLimit = eocd;
  if (eocd >= 20 && dv.getUint32(eocd - 20, true) === SIG_LOC64) {
    const at = dv.getBigUint64(eocd - 12, true);
    if (at > BigInt(eocd - 20 - 56)) bad(`zip64 directory record at ${at} is out of bounds`);
    const z = Number(at);
    if (dv.getUint32(z, true) !== SIG_EOCD64) bad(`no zip64 directory record at ${z}`);
    const c64 = dv.getBigUint64(z + 32, true);
    const s64 = dv.getBigUint64(z + 40, true);
    const o64 = dv.getBigUint64(z + 48, true);
    if (c64 > BigInt(n) || s64 > BigInt(n) || o64 > BigInt(n)) bad('zip64 directory sizes out of bounds');
    count = Number(c64); cdSize = Number(s64); cdOff = Number(o64); cdLimit = z;
  }
  if (cdOff + cdSize > cdLimit) bad(`central directory [${cdOff}, ${cdOff + cdSize}) runs past its end record at ${cdLimit}`);
  if (count * 46 > cdSize) bad(`${count} entries cannot fit a ${cdSize}-byte central directory`);
  const entries = new Map<string, ZipEntry>();
  let p = cdOff;
  const cdEnd = cdOff + cdSize;
  for (let k = 0; k < count; k++) {
    if (p + 46 > cdEnd || dv.getUint32(p, true) !== SIG_CEN) bad(`central directory entry ${k} at ${p} is missing or out of bounds`);
    const flags = dv.getUint16(p + 8, true);
    const method = dv.getUint16(p + 10, true);
    const crc = dv.getUint32(p + 16, true);
    let csize = dv.getUint32(p + 20, true);
    let size = dv.getUint32(p + 24, true);
    const nameLen = dv.getUint16(p + 28, true);
    const extraLen = dv.getUint16(p + 30, true);
    const commentLen = dv.getUint16(p + 32, true);
    let local = dv.getUint32(p + 42, true);
    const next = p + 46 + nameLen + extraLen + commentLen;
    if (next > cdEnd) bad(`central directory entry ${k} runs past the directory`);
    const name = new TextDecoder().decode(buf.subarray(p + 46, p + 46 + nameLen));
    // zip64 extended information (0x0001): the saturated fields, in this order.
    for (let e = p + 46 + nameLen; e + 4 <= p + 46 + nameLen + extraLen;) {
      const id = dv.getUint16(e, true);
      const len = dv.getUint16(e + 2, true);
      if (e + 4 + len > p + 46 + nameLen + extraLen) bad(`entry '${name}' has a malformed extra field`);
      if (id === 0x0001) {
        let q = e + 4;
        const take = () => {
          if (q + 8 > e + 4 + len) bad(`entry '${name}' has a short zip64 field`);
          const v = dv.getBigUint64(q, true);
          q += 8;
          if (v > BigInt(n)) bad(`entry '${name}' has a zip64 size or offset beyond the file`);
          return Number(v);
        };
        if (size === 0xffffffff) size = take();
        if (csize === 0xffffffff) csize = take();
        if (local === 0xffffffff) local = take();
      }
      e += 4 + len;
    }
    if (flags & 1) bad(`entry '${name}' is encrypted`);
    if (entries.has(name)) bad(`entry '${name}' appears twice`);
    if (local + 30 > cdOff || dv.getUint32(local, true) !== SIG_LOC) bad(`entry '${name}': no local header at ${local}`);
    const dataStart = local + 30 + dv.getUint16(local + 26, true) + dv.getUint16(local + 28, true);
    if (dataStart + csize > cdOff) bad(`entry '${name}': data [${dataStart}, ${dataStart + csize}) runs past the entries' area (${cdOff} bytes)`);
    entries.set(name, { name, method, crc, compressedSize: csize, size, dataStart });
    p = next;
  }
  return entries;
}

/** An entry's bytes (a view for STORED entries), CRC-checked; a deflated entry is charged
 *  to `budget` (default: a fresh budget for this archive alone). */
export function zipEntryData(buf: Uint8Array, e: ZipEntry, file: string, budget: InflateBudget = inflateBudget(buf.length)): Uint8Array {
  const raw = buf.subarray(e.dataStart, e.dataStart + e.compressedSize);
  const where = `${file}: zip entry '${e.name}'`;
  let data: Uint8Array;
  if (e.method === 0) {
    if (e.size !== e.compressedSize) throw new CheckpointError(`${where} is STORED but its sizes differ (${e.compressedSize} vs ${e.size})`);
    data = raw;
  } else if (e.method === 8) {
    const cap = Math.min(INFLATE_LIMITS.ratio * e.compressedSize + INFLATE_LIMITS.slack, INFLATE_LIMITS.entry);
    if (e.size > cap) {
      throw new CheckpointError(`${where} declares ${e.size} bytes inflated from ${e.compressedSize} compressed; refused above ${INFLATE_LIMITS.ratio} x compressed + 1 MiB, at most ${INFLATE_LIMITS.entry} (${cap} bytes): a zip bomb?`);
    }
    if (e.size > budget.left) {
      throw new CheckpointError(`${where} declares ${e.size} bytes inflated, past what is left of the archive's budget (${budget.left} of ${INFLATE_LIMITS.ratio} x its ${buf.length} bytes + 64 MiB): a zip bomb?`);
    }
    budget.left -= e.size;
    data = inflateCapped(raw, e.size, where);
  } else {
    throw new CheckpointError(`${where} uses compression method ${e.method}; only STORED (0) and DEFLATE (8) are read`);
  }
  const got = crc32(data) >>> 0;
  if (got !== e.crc >>> 0) {
    throw new CheckpointError(`${where} fails its CRC-32 check (stored ${hex(e.crc)}, computed ${hex(got)}): the file is corrupt`);
  }
  return data;
}

/** Inflates raw DEFLATE data into exactly `size` bytes, streaming: more output than that is
 *  refused as soon as it appears, less when the stream ends. */
function inflateCapped(raw: Uint8Array, size: number, where: string): Uint8Array {
  let out: Uint8Array;
  try { out = new Uint8Array(size); } catch { throw new CheckpointError(`${where}: cannot allocate the ${size} bytes it declares (out of memory)`); }
  let got = 0;
  const inf = new Inflate((chunk) => {
    if (chunk.length > size - got) throw new CheckpointError(`${where} inflates past the ${size} bytes its header declares (a zip bomb or a corrupt file)`);
    out.set(chunk, got);
    got += chunk.length;
  });
  try {
    let p = 0;
    do {
      const end = Math.min(raw.length, p + PUSH);
      inf.push(raw.subarray(p, end), end === raw.length);
      p = end;
    } while (p < raw.length);
  } catch (err) {
    if (err instanceof CheckpointError) throw err;
    throw new CheckpointError(`${where} does not inflate (${(err as Error).message})`);
  }
  if (got !== size) throw new CheckpointError(`${where} inflates to ${got} bytes, its header says ${size}`);
  return out;
}

const hex = (v: number) => `0x${(v >>> 0).toString(16).padStart(8, '0')}`;

/** A STORED zip archive with each entry's data aligned to `align` bytes, as chunks to write. */
export function buildStoredZip(files: { name: string; data: Uint8Array }[], align = 64): Uint8Array[] {
  const out: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let off = 0;
  for (const f of files) {
    const name = Buffer.from(f.name, 'utf8');
    const pad = (align - ((off + 30 + name.length + 4) % align)) % align;
    const crc = crc32(f.data) >>> 0;
    const size = f.data.length;
    if (off + 30 + name.length + 4 + pad + size > 0xfffffffe) {
      throw new CheckpointError(`cannot write '${f.name}': the archive would pass 4 GiB (zip64 is not written)`);
    }
    const local = Buffer.alloc(30 + name.length + 4 + pad);
    local.writeUInt32LE(SIG_LOC, 0);
    local.writeUInt16LE(20, 4); // version needed
    local.writeUInt16LE(0x0800, 6); // UTF-8 names
    local.writeUInt16LE(0, 8); // STORED
    local.writeUInt16LE(0, 10); // time
    local.writeUInt16LE(0x21, 12); // date 1980-01-01
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(size, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(4 + pad, 28);
    name.copy(local, 30);
    local.write('FB', 30 + name.length, 'latin1');
    local.writeUInt16LE(pad, 30 + name.length + 2);
    local.fill(0x5a, 30 + name.length + 4); // 'Z', as PyTorch pads
    const cen = Buffer.alloc(46 + name.length);
    cen.writeUInt32LE(SIG_CEN, 0);
    cen.writeUInt16LE(20, 4); // made by
    cen.writeUInt16LE(20, 6);
    cen.writeUInt16LE(0x0800, 8);
    cen.writeUInt16LE(0, 10);
    cen.writeUInt16LE(0, 12);
    cen.writeUInt16LE(0x21, 14);
    cen.writeUInt32LE(crc, 16);
    cen.writeUInt32LE(size, 20);
    cen.writeUInt32LE(size, 24);
    cen.writeUInt16LE(name.length, 28);
    cen.writeUInt32LE(off, 42);
    name.copy(cen, 46);
    out.push(local, f.data);
    central.push(cen);
    off += local.length + size;
  }
  const cdSize = central.reduce((a, c) => a + c.length, 0);
  if (files.length > 0xffff) throw new CheckpointError(`cannot write ${files.length} entries (zip64 is not written)`);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(SIG_EOCD, 0);
  eocd.writeUInt16LE(files.length, 8);
  eocd.writeUInt16LE(files.length, 10);
  eocd.writeUInt32LE(cdSize, 12);
  eocd.writeUInt32LE(off, 16);
  return [...out, ...central, eocd];
}
