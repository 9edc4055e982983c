// SVG to PNG through resvg, with Debian's DejaVu Sans passed as font files and no system
// fonts, so a PNG is the same on every machine. Not here: drawing (svg.ts).

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as resvg from '@resvg/resvg-js';
import { DataError } from '../errors.js';

/** Debian's fonts-dejavu-core; the PNGs are drawn with these and nothing else. */
export const FONT_FILES = [
  '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf',
  '/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf',
];

/** Throws naming the missing font file and the Debian package. */
export function checkFonts(): void {
  for (const f of FONT_FILES) {
    if (!existsSync(f)) throw new DataError(`plots: font file ${f} is missing; install Debian's fonts-dejavu-core (apt-get install fonts-dejavu-core) so the PNG plots have text`);
  }
}

/** PNG of an SVG at `scale` (2: crisp on high-DPI screens), drawn with DejaVu Sans only. */
export function svgToPng(svg: string, scale = 2): Buffer {
  checkFonts();
  // resvg (a native addon) is loaded on the first PNG, not when the library is imported.
  const { Resvg } = createRequire(import.meta.url)('@resvg/resvg-js') as typeof resvg;
  const r = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: scale },
    background: 'white',
    font: { fontFiles: FONT_FILES, loadSystemFonts: false, defaultFontFamily: 'DejaVu Sans' },
  });
  return r.render().asPng();
}
