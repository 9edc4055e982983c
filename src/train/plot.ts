// The trainer's plot: training (thin) and test (bold) error per epoch in the paper's style
// (He et al. 2015, Fig. 4 and 6), written as errors.svg and errors.png after every epoch.

import { linePlotSvg, PALETTE } from '../plot/svg.js';
import type { EpochMetrics } from './metrics.js';

/**
 * Training (thin) and test (bold) error in % per epoch, as the paper's Fig. 4 and 6.
 * @example const svg = errorPlotSvg(readMetrics('runs/default/metrics.jsonl'), 'resnet20: error (%)');
 */
export function errorPlotSvg(metrics: EpochMetrics[], title = 'error (%)'): string {
  // A row without the key (a task that counts no errors) is left out.
  const pts = (key: 'train_err' | 'test_err'): [number, number][] => metrics.flatMap((m) => (typeof m[key] === 'number' ? [[m.epoch, 100 * m[key]] as [number, number]] : []));
  return linePlotSvg({
    title, xLabel: 'epoch', yLabel: 'error (%)', xMin: 0, xMax: Math.max(1, ...metrics.map((m) => m.epoch)), integerX: true,
    series: [
      { name: 'train', points: pts('train_err'), color: PALETTE[0], width: 1 },
      { name: 'test', points: pts('test_err'), color: PALETTE[0], width: 3 },
    ],
    note: 'thin = train, bold = test',
  });
}
