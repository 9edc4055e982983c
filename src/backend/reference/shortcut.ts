// The option A shortcut on plain NCHW arrays (the judge of native/shortcut.cc):
// y[n, before + c, h, w] = x[n, c, h * s, w * s], zeros in the other channels; the backward
// moves dy's data channels back to the strided positions of a zero dx.

import type { ShortcutAGeometry } from '../backend.js';

/** @example const y = shortcutA(new Float32Array(1 * 1 * 2 * 2), { N: 1, C: 1, H: 2, W: 2, K: 2, OH: 1, OW: 1, stride: 2, before: 0 }); */
export function shortcutA(x: Float32Array, g: ShortcutAGeometry): Float32Array {
  const { N, C, H, W, K, OH, OW, stride: s, before } = g;
  const y = new Float32Array(N * K * OH * OW);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      for (let h = 0; h < OH; h++) {
        const xr = ((n * C + c) * H + h * s) * W, yr = ((n * K + before + c) * OH + h) * OW;
        for (let w = 0; w < OW; w++) y[yr + w] = x[xr + w * s];
      }
    }
  }
  return y;
}

/** @example const dx = shortcutABackward(new Float32Array(1 * 2 * 1 * 1), { N: 1, C: 1, H: 2, W: 2, K: 2, OH: 1, OW: 1, stride: 2, before: 0 }); */
export function shortcutABackward(dy: Float32Array, g: ShortcutAGeometry): Float32Array {
  const { N, C, H, W, K, OH, OW, stride: s, before } = g;
  const dx = new Float32Array(N * C * H * W);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      for (let h = 0; h < OH; h++) {
        const xr = ((n * C + c) * H + h * s) * W, yr = ((n * K + before + c) * OH + h) * OW;
        for (let w = 0; w < OW; w++) dx[xr + w * s] = dy[yr + w];
      }
    }
  }
  return dx;
}
