// The HTML around the plots: one self-contained page (CSS and SVG inline, no script, no
// network) with, per study, what it shows and which argument of the seeds it tests, the
// plots, a table of the numbers and the exact command. Responsive: one column of plots on a
// phone, two where they fit; tables scroll inside their box, never the page.
// Not here: the plots themselves (plot.ts) or what a study measures.

import { escapeXml } from '../plot/svg.js';
import { inlineSvg } from './plot.js';
import type { Verdict } from './seeds.js';

export interface Figure {
  /** File stem: <id>.svg and <id>.png in the study directory. */
  id: string;
  title: string;
  svg: string;
}

export interface Table {
  caption: string;
  head: string[];
  rows: string[][];
}

export interface Section {
  /** Anchor and study name. */
  id: string;
  title: string;
  /** What the figure shows and which seed argument it tests (two or three sentences). */
  lead: string;
  /** What came out this time, measured (one or two sentences). */
  finding: string;
  /** The seeds' claims, each counted over the seeds. */
  verdicts?: Verdict[];
  figures: Figure[];
  tables: Table[];
  command: string;
  /** The recipe and the data, one line. */
  setup: string;
  createdAt: string;
  /** Links to the files beside the page (index.html only). */
  files?: string[];
}

export const esc = escapeXml;

const CSS = `
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif;color:#1a1a1a;background:#fafafa}
main{max-width:1100px;margin:0 auto;padding:16px}
h1{font-size:1.6rem;margin:.4em 0}
h2{font-size:1.3rem;margin:1.6em 0 .4em;padding-top:.6em;border-top:1px solid #ddd}
p{margin:.5em 0;max-width:75ch}
nav ul{padding-left:1.2em;margin:.3em 0}
.figs{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,440px),1fr));gap:16px;margin:12px 0}
figure{margin:0;background:#fff;border:1px solid #e2e2e2;border-radius:6px;padding:6px;min-width:0}
figure svg{display:block;width:100%;height:auto}
figcaption{font-size:.85rem;color:#555;padding:2px 4px}
.table-wrap{overflow-x:auto;max-width:100%;margin:12px 0;background:#fff;border:1px solid #e2e2e2;border-radius:6px}
table{border-collapse:collapse;font-size:.9rem;min-width:100%}
caption{text-align:left;padding:6px 8px;font-weight:600}
th,td{padding:4px 10px;border-top:1px solid #eee;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}
thead th{background:#f3f3f3}
pre{background:#f1f1f1;padding:8px 10px;border-radius:6px;white-space:pre-wrap;word-break:break-all;font-size:.85rem;margin:.4em 0}
.meta{font-size:.85rem;color:#555}
.finding{background:#eef6ff;border-left:4px solid #0072b2;padding:6px 10px;border-radius:4px}
.verdicts{list-style:none;padding:0;margin:.5em 0;max-width:75ch}
.verdicts li{margin:.3em 0;padding:6px 10px;border-radius:4px;border-left:4px solid #999;background:#f3f3f3;overflow-wrap:anywhere}
.verdicts .holds{border-color:#009e73;background:#eaf7f2}
.verdicts .fails{border-color:#d55e00;background:#fcefe8}
.verdicts .mixed{border-color:#e69f00;background:#fdf5e6}
.tag{font-weight:600}
`;

function tableHtml(t: Table): string {
  return `<div class="table-wrap"><table><caption>${esc(t.caption)}</caption><thead><tr>${t.head.map((h) => `<th scope="col">${esc(h)}</th>`).join('')}</tr></thead>` +
    `<tbody>${t.rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('\n')}</tbody></table></div>`;
}

export function sectionHtml(s: Section): string {
  const figs = s.figures.map((f) => `<figure id="${esc(`${s.id}-${f.id}`)}">${inlineSvg(f.svg)}<figcaption>${esc(f.title)}</figcaption></figure>`).join('\n');
  const files = s.files?.length ? `<p class="meta">Files: ${s.files.map((f) => `<a href="${esc(f)}">${esc(f)}</a>`).join(', ')}</p>` : '';
  const tag = { holds: 'Holds', mixed: 'Mixed', fails: 'Does not hold', open: 'Open' };
  const verdicts = s.verdicts?.length
    ? `<ul class="verdicts">${s.verdicts.map((v) => `<li class="${esc(v.status)}"><span class="tag">${esc(tag[v.status] ?? v.status)}:</span> ${esc(v.text)}</li>`).join('')}</ul>`
    : '';
  return `<section id="${esc(s.id)}">
<h2>${esc(s.title)}</h2>
<p><span class="tag">What it shows and what the seeds claim.</span> ${esc(s.lead)}</p>
<p class="finding"><span class="tag">Measured.</span> ${esc(s.finding)}</p>
${verdicts}
<div class="figs">
${figs}
</div>
${s.tables.map(tableHtml).join('\n')}
<p class="meta">Made by:</p>
<pre><code>${esc(s.command)}</code></pre>
<p class="meta">${esc(s.setup)} · ${esc(s.createdAt)}</p>
${files}
</section>`;
}

/** A whole page: one study (index.html) or several (resnet report). */
export function pageHtml(title: string, sections: Section[], intro?: string): string {
  const nav = sections.length > 1 ? `<nav><ul>${sections.map((s) => `<li><a href="#${esc(s.id)}">${esc(s.title)}</a></li>`).join('')}</ul></nav>` : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
<h1>${esc(title)}</h1>
${intro ? `<p>${esc(intro)}</p>` : ''}
${nav}
${sections.map(sectionHtml).join('\n')}
</main>
</body>
</html>
`;
}
