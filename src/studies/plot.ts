// The studies' plots: line plots with error bands (src/plot/svg.ts, shared with the
// trainer's errors.svg), grouped bar charts on the same frame, the inline form of an SVG for
// the HTML pages (width 100%, scales with its viewBox), and PNG (src/plot/png.ts). Not here:
// what a study plots (each study file) or the page around the plots.

import {
  escapeXml, fmtTick, frame, legendLayout, legendSvg, linePlotSvg, niceTicks, PALETTE, svgOpen, yAxisSvg,
  type LegendEntry, type LinePlotSpec, type RefLine, type Series,
} from '../plot/svg.js';
import { checkFonts, FONT_FILES, svgToPng } from '../plot/png.js';

export { linePlotSvg, PALETTE, type LinePlotSpec, type Series, type RefLine };
export { checkFonts, FONT_FILES, svgToPng };

export interface BarGroup {
  name: string;
  /** One value per category; null draws a grey cross (no value, e.g. a block that cannot be deleted). */
  values: (number | null)[];
  color?: string;
}

export interface BarChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  categories: string[];
  groups: BarGroup[];
  yMax?: number;
  refLines?: RefLine[];
  note?: string;
  width?: number;
  height?: number;
}

/**
 * Grouped bars: one cluster per category, one bar per group, a legend of the groups.
 * @example barChartSvg({ title: 'error', xLabel: 'option', yLabel: 'error (%)', categories: ['A', 'B'], groups: [{ name: 'test', values: [9.1, 8.7] }] })
 */
export function barChartSvg(spec: BarChartSpec): string {
  const groups = spec.groups.map((g, i) => ({ ...g, color: g.color ?? PALETTE[i % PALETTE.length] }));
  const entries: LegendEntry[] = groups.map((g) => ({ name: g.name, color: g.color, kind: 'box' as const }));
  for (const r of spec.refLines ?? []) entries.push({ name: r.label, color: r.color ?? '#777', width: 1, dash: '4 3' });
  const W = spec.width ?? 600;
  const plotW = W - 90;
  const n = Math.max(1, spec.categories.length);
  const longest = Math.max(1, ...spec.categories.map((c) => c.length));
  const rotate = longest * 7.2 > (plotW / n) * 0.95;
  const bottomExtra = rotate ? Math.min(60, longest * 5.2) : 0;
  const f = frame({ width: W, height: spec.height, legendRows: legendLayout(entries, plotW).rows.length, note: !!spec.note, bottomExtra });
  const values = groups.flatMap((g) => g.values).filter((v): v is number => v !== null && Number.isFinite(v));
  const top = spec.yMax ?? Math.max(1e-9, ...values, ...(spec.refLines ?? []).map((r) => r.y));
  const ticks = niceTicks(0, top, 5, false, true);
  const y1 = spec.yMax ?? ticks[ticks.length - 1];
  const Y = (v: number): number => f.T + f.plotH * (1 - Math.min(v, y1) / y1);
  const slot = (f.W - f.L - f.R) / n;
  const barW = Math.max(1, (slot * 0.8) / Math.max(1, groups.length));
  const bottom = f.T + f.plotH;
  const out: string[] = [svgOpen(f, spec.title), yAxisSvg(f, ticks.filter((t) => t <= y1 + 1e-12), Y, spec.yLabel)];
  const labels = spec.categories.map((c, i) => {
    const cx = f.L + slot * (i + 0.5);
    return rotate
      ? `<text class="tick" x="${cx.toFixed(1)}" y="${bottom + 14}" text-anchor="end" transform="rotate(-45 ${cx.toFixed(1)} ${bottom + 14})">${escapeXml(c)}</text>`
      : `<text class="tick" x="${cx.toFixed(1)}" y="${bottom + 19}" text-anchor="middle">${escapeXml(c)}</text>`;
  });
  out.push(`<g class="axis x-axis">${labels.join('')}<line x1="${f.L}" y1="${bottom}" x2="${f.W - f.R}" y2="${bottom}" stroke="black"/>` +
    `<text class="axis-label" x="${(f.L + f.W - f.R) / 2}" y="${bottom + 40 + bottomExtra}" text-anchor="middle">${escapeXml(spec.xLabel)}</text></g>`);
  groups.forEach((g, gi) => {
    const parts: string[] = [`<g class="series bars" data-name="${escapeXml(g.name)}">`];
    g.values.forEach((v, i) => {
      const x = f.L + slot * i + slot * 0.1 + gi * barW;
      if (v === null || !Number.isFinite(v)) {
        parts.push(`<text class="missing" x="${(x + barW / 2).toFixed(1)}" y="${bottom - 3}" text-anchor="middle" fill="#999" font-size="10">×</text>`);
        return;
      }
      const y = Y(Math.max(0, v));
      parts.push(`<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${(barW * 0.92).toFixed(1)}" height="${Math.max(0, bottom - y).toFixed(1)}" fill="${g.color}"><title>${escapeXml(`${g.name}, ${spec.categories[i]}: ${fmtTick(v)}`)}</title></rect>`);
    });
    parts.push('</g>');
    out.push(parts.join(''));
  });
  for (const r of spec.refLines ?? []) {
    if (!Number.isFinite(r.y)) continue;
    out.push(`<line class="ref" x1="${f.L}" x2="${f.W - f.R}" y1="${Y(r.y).toFixed(1)}" y2="${Y(r.y).toFixed(1)}" stroke="${r.color ?? '#777'}" stroke-dasharray="4 3"/>`);
  }
  out.push(legendSvg(f, entries, spec.note, bottomExtra));
  out.push('</svg>\n');
  return out.join('\n');
}

/** The SVG as it goes inline in a page: width 100% and no fixed height, so it scales with
 *  its viewBox to the column (laptop or phone). */
export function inlineSvg(svg: string): string {
  return svg.replace(/^<svg([^>]*?) width="\d+(\.\d+)?" height="\d+(\.\d+)?"/, '<svg$1 width="100%"').replace(/\n$/, '');
}

