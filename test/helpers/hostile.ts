// Hostile checkpoint and dataset bytes, made by hand (torch is not needed): a state-dict
// pickle of tensors with any geometry (stride 0, overlapping, offset), a zip writer that
// can DEFLATE an entry or carry a forged stream and declared size, and a raw DEFLATE
// stream of N zeros built in milliseconds (one sync-flushed block of 1 MiB repeated:
// every block decodes to zeros whatever the window holds, ~1000:1 on disk).

import { crc32, deflateRawSync, constants, gzipSync } from 'node:zlib';

/** One tensor of a hand-written state dict: float32 over storage `key` of `numel` elements. */
export interface TensorSpec {
  name: string;
  key: string;
  numel: number;
  size: number[];
  stride: number[];
  offset?: number;
}

const X = (s: string) => { const b = Buffer.from(s, 'utf8'); const h = Buffer.alloc(5); h[0] = 0x58; h.writeUInt32LE(b.length, 1); return Buffer.concat([h, b]); };
/** An int: BININT below 2^31, else LONG1 of 8 bytes. */
const J = (v: number) => {
  if (v < 2 ** 31) { const b = Buffer.alloc(5); b[0] = 0x4a; b.writeInt32LE(v, 1); return b; }
  const b = Buffer.alloc(10); b[0] = 0x8a; b[1] = 8; b.writeBigInt64LE(BigInt(v), 2); return b;
};
const tup = (xs: number[]) => Buffer.concat([Buffer.from('('), ...xs.map(J), Buffer.from('t')]);

/** The data.pkl of an OrderedDict of float tensors (protocol 2, as torch.save writes it). */
export function stateDictPickle(tensors: TensorSpec[]): Buffer {
  const parts: Buffer[] = [Buffer.from('\x80\x02ccollections\nOrderedDict\n)R(', 'latin1')];
  for (const t of tensors) {
    parts.push(X(t.name), Buffer.from('ctorch._utils\n_rebuild_tensor_v2\n((', 'latin1'), X('storage'),
      Buffer.from('ctorch\nFloatStorage\n'), X(t.key), X('cpu'), J(t.numel), Buffer.from('tQ'), J(t.offset ?? 0),
      tup(t.size), tup(t.stride), Buffer.from('\x89ccollections\nOrderedDict\n)RtR', 'latin1'));
  }
  parts.push(Buffer.from('u.'));
  return Buffer.concat(parts);
}

/** A zip entry: STORED bytes, or DEFLATE (`deflate: true` compresses `data`; `raw` is a
 *  ready stream with its declared `size` and `crc`, which may lie). */
export type ZipSpec =
  | { name: string; data: Uint8Array; deflate?: boolean }
  | { name: string; raw: Uint8Array; size: number; crc: number };

/** A zip archive (no zip64) of the entries, in order. */
export function buildZip(entries: ZipSpec[]): Buffer {
  const out: Buffer[] = [];
  const cen: Buffer[] = [];
  let off = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    let method = 0; let body: Uint8Array; let size: number; let crc: number;
    if ('raw' in e) { method = 8; body = e.raw; size = e.size; crc = e.crc; }
    else {
      size = e.data.length; crc = crc32(e.data) >>> 0;
      if (e.deflate) { method = 8; body = deflateRawSync(e.data); } else body = e.data;
    }
    const loc = Buffer.alloc(30);
    loc.writeUInt32LE(0x04034b50, 0); loc.writeUInt16LE(20, 4); loc.writeUInt16LE(method, 8);
    loc.writeUInt32LE(crc, 14); loc.writeUInt32LE(body.length, 18); loc.writeUInt32LE(size, 22); loc.writeUInt16LE(name.length, 26);
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0); c.writeUInt16LE(20, 4); c.writeUInt16LE(20, 6); c.writeUInt16LE(method, 10);
    c.writeUInt32LE(crc, 16); c.writeUInt32LE(body.length, 20); c.writeUInt32LE(size, 24); c.writeUInt16LE(name.length, 28); c.writeUInt32LE(off, 42);
    out.push(loc, name, Buffer.from(body));
    cen.push(c, name);
    off += 30 + name.length + body.length;
  }
  const cdSize = cen.reduce((a, b) => a + b.length, 0);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0); eocd.writeUInt16LE(entries.length, 8); eocd.writeUInt16LE(entries.length, 10);
  eocd.writeUInt32LE(cdSize, 12); eocd.writeUInt32LE(off, 16);
  return Buffer.concat([...out, ...cen, eocd]);
}

/** A .pth (zip) of the tensors, each storage STORED with zero bytes of the right size unless
 *  `storage` says otherwise; `extra` entries are appended. */
export function pthOf(tensors: TensorSpec[], opts: { storage?: (key: string, bytes: number) => ZipSpec; extra?: ZipSpec[] } = {}): Buffer {
  const keys = new Map<string, number>();
  for (const t of tensors) keys.set(t.key, t.numel * 4);
  const entries: ZipSpec[] = [{ name: 'h/data.pkl', data: stateDictPickle(tensors) }, { name: 'h/byteorder', data: Buffer.from('little') }];
  for (const [key, bytes] of keys) entries.push(opts.storage?.(key, bytes) ?? { name: `h/data/${key}`, data: new Uint8Array(bytes) });
  entries.push(...(opts.extra ?? []));
  return buildZip(entries);
}

const MiB = 2 ** 20;
let zeroBlock: Buffer | null = null;

/** A raw DEFLATE stream of `bytes` zeros (a multiple of 1 MiB), final block included. */
export function deflatedZeros(bytes: number): Buffer {
  if (bytes % MiB) throw new Error('deflatedZeros: a multiple of 1 MiB');
  zeroBlock ??= deflateRawSync(Buffer.alloc(MiB), { finishFlush: constants.Z_SYNC_FLUSH, level: 9 });
  const parts: Buffer[] = new Array<Buffer>(bytes / MiB).fill(zeroBlock);
  parts.push(Buffer.from([0x03, 0x00])); // a final, empty, fixed-Huffman block
  return Buffer.concat(parts);
}

/** CRC-32 of `bytes` zeros (a multiple of 1 MiB). */
export function zerosCrc(bytes: number): number {
  const z = Buffer.alloc(MiB);
  let c = 0;
  for (let i = 0; i < bytes / MiB; i++) c = crc32(z, c);
  return c >>> 0;
}

/** A gzip member whose DEFLATE data is `head` (stored, then) followed by `zeros` zero bytes;
 *  its trailer is right only when `zeros` is 0 (a bomb is refused before the trailer). */
export function gzipBomb(head: Uint8Array, zeros: number): Buffer {
  if (zeros === 0) return gzipSync(head);
  const h = deflateRawSync(head, { finishFlush: constants.Z_SYNC_FLUSH });
  const hdr = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(0, 0);
  trailer.writeUInt32LE((head.length + zeros) >>> 0, 4);
  return Buffer.concat([hdr, h, deflatedZeros(zeros), trailer]);
}

/** An IDX header (unsigned bytes) of `dims`. */
export function idxHeader(dims: number[]): Buffer {
  const b = Buffer.alloc(4 + 4 * dims.length);
  b[2] = 0x08; b[3] = dims.length;
  dims.forEach((d, i) => b.writeUInt32BE(d, 4 + 4 * i));
  return b;
}

/** A legacy (pre-1.6) torch.save stream of the tensors: magic, protocol, sys_info, the
 *  state-dict pickle (6-item persistent ids), the storage key list, then each storage as
 *  an int64 count and its zero bytes. */
export function legacyPthOf(tensors: TensorSpec[]): Buffer {
  const keys = new Map<string, number>();
  for (const t of tensors) keys.set(t.key, t.numel);
  const magic = Buffer.from('\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.', 'latin1');
  const proto = Buffer.from('\x80\x02M\xe9\x03.', 'latin1');
  const sys = Buffer.concat([Buffer.from('\x80\x02}(', 'latin1'), X('little_endian'), Buffer.from('\x88u.', 'latin1')]);
  const main = stateDictPickle(tensors).toString('latin1').replace(/tQ/g, 'NtQ'); // pid (..., numel, None)
  const list = Buffer.concat([Buffer.from('\x80\x02](', 'latin1'), ...[...keys.keys()].map(X), Buffer.from('e.')]);
  const data = [...keys.values()].map((n) => { const b = Buffer.alloc(8 + 4 * n); b.writeBigInt64LE(BigInt(n), 0); return b; });
  return Buffer.concat([magic, proto, sys, Buffer.from(main, 'latin1'), list, ...data]);
}
