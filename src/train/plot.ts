// Training and test error per epoch as a hand-made SVG, in the paper's style (He et al. 2015,
// Fig. 4 and 6: thin line training error, bold line test error). Pure string building; the
// trainer writes it atomically next to metrics.jsonl after every epoch.

import type { EpochMetrics } from './metrics.js';

export function errorPlotSvg(metrics: EpochMetrics[], title = 'error (%)'): string {
  const W = 480;
  const H = 320;
  const L = 48;
  const R = 16;
  const T = 24;
  const B = 40;
  const n = Math.max(1, ...metrics.map((m) => m.epoch));
  const ymax = Math.max(1, ...metrics.flatMap((m) => [m.train_err, m.test_err].map((v) => (Number.isFinite(v) ? 100 * v : 0))));
  const top = Math.ceil(ymax / 5) * 5;
  const x = (e: number): number => L + ((W - L - R) * e) / n;
  const y = (v: number): number => T + (H - T - B) * (1 - (100 * v) / top);
  const line = (key: 'train_err' | 'test_err'): string =>
    metrics.map((m, i) => `${i ? 'L' : 'M'}${x(m.epoch).toFixed(1)},${y(m[key]).toFixed(1)}`).join(' ');
  const ticks: string[] = [];
  for (let v = 0; v <= top; v += Math.max(1, Math.round(top / 5))) {
    ticks.push(`<line x1="${L}" x2="${W - R}" y1="${y(v / 100).toFixed(1)}" y2="${y(v / 100).toFixed(1)}" stroke="#eee"/>` +
      `<text x="${L - 6}" y="${(y(v / 100) + 4).toFixed(1)}" text-anchor="end">${v}</text>`);
  }
  const step = Math.max(1, Math.ceil(n / 10));
  for (let e = 0; e <= n; e += step) ticks.push(`<text x="${x(e).toFixed(1)}" y="${H - B + 16}" text-anchor="middle">${e}</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">
<rect width="${W}" height="${H}" fill="white"/>
${ticks.join('\n')}
<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="black"/><line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="black"/>
<path d="${line('train_err')}" fill="none" stroke="#1f77b4" stroke-width="1"/>
<path d="${line('test_err')}" fill="none" stroke="#1f77b4" stroke-width="3"/>
<text x="${(L + W - R) / 2}" y="${H - 6}" text-anchor="middle">epoch</text>
<text x="${L}" y="${T - 8}">${title}: thin = train, bold = test</text>
</svg>
`;
}
