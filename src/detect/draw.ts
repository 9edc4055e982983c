// Detections drawn on their images: one SVG per image (the image embedded as PNG, a box and
// a "name score" tag per detection, one colour per label), rendered to PNG through the
// project's resvg path (DejaVu Sans only, the same on every machine), and one HTML page of
// them with a table of the detections (no script, no network). The pixels drawn are the
// ones the detector saw (decoded by decodeImageHwc, no EXIF rotation), so boxes line up.

import { mkdirSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import sharp from 'sharp';
import { decodeImageHwc } from '../data/image_folder.js';
import { errnoWords, OutputError } from '../errors.js';
import { writeFilesAtomic, type FileToWrite } from '../io/atomic.js';
import { svgToPng } from '../plot/png.js';
import { escapeXml, PALETTE } from '../plot/svg.js';
import type { ImageDetections } from './predict.js';

/**
 * The SVG of one image with its detections drawn: `png` is the image, width x height pixels.
 * @example const svg = detectionsSvg(bytes, 640, 480, { boxes: [[10, 20, 200, 220]], scores: [0.9], labels: [1], names: ['person'] });
 */
export function detectionsSvg(png: Uint8Array, width: number, height: number, dets: ImageDetections): string {
  const stroke = Math.max(2, Math.round(Math.min(width, height) / 200));
  const font = Math.max(11, Math.round(Math.min(width, height) / 40));
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" font-family="DejaVu Sans" font-size="${font}">`,
    `<image x="0" y="0" width="${width}" height="${height}" href="data:image/png;base64,${Buffer.from(png).toString('base64')}"/>`];
  // Lowest score first, so the best detection's box and tag are drawn on top.
  const order = dets.scores.map((_, i) => i).sort((a, b) => dets.scores[a] - dets.scores[b]);
  for (const i of order) {
    const [x1, y1, x2, y2] = dets.boxes[i];
    const colour = PALETTE[dets.labels[i] % PALETTE.length];
    const text = `${dets.names[i]} ${dets.scores[i].toFixed(2)}`;
    const tw = Math.ceil(text.length * font * 0.62) + 6;
    const ty = y1 - font - 4 >= 0 ? y1 - font - 4 : y1;
    parts.push(`<rect x="${x1.toFixed(1)}" y="${y1.toFixed(1)}" width="${(x2 - x1).toFixed(1)}" height="${(y2 - y1).toFixed(1)}" fill="none" stroke="${colour}" stroke-width="${stroke}"/>`,
      `<rect x="${x1.toFixed(1)}" y="${ty.toFixed(1)}" width="${tw}" height="${font + 4}" fill="${colour}"/>`,
      `<text x="${(x1 + 3).toFixed(1)}" y="${(ty + font).toFixed(1)}" fill="#ffffff">${escapeXml(text)}</text>`);
  }
  parts.push('</svg>');
  return parts.join('\n');
}

/** One image and its detections, as `writeDetectionPages` takes them. @example const d: DrawnImage = { file: 'street.jpg', detections: { boxes: [[10, 20, 200, 220]], scores: [0.9], labels: [1], names: ['person'] } }; */
export interface DrawnImage {
  file: string;
  detections: ImageDetections;
}

/**
 * Writes DIR/<name>.png per image (its detections drawn) and DIR/index.html (every image and
 * a table of its detections), each file atomically, making DIR if needed; returns the paths
 * written.
 * @example
 * const [dets] = await detect(createDetector('fasterrcnn_resnet50_fpn'), ['street.jpg']);
 * await writeDetectionPages('out', [{ file: 'street.jpg', detections: dets }]);
 */
export async function writeDetectionPages(dir: string, images: readonly DrawnImage[]): Promise<string[]> {
  try { mkdirSync(dir, { recursive: true }); } catch (e) { throw new OutputError('detect predict --out', dir, `cannot make the folder: ${errnoWords(e)}`, (e as NodeJS.ErrnoException).code); }
  const files: FileToWrite[] = [];
  const used = new Set<string>();
  const figures: string[] = [];
  for (const { file, detections } of images) {
    const img = await decodeImageHwc(file);
    const png = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: img.channels as 3 } }).png().toBuffer();
    const stem = basename(file, extname(file)).replace(/[^A-Za-z0-9._-]/g, '_') || 'image';
    let name = `${stem}.png`;
    for (let k = 2; used.has(name); k++) name = `${stem}-${k}.png`;
    used.add(name);
    files.push({ path: join(dir, name), chunks: [svgToPng(detectionsSvg(png, img.width, img.height, detections), 1)] });
    const rows = detections.scores.map((s, i) => `<tr><td>${escapeXml(detections.names[i])}</td><td>${detections.labels[i]}</td><td>${s.toFixed(3)}</td><td>${detections.boxes[i].map((v) => v.toFixed(1)).join(', ')}</td></tr>`);
    figures.push(`<figure><img src="${escapeXml(name)}" alt="${escapeXml(basename(file))} with ${detections.scores.length} detection(s) drawn" width="${img.width}" height="${img.height}">
<figcaption>${escapeXml(file)}: ${detections.scores.length} detection(s)</figcaption>
${rows.length ? `<table><thead><tr><th>name</th><th>label</th><th>score</th><th>box x1, y1, x2, y2</th></tr></thead><tbody>${rows.join('')}</tbody></table>` : ''}</figure>`);
  }
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>resnet detect predict</title>
<style>body{font:16px/1.45 system-ui,sans-serif;margin:0 auto;max-width:72rem;padding:1rem}img{max-width:100%;height:auto}figure{margin:0 0 2rem}
table{border-collapse:collapse;font-size:.9rem;display:block;overflow-x:auto}td,th{border-bottom:1px solid #ccc;padding:.2rem .6rem;text-align:left}</style></head>
<body><h1>Detections</h1>
${figures.join('\n')}
</body></html>
`;
  files.push({ path: join(dir, 'index.html'), chunks: [Buffer.from(html)] });
  return writeFilesAtomic(files, 'detect predict --out');
}
