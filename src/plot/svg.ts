// Line plots as hand-made SVG: axes with nice ticks (linear or log y), axis labels with
// units, series with optional error bands, reference lines and a legend that wraps below
// the plot. Pure string building, no DOM and no fonts needed (text is drawn by whoever
// renders it; png.ts renders it to PNG). The trainer's error plot (src/train/plot.ts) and
// the studies' plots (src/studies/plot.ts adds bar charts) are made of these pieces.

/** Colour-blind-safe palette (Okabe & Ito 2008), in the order series take it. */
export const PALETTE = ['#0072b2', '#d55e00', '#009e73', '#cc79a7', '#e69f00', '#56b4e9', '#000000', '#f0e442'];
export const FONT_FAMILY = 'DejaVu Sans, Verdana, Arial, sans-serif';

export interface Series {
  /** Legend label. */
  name: string;
  /** [x, y] points; a non-finite y breaks the line. */
  points: [number, number][];
  color?: string;
  /** Stroke width (1 thin, 3 bold; default 2). */
  width?: number;
  /** SVG stroke-dasharray, e.g. "6 3". */
  dash?: string;
  /** Shaded band [x, lo, hi] (a spread, e.g. min..max over draws). */
  band?: [number, number, number][];
  /** Draw a dot at each point. */
  markers?: boolean;
  /** Leave out of the legend (default false). */
  hideInLegend?: boolean;
}

export interface RefLine { y: number; label: string; color?: string }

export interface LinePlotSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  xMin?: number;
  xMax?: number;
  yMin?: number;
  yMax?: number;
  /** Logarithmic y axis (values <= 0 are dropped). */
  logY?: boolean;
  /** Whole-number x ticks only (epochs, layer indices). */
  integerX?: boolean;
  /** A line of text under the legend, e.g. "thin = train, bold = test". */
  note?: string;
  refLines?: RefLine[];
  width?: number;
  height?: number;
}

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Number formatting for tick labels: no float noise ("0.30000000000000004" -> "0.3"). */
export function fmtTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(0).replace('e+', 'e');
  return String(Number(v.toPrecision(6)));
}

/** About `count` round tick values in [lo, hi] (steps 1, 2, 5 x 10^k); with `cover`, from
 *  the last round value at or below lo to the first at or above hi. */
export function niceTicks(lo: number, hi: number, count = 5, integer = false, cover = false): number[] {
  if (!(hi > lo)) hi = lo + 1;
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  let step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  if (integer) step = Math.max(1, Math.round(step));
  const out: number[] = [];
  const first = cover ? Math.floor(lo / step + 1e-9) : Math.ceil(lo / step - 1e-9);
  const last = cover ? Math.ceil(hi / step - 1e-9) : Math.floor(hi / step + 1e-9);
  for (let i = first; i <= last; i++) out.push(Number((i * step).toPrecision(12)));
  return out;
}

/** Decades (and 2, 5 between them when the range is short) for a log axis. */
function logTicks(lo: number, hi: number): number[] {
  const a = Math.floor(Math.log10(lo));
  const b = Math.ceil(Math.log10(hi));
  const mults = b - a <= 2 ? [1, 2, 5] : [1];
  const out: number[] = [];
  for (let e = a; e <= b; e++) for (const m of mults) { const v = m * 10 ** e; if (v >= lo * 0.999 && v <= hi * 1.001) out.push(v); }
  return out;
}

/** The frame shared by line plots and bar charts: sizes, margins, the legend's height. */
export interface Frame { W: number; H: number; L: number; R: number; T: number; B: number; plotH: number }

export interface LegendEntry { name: string; color: string; width?: number; dash?: string; kind?: 'line' | 'box' }

/** Rows of legend entries that fit the width (about 7.2 px per character at 12 px). */
export function legendLayout(entries: LegendEntry[], width: number): { rows: { e: LegendEntry; x: number }[][] } {
  const rows: { e: LegendEntry; x: number }[][] = [[]];
  let x = 0;
  for (const e of entries) {
    const w = 30 + 7.2 * e.name.length + 16;
    if (x > 0 && x + w > width) { rows.push([]); x = 0; }
    rows[rows.length - 1].push({ e, x });
    x += w;
  }
  return { rows: rows.filter((r) => r.length) };
}

export function frame(opts: { width?: number; height?: number; legendRows: number; note?: boolean; bottomExtra?: number }): Frame {
  const W = opts.width ?? 600;
  const plotH = (opts.height ?? 360) - 90;
  const L = 70;
  const R = 20;
  const T = 40;
  const B = 56 + (opts.bottomExtra ?? 0) + opts.legendRows * 20 + (opts.note ? 18 : 0);
  return { W, H: T + plotH + B, L, R, T, B, plotH };
}

/** The svg element's opening tag and background; the caller closes it. */
export function svgOpen(f: Frame, title: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" class="plot" viewBox="0 0 ${f.W} ${f.H}" width="${f.W}" height="${f.H}" role="img" aria-label="${escapeXml(title)}" font-family="${FONT_FAMILY}" font-size="12">
<title>${escapeXml(title)}</title>
<rect width="${f.W}" height="${f.H}" fill="white"/>
<text class="plot-title" x="${f.L}" y="22" font-size="14" font-weight="bold">${escapeXml(title)}</text>`;
}

/** The y axis (ticks, grid, label) of a frame. */
export function yAxisSvg(f: Frame, ticks: number[], y: (v: number) => number, label: string): string {
  const parts = ticks.map((v) => `<line x1="${f.L}" x2="${f.W - f.R}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#e5e5e5"/>` +
    `<text class="tick" x="${f.L - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${fmtTick(v)}</text>`);
  const cy = f.T + f.plotH / 2;
  return `<g class="axis y-axis">${parts.join('')}<line x1="${f.L}" y1="${f.T}" x2="${f.L}" y2="${f.T + f.plotH}" stroke="black"/>` +
    `<text class="axis-label" x="16" y="${cy}" text-anchor="middle" transform="rotate(-90 16 ${cy})">${escapeXml(label)}</text></g>`;
}

/** Legend rows and the note, under the x axis label. */
export function legendSvg(f: Frame, entries: LegendEntry[], note?: string, bottomExtra = 0): string {
  const { rows } = legendLayout(entries, f.W - f.L - f.R);
  const y0 = f.T + f.plotH + 54 + bottomExtra;
  const out: string[] = ['<g class="legend">'];
  rows.forEach((row, r) => {
    const y = y0 + r * 20;
    for (const { e, x } of row) {
      const x0 = f.L + x;
      out.push(e.kind === 'box'
        ? `<rect x="${x0}" y="${y - 9}" width="22" height="10" fill="${e.color}"/>`
        : `<line x1="${x0}" x2="${x0 + 22}" y1="${y - 4}" y2="${y - 4}" stroke="${e.color}" stroke-width="${e.width ?? 2}"${e.dash ? ` stroke-dasharray="${e.dash}"` : ''}/>`);
      out.push(`<text x="${x0 + 28}" y="${y}">${escapeXml(e.name)}</text>`);
    }
  });
  if (note) out.push(`<text class="note" x="${f.L}" y="${y0 + rows.length * 20}" fill="#444">${escapeXml(note)}</text>`);
  out.push('</g>');
  return out.join('');
}

/**
 * A line plot with axes, units, a legend and optional bands and reference lines.
 * @example linePlotSvg({ title: 'error', xLabel: 'epoch', yLabel: 'error (%)', series: [{ name: 'test', points: [[1, 12], [2, 9]] }] })
 */
export function linePlotSvg(spec: LinePlotSpec): string {
  const series = spec.series.map((s, i) => ({ ...s, color: s.color ?? PALETTE[i % PALETTE.length] }));
  const ok = (v: number): boolean => Number.isFinite(v) && (!spec.logY || v > 0);
  const xs = series.flatMap((s) => s.points.map((p) => p[0])).filter(Number.isFinite);
  const ys = series.flatMap((s) => [...s.points.map((p) => p[1]), ...(s.band ?? []).flatMap((b) => [b[1], b[2]])]).concat((spec.refLines ?? []).map((r) => r.y)).filter(ok);
  let x0 = spec.xMin ?? (xs.length ? Math.min(...xs) : 0);
  let x1 = spec.xMax ?? (xs.length ? Math.max(...xs) : 1);
  if (!(x1 > x0)) { x0 -= 0.5; x1 += 0.5; }
  let y0 = spec.yMin ?? (spec.logY ? (ys.length ? Math.min(...ys) : 1) : Math.min(0, ...ys));
  let y1 = spec.yMax ?? (ys.length ? Math.max(...ys) : 1);
  if (!(y1 > y0)) { y1 = spec.logY ? y0 * 10 : y0 + 1; }
  const entries: LegendEntry[] = series.filter((s) => !s.hideInLegend).map((s) => ({ name: s.name, color: s.color, width: s.width, dash: s.dash }));
  for (const r of spec.refLines ?? []) entries.push({ name: r.label, color: r.color ?? '#777', width: 1, dash: '4 3' });
  const f = frame({ width: spec.width, height: spec.height, legendRows: legendLayout(entries, (spec.width ?? 600) - 90).rows.length, note: !!spec.note });
  let yTicks: number[];
  if (spec.logY) {
    y0 = 10 ** (Math.floor(Math.log10(y0) * 2) / 2);
    y1 = 10 ** (Math.ceil(Math.log10(y1) * 2) / 2);
    yTicks = logTicks(y0, y1);
  } else {
    yTicks = niceTicks(y0, y1, 5, false, true);
    if (spec.yMax === undefined) y1 = Math.max(y1, yTicks[yTicks.length - 1]);
    if (spec.yMin === undefined) y0 = Math.min(y0, yTicks[0]);
  }
  const X = (v: number): number => f.L + ((f.W - f.L - f.R) * (v - x0)) / (x1 - x0);
  const Y = spec.logY
    ? (v: number): number => f.T + f.plotH * (1 - (Math.log10(v) - Math.log10(y0)) / (Math.log10(y1) - Math.log10(y0)))
    : (v: number): number => f.T + f.plotH * (1 - (v - y0) / (y1 - y0));
  const xTicks = niceTicks(x0, x1, Math.min(10, spec.integerX ? Math.max(1, Math.round(x1 - x0)) : 8), spec.integerX).filter((v) => v >= x0 - 1e-9 && v <= x1 + 1e-9);
  const out: string[] = [svgOpen(f, spec.title)];
  out.push(yAxisSvg(f, yTicks.filter((v) => v >= y0 - 1e-12 && v <= y1 * (1 + 1e-12)), Y, spec.yLabel));
  const bottom = f.T + f.plotH;
  out.push(`<g class="axis x-axis">${xTicks.map((v) => `<line x1="${X(v).toFixed(1)}" x2="${X(v).toFixed(1)}" y1="${bottom}" y2="${bottom + 5}" stroke="black"/>` +
    `<text class="tick" x="${X(v).toFixed(1)}" y="${bottom + 19}" text-anchor="middle">${fmtTick(v)}</text>`).join('')}` +
    `<line x1="${f.L}" y1="${bottom}" x2="${f.W - f.R}" y2="${bottom}" stroke="black"/>` +
    `<text class="axis-label" x="${(f.L + f.W - f.R) / 2}" y="${bottom + 40}" text-anchor="middle">${escapeXml(spec.xLabel)}</text></g>`);
  for (const r of spec.refLines ?? []) {
    if (!ok(r.y)) continue;
    out.push(`<line class="ref" x1="${f.L}" x2="${f.W - f.R}" y1="${Y(r.y).toFixed(1)}" y2="${Y(r.y).toFixed(1)}" stroke="${r.color ?? '#777'}" stroke-dasharray="4 3"/>`);
  }
  for (const s of series) {
    const parts: string[] = [`<g class="series" data-name="${escapeXml(s.name)}">`];
    const band = (s.band ?? []).filter((b) => ok(b[1]) && ok(b[2]) && Number.isFinite(b[0]));
    if (band.length > 1) {
      const up = band.map((b) => `${X(b[0]).toFixed(1)},${Y(b[2]).toFixed(1)}`);
      const down = band.slice().reverse().map((b) => `${X(b[0]).toFixed(1)},${Y(b[1]).toFixed(1)}`);
      parts.push(`<path class="band" d="M${up.join(' L')} L${down.join(' L')} Z" fill="${s.color}" fill-opacity="0.18" stroke="none"/>`);
    } else if (band.length === 1 && band[0][2] > band[0][1]) {
      // One x (a single epoch): the spread as an error bar.
      const [x, lo, hi] = band[0];
      parts.push(`<path class="band" d="M${X(x).toFixed(1)},${Y(lo).toFixed(1)} L${X(x).toFixed(1)},${Y(hi).toFixed(1)}" stroke="${s.color}" stroke-opacity="0.5" stroke-width="6" fill="none"/>`);
    }
    let d = '';
    let pen = false;
    for (const [x, y] of s.points) {
      if (!Number.isFinite(x) || !ok(y)) { pen = false; continue; }
      d += `${pen ? 'L' : 'M'}${X(x).toFixed(1)},${Y(y).toFixed(1)} `;
      pen = true;
    }
    parts.push(`<path class="line" d="${d.trim()}" fill="none" stroke="${s.color}" stroke-width="${s.width ?? 2}"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''} stroke-linejoin="round"/>`);
    if (s.markers) for (const [x, y] of s.points) if (Number.isFinite(x) && ok(y)) parts.push(`<circle cx="${X(x).toFixed(1)}" cy="${Y(y).toFixed(1)}" r="2.5" fill="${s.color}"/>`);
    parts.push('</g>');
    out.push(parts.join(''));
  }
  out.push(legendSvg(f, entries, spec.note));
  out.push('</svg>\n');
  return out.join('\n');
}
