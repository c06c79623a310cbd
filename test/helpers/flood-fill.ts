/**
 * Independent reference of the OoD segments: breadth-first flood fill from each unlabelled
 * foreground pixel in raster order, then the statistics straight from each component's pixel list.
 * Written for clarity, not speed.
 */
export interface RefSegment {
  id: number;
  area: number;
  bbox: [number, number, number, number];
  centroid: [number, number];
  meanScore: number;
  maxScore: number;
  majorityClass: number | null;
}

/** Foreground of one map: score > threshold (as doubles), and roi != 0 where given. */
export function foreground(scores: Float32Array, threshold: number, roi?: Uint8Array): Uint8Array {
  const m = new Uint8Array(scores.length);
  for (let i = 0; i < scores.length; i++) m[i] = scores[i] > threshold && (!roi || roi[i] !== 0) ? 1 : 0;
  return m;
}

/** Components of a 0/1 mask [h, w], numbered 1.. in raster order of their first pixel. */
export function floodFill(mask: Uint8Array, h: number, w: number, connectivity: 4 | 8): { labels: Uint32Array; pixels: number[][] } {
  const labels = new Uint32Array(h * w);
  const pixels: number[][] = [];
  const steps = connectivity === 8
    ? [[-1, -1], [0, -1], [1, -1], [-1, 0], [1, 0], [-1, 1], [0, 1], [1, 1]]
    : [[0, -1], [-1, 0], [1, 0], [0, 1]];
  for (let start = 0; start < h * w; start++) {
    if (!mask[start] || labels[start]) continue;
    const id = pixels.length + 1;
    const list = [start];
    labels[start] = id;
    for (let head = 0; head < list.length; head++) {
      const x = list[head] % w, y = Math.floor(list[head] / w);
      for (let k = 0; k < steps.length; k++) {
        const nx = x + steps[k][0], ny = y + steps[k][1];
        if (nx < 0 || ny < 0 || nx >= w || ny >= h) continue;
        const j = ny * w + nx;
        if (mask[j] && !labels[j]) {
          labels[j] = id;
          list.push(j);
        }
      }
    }
    pixels.push(list);
  }
  return { labels, pixels };
}

/** Segments of one map with the minArea filter and renumbering, and the matching label image. */
export function referenceSegments(
  scores: Float32Array, h: number, w: number, threshold: number,
  options: { roi?: Uint8Array; prediction?: Int32Array; connectivity?: 4 | 8; minArea?: number } = {},
): { labels: Uint32Array; segments: RefSegment[] } {
  const { labels: raw, pixels } = floodFill(foreground(scores, threshold, options.roi), h, w, options.connectivity ?? 8);
  const minArea = options.minArea ?? 0;
  const remap = new Uint32Array(pixels.length + 1);
  const segments: RefSegment[] = [];
  pixels.forEach((list, k) => {
    if (list.length < minArea) return;
    const id = segments.length + 1;
    remap[k + 1] = id;
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity, sx = 0, sy = 0, sum = 0, max = -Infinity;
    const counts = new Map<number, number>();
    for (const i of list) {
      const x = i % w, y = Math.floor(i / w);
      x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
      sx += x; sy += y; sum += scores[i]; max = Math.max(max, scores[i]);
      if (options.prediction) counts.set(options.prediction[i], (counts.get(options.prediction[i]) ?? 0) + 1);
    }
    let majority: number | null = null;
    if (options.prediction) {
      let best = -1;
      for (const [c, n] of counts) if (n > best || (n === best && c < (majority as number))) { best = n; majority = c; }
    }
    segments.push({
      id, area: list.length, bbox: [x0, y0, x1 - x0 + 1, y1 - y0 + 1], centroid: [sx / list.length, sy / list.length],
      meanScore: sum / list.length, maxScore: max, majorityClass: majority,
    });
  });
  const labels = raw.map((l) => remap[l]);
  return { labels, segments };
}

/**
 * Whether two label images describe the same partition: a bijection between their labels, with
 * background (0) mapped to itself. Returns a description of the first difference, or null.
 */
export function partitionDifference(a: Uint32Array, b: Uint32Array): string | null {
  if (a.length !== b.length) return `lengths ${a.length} and ${b.length}`;
  const ab = new Map<number, number>(), ba = new Map<number, number>();
  for (let i = 0; i < a.length; i++) {
    if ((a[i] === 0) !== (b[i] === 0)) return `pixel ${i}: ${a[i]} vs ${b[i]} (background in one only)`;
    const x = ab.get(a[i]), y = ba.get(b[i]);
    if (x === undefined && y === undefined) {
      ab.set(a[i], b[i]);
      ba.set(b[i], a[i]);
    } else if (x !== b[i] || y !== a[i]) return `pixel ${i}: label ${a[i]} ↔ ${b[i]} contradicts an earlier pairing`;
  }
  return null;
}
