// torchvision.ops.nms's CPU kernel (nms_kernel_impl, v0.14) on host arrays: the reference
// backend's NMS and the judge of the native one (native/detect.cc). Float32 arithmetic in the
// kernel's order (Math.fround where torch rounds); the boxes sorted by decreasing score, ties
// in index order, NaN scores last. Boxes that do not intersect have IoU 0 and cannot drop each
// other (for a threshold >= 0), so a kept box is compared only with the boxes near it (a grid
// of cells): the kept set is the one the all-pairs loop gives (test/detect_boxes.test.ts).

const f = Math.fround;

/**
 * Indices kept by NMS, by decreasing score.
 * @example nms(new Float32Array([0, 0, 10, 10, 1, 1, 10, 10]), new Float32Array([0.9, 0.8]), 0.5)  // Int32Array [0]
 */
export function nms(boxes: Float32Array, scores: Float32Array, iouThreshold: number): Int32Array {
  const n = scores.length;
  const order = Int32Array.from(Array.from({ length: n }, (_, i) => i).sort((p, q) => {
    const a = scores[p], b = scores[q];
    if (Number.isNaN(a) || Number.isNaN(b)) return Number(Number.isNaN(a)) - Number(Number.isNaN(b));
    return b - a;
  }));
  const sorted = SortedBoxes.of(boxes, order);
  const suppressed = iouThreshold >= 0 && n > GRID_MIN_BOXES ? sorted.suppressNear(iouThreshold) : sorted.suppressAll(iouThreshold);
  const keep: number[] = [];
  for (let a = 0; a < n; a++) if (!suppressed[a]) keep.push(order[a]);
  return Int32Array.from(keep);
}

/** Below this many boxes the all-pairs loop is as fast as building the grid. */
const GRID_MIN_BOXES = 64;

/** Boxes in score order, one array per coordinate (the inner loops read memory in order). */
class SortedBoxes {
  private constructor(readonly n: number, readonly x1: Float32Array, readonly y1: Float32Array, readonly x2: Float32Array, readonly y2: Float32Array, readonly area: Float32Array) {}

  static of(boxes: Float32Array, order: Int32Array): SortedBoxes {
    const n = order.length;
    const x1 = new Float32Array(n), y1 = new Float32Array(n), x2 = new Float32Array(n), y2 = new Float32Array(n), area = new Float32Array(n);
    for (let k = 0; k < n; k++) {
      const i = order[k];
      x1[k] = boxes[4 * i]; y1[k] = boxes[4 * i + 1]; x2[k] = boxes[4 * i + 2]; y2[k] = boxes[4 * i + 3];
      area[k] = f(f(boxes[4 * i + 2] - boxes[4 * i]) * f(boxes[4 * i + 3] - boxes[4 * i + 1]));
    }
    return new SortedBoxes(n, x1, y1, x2, y2, area);
  }

  /** Whether box b (later in the order) is dropped by kept box a: torchvision's kernel's
   *  arithmetic (std::max / std::min as `a < b ? b : a`, float32 throughout, the float IoU
   *  compared with the double threshold). */
  private drops(a: number, b: number, thr: number): boolean {
    const { x1, y1, x2, y2, area } = this;
    const xx1 = x1[a] < x1[b] ? x1[b] : x1[a], xx2 = x2[b] < x2[a] ? x2[b] : x2[a];
    const yy1 = y1[a] < y1[b] ? y1[b] : y1[a], yy2 = y2[b] < y2[a] ? y2[b] : y2[a];
    const dw = f(xx2 - xx1), dh = f(yy2 - yy1);
    const inter = f((0 < dw ? dw : 0) * (0 < dh ? dh : 0));
    return f(inter / f(f(area[a] + area[b]) - inter)) > thr;
  }

  /** Marks every box after kept box a that a drops. */
  private dropLater(a: number, suppressed: Uint8Array, thr: number): void {
    for (let b = a + 1; b < this.n; b++) if (!suppressed[b] && this.drops(a, b, thr)) suppressed[b] = 1;
  }

  /** torchvision's loop: every kept box against every later one. */
  suppressAll(thr: number): Uint8Array {
    const suppressed = new Uint8Array(this.n);
    for (let a = 0; a < this.n; a++) if (!suppressed[a]) this.dropLater(a, suppressed, thr);
    return suppressed;
  }

  /**
   * The same result for thr >= 0, comparing a kept box only with the boxes that can touch it.
   * A box is filed under the grid cell of its (x1, y1); one no wider or taller than `reach`
   * (90% of the boxes are) touches box a only if x1a - reach < x1b < x2a and the same for y,
   * so a's candidates are in the cells over that range (floor of a monotone function keeps
   * the cell range exact). Bigger boxes and boxes with a non-finite coordinate are compared
   * with every later box.
   */
  suppressNear(thr: number): Uint8Array {
    const { n, x1, y1, x2, y2 } = this;
    const side = new Float32Array(n);
    let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    for (let k = 0; k < n; k++) {
      const w = x2[k] - x1[k], h = y2[k] - y1[k];
      side[k] = Number.isFinite(w) && Number.isFinite(h) ? Math.max(w, h, 0) : Infinity;
      if (side[k] !== Infinity) {
        if (x1[k] < minX) minX = x1[k];
        if (y1[k] < minY) minY = y1[k];
        if (x1[k] > maxX) maxX = x1[k];
        if (y1[k] > maxY) maxY = y1[k];
      }
    }
    const reach = Math.max(Float32Array.from(side).sort()[Math.floor(0.9 * (n - 1))], 1e-3);
    const cell = reach / 2;
    const cols = Math.floor((maxX - minX) / cell) + 1, rows = Math.floor((maxY - minY) / cell) + 1;
    if (!Number.isFinite(reach) || !(cols * rows > 1) || cols * rows > 4 * n) return this.suppressAll(thr);
    const colOf = (x: number): number => Math.min(cols - 1, Math.max(0, Math.floor((x - minX) / cell)));
    const rowOf = (y: number): number => Math.min(rows - 1, Math.max(0, Math.floor((y - minY) / cell)));
    // Each cell's boxes in score order; the big ones in a list of their own.
    const cells: number[][] = Array.from({ length: cols * rows }, () => []);
    const big: number[] = [];
    for (let k = 0; k < n; k++) {
      if (side[k] > reach) big.push(k);
      else cells[rowOf(y1[k]) * cols + colOf(x1[k])].push(k);
    }
    const suppressed = new Uint8Array(n);
    for (let a = 0; a < n; a++) {
      if (suppressed[a]) continue;
      if (side[a] > reach) {
        this.dropLater(a, suppressed, thr);
        continue;
      }
      const c0 = colOf(x1[a] - reach), c1 = colOf(x2[a]), r0 = rowOf(y1[a] - reach), r1 = rowOf(y2[a]);
      for (let r = r0; r <= r1; r++) {
        for (let c = c0; c <= c1; c++) {
          for (const b of cells[r * cols + c]) if (b > a && !suppressed[b] && this.drops(a, b, thr)) suppressed[b] = 1;
        }
      }
      for (const b of big) if (b > a && !suppressed[b] && this.drops(a, b, thr)) suppressed[b] = 1;
    }
    return suppressed;
  }
}
