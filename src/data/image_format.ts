// Which image formats we decode, told from a file's first bytes (its magic number) before
// any decoder sees it: JPEG, PNG and WebP by default; GIF, TIFF, AVIF and HEIF only when
// asked for (`formats`, `--formats`). SVG is never accepted: it is a document, not
// pixels, and can make the renderer read other files (`<image href="...">`).
// Invariant: a format name here is also sharp's `metadata().format` for it (avif: 'heif').

import { InvalidArgumentError } from '../errors.js';

/**
 * Every raster format that can be enabled, in the order errors list them.
 * @example IMAGE_FORMATS.join(', ')  // 'jpeg, png, webp, gif, tiff, avif, heif'
 */
export const IMAGE_FORMATS = ['jpeg', 'png', 'webp', 'gif', 'tiff', 'avif', 'heif'] as const;
/** @example const formats: ImageFormat[] = ['jpeg', 'png', 'gif']; */
export type ImageFormat = (typeof IMAGE_FORMATS)[number];

/**
 * The formats decoded unless told otherwise.
 * @example DEFAULT_IMAGE_FORMATS.includes('gif')  // false: GIF needs formats: [..., 'gif']
 */
export const DEFAULT_IMAGE_FORMATS: readonly ImageFormat[] = ['jpeg', 'png', 'webp'];

/** File extensions (lower case, with the dot) a folder walk picks up for each format. */
export const FORMAT_EXTENSIONS: Record<ImageFormat, readonly string[]> = {
  jpeg: ['.jpg', '.jpeg'], png: ['.png'], webp: ['.webp'], gif: ['.gif'], tiff: ['.tif', '.tiff'], avif: ['.avif'], heif: ['.heic', '.heif'],
};

/** Bytes sniffFormat needs from the start of a file. */
export const SNIFF_BYTES = 64;

/** sharp's metadata().format name for a format. */
export function sharpFormatName(f: ImageFormat): string {
  return f === 'avif' ? 'heif' : f;
}

function ascii(b: Uint8Array, at: number, s: string): boolean {
  if (b.length < at + s.length) return false;
  for (let i = 0; i < s.length; i++) if (b[at + i] !== s.charCodeAt(i)) return false;
  return true;
}

/**
 * The format of a file from its first bytes: a raster format, 'svg' for anything that
 * looks like XML or SVG text (a '<' after optional BOM and white space), or null.
 * @example sniffFormat(bytes.subarray(0, 16))  // 'png' for a PNG's first bytes
 */
export function sniffFormat(head: Uint8Array): ImageFormat | 'svg' | null {
  const b = head;
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 8 && b[0] === 0x89 && ascii(b, 1, 'PNG\r\n\x1a\n')) return 'png';
  if (ascii(b, 0, 'RIFF') && ascii(b, 8, 'WEBP')) return 'webp';
  if (ascii(b, 0, 'GIF87a') || ascii(b, 0, 'GIF89a')) return 'gif';
  if (ascii(b, 0, 'II*\0') || ascii(b, 0, 'MM\0*')) return 'tiff';
  if (ascii(b, 4, 'ftyp')) {
    const brand = String.fromCharCode(...b.subarray(8, 12));
    if (brand === 'avif' || brand === 'avis') return 'avif';
    if (['heic', 'heix', 'hevc', 'hevx', 'heim', 'heis', 'mif1', 'msf1'].includes(brand)) return 'heif';
  }
  let i = ascii(b, 0, '\xef\xbb\xbf') ? 3 : 0;
  while (i < b.length && (b[i] === 0x20 || b[i] === 0x09 || b[i] === 0x0a || b[i] === 0x0d)) i++;
  if (i < b.length && b[i] === 0x3c /* < */) return 'svg';
  // A gzipped SVG (.svgz) is still SVG to librsvg.
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return 'svg';
  return null;
}

/**
 * Validates a list of format names (an array, or a comma-separated string as --formats
 * takes); 'jpg' means 'jpeg', 'tif' 'tiff'. An unknown name lists the valid ones; 'svg'
 * says why it is never accepted.
 * @example parseFormats('jpeg,png,webp,gif')  // ['jpeg', 'png', 'webp', 'gif']
 */
export function parseFormats(list: string | readonly string[], where = 'formats'): ImageFormat[] {
  const names = typeof list === 'string' ? list.split(',') : [...list];
  const out: ImageFormat[] = [];
  for (const raw of names) {
    const n = String(raw).trim().toLowerCase();
    const name = n === 'jpg' ? 'jpeg' : n === 'tif' ? 'tiff' : n;
    if (name === 'svg') throw new InvalidArgumentError(`${where}: SVG is not an image format we accept (a vector document that can read other files); valid: ${IMAGE_FORMATS.join(', ')}`);
    if (!(IMAGE_FORMATS as readonly string[]).includes(name)) {
      throw new InvalidArgumentError(`${where}: unknown image format '${String(raw)}'; valid: ${IMAGE_FORMATS.join(', ')}`);
    }
    if (!out.includes(name as ImageFormat)) out.push(name as ImageFormat);
  }
  if (out.length === 0) throw new InvalidArgumentError(`${where}: no image format given; valid: ${IMAGE_FORMATS.join(', ')}`);
  return out;
}

/**
 * The extensions a folder walk picks up for these formats.
 * @example extensionsFor(['jpeg', 'png'])  // ['.jpg', '.jpeg', '.png']
 */
export function extensionsFor(formats: readonly ImageFormat[]): string[] {
  return formats.flatMap((f) => FORMAT_EXTENSIONS[f]);
}

/** 'JPEG, PNG or WebP' for error messages. */
export function describeFormats(formats: readonly ImageFormat[]): string {
  const names = formats.map((f) => (f === 'webp' ? 'WebP' : f.toUpperCase()));
  return names.length === 1 ? names[0] : `${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}`;
}
