// Comparing detections or proposals against expected ones, allowing near-tied scores to swap.

import assert from 'node:assert/strict';

export interface Expected { boxes: number[]; scores: number[]; labels?: number[] }

/** Each expected box i matches a box j within `window` places of i (near-tied scores may swap)
 *  with the same label, a score within scoreTol and every coordinate within boxTol. */
export function assertMatched(what: string, got: { boxes: Float32Array; scores: Float32Array; labels?: Int32Array }, want: Expected, count: number, boxTol: number, scoreTol: number, window = 4): void {
  const used = new Set<number>();
  for (let i = 0; i < count; i++) {
    let found = -1;
    let worst = '';
    for (let j = Math.max(0, i - window); j < Math.min(got.scores.length, i + window + 1); j++) {
      if (used.has(j)) continue;
      if (want.labels && got.labels && got.labels[j] !== want.labels[i]) continue;
      const ds = Math.abs(got.scores[j] - want.scores[i]);
      let db = 0;
      for (let c = 0; c < 4; c++) db = Math.max(db, Math.abs(got.boxes[4 * j + c] - want.boxes[4 * i + c]));
      if (ds <= scoreTol && db <= boxTol) { found = j; break; }
      if (j === i) worst = `at ${i}: score ${got.scores[j]} vs ${want.scores[i]}, box [${Array.from(got.boxes.subarray(4 * j, 4 * j + 4)).join(', ')}] vs [${want.boxes.slice(4 * i, 4 * i + 4).join(', ')}]`;
    }
    assert.ok(found >= 0, `${what}: expected #${i} has no match within ${window} places; ${worst}`);
    used.add(found);
  }
}
