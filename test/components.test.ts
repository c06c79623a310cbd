/**
 * The native connected components (native/core/components.cc, binding components_binding.cc)
 * against an independent flood fill: thousands of seeded random masks of every shape and density,
 * patterns where 4- and 8-connectivity differ, strips of large maps, ROI, minArea, statistics; the
 * CPU emulation of the CUDA labeling against the CPU; bad input and a fuzz of malformed calls.
 */
import { types } from 'node:util';
import { Worker } from 'node:worker_threads';
import { native, type NativeComponentsOptions, type NativeComponentsResult } from '../src/addon';
import { rng } from './helpers/reference';
import { expectThrow } from './helpers/errors';
import { floodFill, partitionDifference, referenceSegments, type RefSegment } from './helpers/flood-fill';
import { settle } from './helpers/fuzz';

type Rand = () => number;

/** The segments of image n from the native columns, as objects. */
function segmentsOf(result: NativeComponentsResult, n: number): RefSegment[] {
  const c = result.segments;
  let first = 0;
  for (let k = 0; k < n; k++) first += c.counts[k];
  const out: RefSegment[] = [];
  for (let i = first; i < first + c.counts[n]; i++)
    out.push({
      id: i - first + 1,
      area: c.area[i],
      bbox: [c.bbox[4 * i], c.bbox[4 * i + 1], c.bbox[4 * i + 2], c.bbox[4 * i + 3]],
      centroid: [c.centroid[2 * i], c.centroid[2 * i + 1]],
      meanScore: c.meanScore[i],
      maxScore: c.maxScore[i],
      majorityClass: c.majorityClass ? c.majorityClass[i] : null,
    });
  return out;
}

function close(a: number, b: number): boolean {
  return Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b));
}

/** Every difference between the native result for image n and the reference, as text (empty = equal). */
function differences(result: NativeComponentsResult, n: number, ref: { labels: Uint32Array; segments: RefSegment[] }): string[] {
  const problems: string[] = [];
  const plane = ref.labels.length;
  if (result.labels) {
    const labels = result.labels.subarray(n * plane, (n + 1) * plane);
    const partition = partitionDifference(labels, ref.labels);
    if (partition) problems.push(`partition: ${partition}`);
    else if (!labels.every((v, i) => v === ref.labels[i])) problems.push('same partition but not numbered in raster order of first pixels');
  }
  const segs = segmentsOf(result, n);
  if (segs.length !== ref.segments.length) return [...problems, `${segs.length} segments instead of ${ref.segments.length}`];
  segs.forEach((s, i) => {
    const r = ref.segments[i];
    const ok = s.id === r.id && s.area === r.area && s.bbox.every((v, k) => v === r.bbox[k]) && close(s.centroid[0], r.centroid[0]) &&
      close(s.centroid[1], r.centroid[1]) && close(s.meanScore, r.meanScore) && s.maxScore === r.maxScore && s.majorityClass === r.majorityClass;
    if (!ok) problems.push(`segment ${i + 1}: ${JSON.stringify(s)} vs reference ${JSON.stringify(r)}`);
  });
  return problems;
}

function uniformScores(r: Rand, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => r());
}

/** Scores in [0.5, 1) where set, [0, 0.5) elsewhere: threshold 0.5 gives the mask. */
function scoresOfMask(r: Rand, mask: (x: number, y: number) => boolean, h: number, w: number): Float32Array {
  const s = new Float32Array(h * w);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) s[y * w + x] = mask(x, y) ? 0.5 + 0.49 * r() + 0.001 : 0.5 * r();
  return s;
}

/** A square spiral one pixel wide with one-pixel gaps between its turns. */
function spiral(h: number, w: number): Uint8Array {
  const m = new Uint8Array(h * w);
  const inside = (x: number, y: number) => x >= 0 && y >= 0 && x < w && y < h;
  const dirs = [[1, 0], [0, 1], [-1, 0], [0, -1]];
  let x = 0, y = 0, d = 0, turns = 0;
  m[0] = 1;
  while (turns < 2) {
    const [dx, dy] = dirs[d];
    const nx = x + dx, ny = y + dy;
    const free = inside(nx, ny) && !m[ny * w + nx] && (!inside(nx + dx, ny + dy) || !m[(ny + dy) * w + nx + dx]);
    if (free) {
      x = nx; y = ny; m[y * w + x] = 1; turns = 0;
    } else {
      d = (d + 1) % 4; turns++;
    }
  }
  return m;
}

function randomClasses(r: Rand, n: number, classes: number): Int32Array {
  return Int32Array.from({ length: n }, () => Math.floor(r() * classes));
}

async function check(scores: Float32Array, h: number, w: number, threshold: number, options: Partial<NativeComponentsOptions> & { connectivity?: 4 | 8 }, where: string): Promise<void> {
  const result = await native.components({ scores, dims: [1, h, w], threshold, ...options });
  const ref = referenceSegments(scores, h, w, threshold, options);
  const problems = differences(result, 0, ref);
  if (problems.length) throw new Error(`${where}: ${problems.slice(0, 3).join('; ')}`);
}

const DENSITIES = [0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1];

describe('components vs flood fill', () => {
  test('1500 random masks of every shape and density, 8- and 4-connectivity, with statistics', async () => {
    const r = rng(41);
    let cases = 0, segments = 0;
    for (let i = 0; i < 1500; i++) {
      const kind = i % 5;
      const n = 1 + Math.floor(r() * 64);
      const [h, w] = kind === 0 ? [1, n] : kind === 1 ? [n, 1] : i < 10 ? [1, 1] : [1 + Math.floor(r() * 64), 1 + Math.floor(r() * 64)];
      const density = DENSITIES[i % DENSITIES.length];
      const scores = uniformScores(r, h * w);
      // density 1 → threshold below every score, 0 → none above.
      const threshold = density === 1 ? -1 : 1 - density;
      const prediction = r() < 0.5 ? randomClasses(r, h * w, 1 + Math.floor(r() * 5)) : undefined;
      for (const connectivity of [8, 4] as const) {
        await check(scores, h, w, threshold, { connectivity, prediction }, `case ${i} ${h}×${w} d=${density} c=${connectivity}`);
        cases++;
      }
      segments += referenceSegments(scores, h, w, threshold).segments.length;
    }
    expect(cases).toBe(3000);
    expect(segments).toBeGreaterThan(10000);
  });

  test('patterns: checkerboards, spirals, diagonal stripes, all set, none set', async () => {
    const r = rng(7);
    const sizes: [number, number][] = [[1, 1], [1, 9], [9, 1], [2, 2], [5, 8], [17, 13], [64, 64], [33, 65]];
    for (const [h, w] of sizes) {
      const patterns: Record<string, (x: number, y: number) => boolean> = {
        checker: (x, y) => (x + y) % 2 === 0,
        checker2: (x, y) => (Math.floor(x / 2) + Math.floor(y / 2)) % 2 === 0,
        diagonal: (x, y) => (x - y + 3 * w) % 3 === 0,
        antidiagonal: (x, y) => (x + y) % 4 === 0,
        all: () => true,
        none: () => false,
      };
      const sp = spiral(h, w);
      patterns.spiral = (x, y) => sp[y * w + x] === 1;
      for (const [name, mask] of Object.entries(patterns)) {
        const scores = scoresOfMask(r, mask, h, w);
        for (const connectivity of [8, 4] as const) await check(scores, h, w, 0.5, { connectivity }, `${name} ${h}×${w} c=${connectivity}`);
      }
    }
    // A checkerboard is one component with 8-connectivity and all single pixels with 4.
    const scores = scoresOfMask(r, (x, y) => (x + y) % 2 === 0, 6, 6);
    expect((await native.components({ scores, dims: [1, 6, 6], threshold: 0.5 })).segments.counts[0]).toBe(1);
    expect((await native.components({ scores, dims: [1, 6, 6], threshold: 0.5, connectivity: 4 })).segments.counts[0]).toBe(18);
    // The spiral is one long component either way.
    const sp = spiral(40, 50);
    const s = scoresOfMask(r, (x, y) => sp[y * 50 + x] === 1, 40, 50);
    const sr = await native.components({ scores: s, dims: [1, 40, 50], threshold: 0.5, connectivity: 4 });
    expect(sr.segments.counts[0]).toBe(1);
    expect(sr.segments.bbox.slice(0, 4)).toEqual(Int32Array.from([0, 0, 50, 40]));
  });

  test('a few 300×300 maps and large maps split into strips across threads', async () => {
    const r = rng(99);
    for (const [h, w, threads] of [[300, 300, 1], [400, 400, 2], [400, 400, 3], [700, 300, 4], [1030, 130, 5]] as const) {
      for (const density of [0.05, 0.6, 0.9]) {
        const scores = uniformScores(r, h * w);
        const prediction = randomClasses(r, h * w, 4);
        for (const connectivity of [8, 4] as const)
          await check(scores, h, w, 1 - density, { connectivity, threads, prediction, minArea: density < 0.5 ? 0 : 3 }, `${h}×${w} d=${density} t=${threads} c=${connectivity}`);
      }
      // A spiral crosses every strip border many times.
      const sp = spiral(h, w);
      const s = scoresOfMask(r, (x, y) => sp[y * w + x] === 1, h, w);
      await check(s, h, w, 0.5, { threads, connectivity: 4 }, `spiral ${h}×${w} t=${threads}`);
    }
  });

  test('minArea drops small components and renumbers the rest in raster order', async () => {
    const r = rng(5);
    for (let i = 0; i < 200; i++) {
      const h = 1 + Math.floor(r() * 50), w = 1 + Math.floor(r() * 50);
      const scores = uniformScores(r, h * w);
      const minArea = Math.floor(r() * 12);
      for (const connectivity of [8, 4] as const)
        await check(scores, h, w, 1 - DENSITIES[i % DENSITIES.length], { connectivity, minArea }, `minArea ${minArea} case ${i}`);
    }
    // Without label images the segments are the same.
    const scores = uniformScores(r, 40 * 40);
    const a = await native.components({ scores, dims: [1, 40, 40], threshold: 0.4, minArea: 5 });
    const b = await native.components({ scores, dims: [1, 40, 40], threshold: 0.4, minArea: 5, labels: false });
    expect(b.labels).toBeNull();
    expect(segmentsOf(b, 0)).toEqual(segmentsOf(a, 0));
    // A minArea above every component leaves nothing, and background everywhere.
    const c = await native.components({ scores, dims: [1, 40, 40], threshold: 0.4, minArea: 1601 });
    expect(c.segments.counts[0]).toBe(0);
    expect(c.labels!.every((v) => v === 0)).toBe(true);
  });

  test('ROI: shared [h, w] and per map [N, h, w]; batches label every map independently', async () => {
    const r = rng(11);
    for (let i = 0; i < 100; i++) {
      const N = 1 + Math.floor(r() * 4), h = 1 + Math.floor(r() * 40), w = 1 + Math.floor(r() * 40);
      const plane = h * w;
      const scores = uniformScores(r, N * plane);
      const shared = r() < 0.5;
      const roi = Uint8Array.from({ length: shared ? plane : N * plane }, () => (r() < 0.8 ? 1 + Math.floor(r() * 255) : 0));
      const prediction = randomClasses(r, N * plane, 3);
      const threshold = 0.2 + 0.6 * r();
      const connectivity = r() < 0.5 ? 4 : 8;
      const minArea = Math.floor(r() * 3);
      const result = await native.components({ scores, dims: [N, h, w], threshold, roi, prediction, connectivity, minArea, threads: 1 + (i % 3) });
      expect(result.segments.counts.length).toBe(N);
      for (let n = 0; n < N; n++) {
        const ref = referenceSegments(scores.subarray(n * plane, (n + 1) * plane), h, w, threshold, {
          roi: shared ? roi : roi.subarray(n * plane, (n + 1) * plane),
          prediction: prediction.subarray(n * plane, (n + 1) * plane),
          connectivity: connectivity as 4 | 8,
          minArea,
        });
        const problems = differences(result, n, ref);
        if (problems.length) throw new Error(`roi case ${i} map ${n}: ${problems.slice(0, 3).join('; ')}`);
      }
    }
  });

  test('NaN scores are background; the threshold is compared exactly against float32 scores', async () => {
    const scores = new Float32Array([NaN, 1, NaN, 1, Infinity, -Infinity, Math.fround(0.3), 0.3000001]);
    const a = await native.components({ scores, dims: [1, 2, 4], threshold: 0.5, connectivity: 4 });
    expect(Array.from(a.labels!)).toEqual([0, 1, 0, 2, 3, 0, 0, 0]);
    expect(a.segments.maxScore[2]).toBe(Infinity);
    // fround(0.3) > 0.3 as doubles: foreground at threshold 0.3 but not at fround(0.3) itself.
    const b = await native.components({ scores, dims: [1, 2, 4], threshold: 0.3 });
    expect(b.labels![6]).not.toBe(0);
    const c = await native.components({ scores, dims: [1, 2, 4], threshold: Math.fround(0.3) });
    expect(c.labels![6]).toBe(0);
    expect(c.labels![7]).not.toBe(0);
    // ±Infinity thresholds: nothing above +∞; everything but NaN and −∞ above −∞.
    expect((await native.components({ scores, dims: [1, 2, 4], threshold: Infinity })).segments.counts[0]).toBe(0);
    const d = await native.components({ scores, dims: [1, 2, 4], threshold: -Infinity, connectivity: 4 });
    expect(Array.from(d.labels!).map((v) => (v ? 1 : 0))).toEqual([0, 1, 0, 1, 1, 0, 1, 1]);
  });

  test('majority class: ties to the smallest id, any int32 ids (dense and sorted paths)', async () => {
    const scores = new Float32Array([1, 1, 1, 1, 0, 1, 1]);
    const cases: [number[], number][] = [
      [[3, 1, 3, 1, 0, 9, 9], 1], // 2 × 3 and 2 × 1 in segment 1 (pixels 0..3): smallest id wins
      [[-5, 7, -5, 2, 0, 9, 9], -5],
      [[2 ** 31 - 1, -(2 ** 31), 2 ** 31 - 1, 4, 0, 0, 0], 2 ** 31 - 1], // range too wide for a dense histogram
      [[-(2 ** 31), 2 ** 31 - 1, 5, 6, 0, 0, 0], -(2 ** 31)],
    ];
    for (const [classes, expected] of cases) {
      const out = await native.components({ scores, dims: [1, 1, 7], threshold: 0.5, prediction: Int32Array.from(classes) });
      expect(out.segments.counts[0]).toBe(2);
      expect(out.segments.majorityClass![0]).toBe(expected);
      expect(out.segments.majorityClass![1]).toBe(classes[5]);
    }
    // Many segments × many classes also takes the sorting path: compare with the reference.
    const r = rng(3);
    const h = 200, w = 200;
    const s = uniformScores(r, h * w);
    const prediction = Int32Array.from({ length: h * w }, () => Math.floor(r() * 3000) - 1500);
    await check(s, h, w, 0.7, { prediction }, 'sorted majority');
  });
});

describe('CUDA labeling steps emulated on the CPU', () => {
  test('same labels and segments as the CPU labeling on random masks, blocks and schedules', async () => {
    const r = rng(2025);
    const blocks: number[][] = [[8, 32], [1, 1], [3, 5], [16, 16], [1, 32], [32, 1], [7, 7], [2, 3]];
    for (let i = 0; i < 400; i++) {
      const N = 1 + Math.floor(r() * 2);
      const h = 1 + Math.floor(r() * 48), w = 1 + Math.floor(r() * 48);
      const scores = uniformScores(r, N * h * w);
      const density = DENSITIES[i % DENSITIES.length];
      const threshold = density === 1 ? -1 : 1 - density;
      const options = {
        scores, dims: [N, h, w], threshold,
        connectivity: (i % 2 ? 4 : 8) as 4 | 8,
        minArea: i % 7 === 0 ? 3 : 0,
        prediction: i % 3 === 0 ? randomClasses(r, N * h * w, 4) : undefined,
        roi: i % 5 === 0 ? Uint8Array.from({ length: h * w }, () => (r() < 0.9 ? 1 : 0)) : undefined,
      };
      const cpu = await native.components({ ...options, threads: 1 });
      const grid = await native.componentsGridEmulation({ ...options, blockDims: blocks[i % blocks.length], shuffleSeed: i % 4 === 0 ? 0 : i });
      expect(types.isUint32Array(grid.labels)).toBe(true);
      for (let n = 0; n < N; n++) {
        const plane = h * w;
        const diff = partitionDifference(grid.labels!.subarray(n * plane, (n + 1) * plane), cpu.labels!.subarray(n * plane, (n + 1) * plane));
        if (diff) throw new Error(`case ${i} (${h}×${w}, block ${blocks[i % blocks.length]}): ${diff}`);
      }
      expect(grid.labels).toEqual(cpu.labels);
      expect(grid.segments).toEqual(cpu.segments);
    }
  });

  test('large maps and spirals', async () => {
    const r = rng(8);
    for (const [h, w] of [[300, 300], [97, 301]]) {
      const sp = spiral(h, w);
      for (const scores of [uniformScores(r, h * w), scoresOfMask(r, (x, y) => sp[y * w + x] === 1, h, w)]) {
        for (const connectivity of [4, 8]) {
          const options = { scores, dims: [1, h, w], threshold: 0.5, connectivity };
          const cpu = await native.components({ ...options, threads: 1 });
          const grid = await native.componentsGridEmulation({ ...options, shuffleSeed: 17 });
          expect(grid.labels).toEqual(cpu.labels);
          expect(grid.segments).toEqual(cpu.segments);
        }
      }
    }
  });
});

describe('components: bad input', () => {
  const base = (): NativeComponentsOptions => ({ scores: new Float32Array(8), dims: [2, 2, 2], threshold: 0.5 });

  test('precise TypeError and RangeError messages', () => {
    expectThrow(() => (native.components as (...a: unknown[]) => unknown)(), 'TypeError', /components options must be an options object/);
    expectThrow(() => native.components([] as never), 'TypeError', /components options must be an options object/);
    expectThrow(() => native.components({ ...base(), dims: undefined as never }), 'TypeError', /dims is required/);
    expectThrow(() => native.components({ ...base(), dims: [2, 4] }), 'RangeError', /dims must have 3 dimensions, got 2/);
    expectThrow(() => native.components({ ...base(), dims: [1, 0, 4] }), 'RangeError', /dims\[1\] must be a positive integer, got 0/);
    expectThrow(() => native.components({ ...base(), dims: [1, 2.5, 4] }), 'RangeError', /dims\[1\] must be a positive integer, got 2.5/);
    expectThrow(() => native.components({ ...base(), dims: [2 ** 20, 2 ** 20, 2] }), 'RangeError', /more than 2\^31 elements/);
    expectThrow(() => native.components({ ...base(), scores: new Float32Array(7) }), 'RangeError', /scores has 7 elements but its dims call for 8/);
    expectThrow(() => native.components({ ...base(), scores: new Float64Array(8) as never }), 'TypeError', /scores must be a Float32Array/);
    expectThrow(() => native.components({ ...base(), scores: [0, 1] as never }), 'TypeError', /scores must be a Float32Array/);
    expectThrow(() => native.components({ ...base(), threshold: NaN }), 'RangeError', /threshold must not be NaN/);
    expectThrow(() => native.components({ ...base(), threshold: '0.5' as never }), 'TypeError', /threshold must be a number/);
    expectThrow(() => native.components({ ...base(), threshold: undefined as never }), 'TypeError', /threshold is required/);
    expectThrow(() => native.components({ ...base(), connectivity: 6 }), 'RangeError', /connectivity must be 4 or 8, got 6/);
    expectThrow(() => native.components({ ...base(), connectivity: NaN }), 'RangeError', /connectivity must be 4 or 8, got NaN/);
    expectThrow(() => native.components({ ...base(), connectivity: '8' as never }), 'TypeError', /connectivity must be a number/);
    expectThrow(() => native.components({ ...base(), roi: new Uint8Array(5) }), 'RangeError', /roi has 5 elements but must have N·h·w = 8 \(one mask per map\) or h·w = 4/);
    expectThrow(() => native.components({ ...base(), roi: new Int8Array(8) as never }), 'TypeError', /roi must be a Uint8Array/);
    expectThrow(() => native.components({ ...base(), roi: new Uint8ClampedArray(8) as never }), 'TypeError', /roi must be a Uint8Array/);
    expectThrow(() => native.components({ ...base(), roi: 'all' as never }), 'TypeError', /roi must be a Uint8Array/);
    expectThrow(() => native.components({ ...base(), prediction: new Float32Array(8) as never }), 'TypeError', /prediction must be an Int32Array/);
    expectThrow(() => native.components({ ...base(), prediction: new Int32Array(4) }), 'RangeError', /prediction has 4 elements but dims call for 8/);
    expectThrow(() => native.components({ ...base(), minArea: -1 }), 'RangeError', /minArea must be an integer in \[0, 2147483648\], got -1/);
    expectThrow(() => native.components({ ...base(), minArea: 1.5 }), 'RangeError', /minArea must be an integer/);
    expectThrow(() => native.components({ ...base(), minArea: '3' as never }), 'TypeError', /minArea must be a number/);
    expectThrow(() => native.components({ ...base(), labels: 1 as never }), 'TypeError', /labels must be a boolean/);
    expectThrow(() => native.components({ ...base(), threads: -1 }), 'RangeError', /threads must be an integer in \[0, 1024\]/);
    expectThrow(() => native.components({ ...base(), backend: 'tpu' }), 'RangeError', /backend must be "cpu" or "cuda", got "tpu"/);
    expectThrow(() => native.components({ ...base(), backend: 3 as never }), 'TypeError', /backend must be a string/);
    if (!native.cudaCompiled) expectThrow(() => native.components({ ...base(), backend: 'cuda' }), 'Error', /backend "cuda" is not compiled into this build/);
    expectThrow(() => native.componentsGridEmulation({ ...base(), blockDims: [64, 64] }), 'RangeError', /blockDims \[64, 64\] must have at most 1024 threads per block/);
    expectThrow(() => native.componentsGridEmulation({ ...base(), blockDims: [0, 4] }), 'RangeError', /blockDims\[0\] must be a positive integer/);
    expectThrow(() => native.componentsGridEmulation({ ...base(), shuffleSeed: -2 }), 'RangeError', /shuffleSeed must be an integer/);
  });

  test('a detached buffer is refused, not read', () => {
    const scores = new Float32Array(8);
    const args = { ...base(), scores };
    structuredClone(scores.buffer, { transfer: [scores.buffer] });
    expectThrow(() => native.components(args), 'TypeError', /scores is empty or its buffer was detached/);
    const roi = new Uint8Array(8);
    structuredClone(roi.buffer, { transfer: [roi.buffer] });
    expectThrow(() => native.components({ ...base(), roi }), 'TypeError', /roi is empty or its buffer was detached/);
  });

  test('valid calls resolve with typed arrays', async () => {
    const out = await native.components({ ...base(), prediction: new Int32Array(8) });
    expect(types.isUint32Array(out.labels)).toBe(true);
    expect(types.isUint32Array(out.segments.counts)).toBe(true);
    expect(types.isFloat64Array(out.segments.centroid)).toBe(true);
    expect(types.isInt32Array(out.segments.majorityClass)).toBe(true);
    await expect(native.components(base())).resolves.toMatchObject({ segments: { majorityClass: null } });
  });
});

function randomValue(r: Rand, depth = 0): unknown {
  const len = Math.floor(r() * 20);
  switch (Math.floor(r() * 17)) {
    case 0: return undefined;
    case 1: return null;
    case 2: return r() < 0.5 ? NaN : -Infinity;
    case 3: return Math.floor(r() * 12) - 3;
    case 4: return r() * 1e12;
    case 5: return r() < 0.5 ? 'cuda' : 'cpu';
    case 6: return new Float32Array(len).map(() => (r() < 0.1 ? NaN : r()));
    case 7: return new Float64Array(len);
    case 8: return new Int32Array(len);
    case 9: return new Uint8Array(len);
    case 10: return Array.from({ length: Math.floor(r() * 5) }, () => Math.floor(r() * 6) - 1);
    case 11: return [2 ** 31, 2 ** 31, 4];
    case 12: return depth < 2 ? [randomValue(r, depth + 1), randomValue(r, depth + 1), randomValue(r, depth + 1)] : [];
    case 13: return Symbol('x');
    case 14: return () => 1;
    case 15: return r() < 0.5;
    default: return BigInt(3);
  }
}

// A valid call, then one to three fields replaced at random.
function mutatedArgs(r: Rand): Record<string, unknown> {
  const N = 2, h = 3, w = 4;
  const args: Record<string, unknown> = {
    scores: new Float32Array(N * h * w).map(() => r()),
    dims: [N, h, w],
    threshold: 0.5,
    roi: new Uint8Array(h * w).fill(1),
    prediction: new Int32Array(N * h * w),
    connectivity: 8,
    minArea: 1,
    labels: true,
    threads: 1,
  };
  const keys = [...Object.keys(args), 'backend', 'blockDims', 'shuffleSeed'];
  const count = 1 + Math.floor(r() * 3);
  for (let i = 0; i < count; i++) args[keys[Math.floor(r() * keys.length)]] = randomValue(r);
  return args;
}

describe('components: inputs rewritten during the call', () => {
  // The scores and the region of interest are read without a private copy: the labelings threshold
  // them once and keep that foreground. Another thread rewrites them for the whole call here; what
  // comes back must still be a consistent labeling of some foreground (and nothing may crash).
  test('scores and roi changed by another thread: labels are the components of their own foreground, segments match them', async () => {
    const h = 512, w = 512, plane = h * w;
    const scoresBuffer = new SharedArrayBuffer(4 * plane), roiBuffer = new SharedArrayBuffer(plane);
    const scores = new Float32Array(scoresBuffer), roi = new Uint8Array(roiBuffer).fill(1);
    const r = rng(41);
    scores.set(uniformScores(r, plane));
    const stop = new Int32Array(new SharedArrayBuffer(4));
    const writer = new Worker(`
      const { workerData } = require('node:worker_threads');
      const s = new Float32Array(workerData.scores), roi = new Uint8Array(workerData.roi), stop = new Int32Array(workerData.stop);
      let x = 7;
      while (Atomics.load(stop, 0) === 0)
        for (let k = 0; k < 4096; k++) {
          x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
          s[x % s.length] = (x >>> 8) / 16777216;
          roi[(x >>> 3) % roi.length] = (x >>> 30) === 0 ? 0 : 1;
        }`, { eval: true, workerData: { scores: scoresBuffer, roi: roiBuffer, stop: stop.buffer } });
    try {
      for (let i = 0; i < 8; i++) {
        const connectivity = i % 2 ? 4 : 8, minArea = i % 4 === 3 ? 2 : 0;
        const result = await native.components({ scores, dims: [1, h, w], threshold: 0.5, roi, connectivity, minArea, threads: 1 + (i % 2) });
        const labels = result.labels!, K = result.segments.counts[0];
        const { area, bbox, centroid } = result.segments;
        const seen = new Float64Array(K + 1), sx = new Float64Array(K + 1), sy = new Float64Array(K + 1);
        for (let p = 0; p < plane; p++) {
          const f = labels[p];
          if (f > K) throw new Error(`case ${i}: label ${f} > K = ${K}`);
          const x = p % w, y = Math.floor(p / w);
          seen[f]++; sx[f] += x; sy[f] += y;
          if (f && (x < bbox[4 * (f - 1)] || y < bbox[4 * (f - 1) + 1] || x >= bbox[4 * (f - 1)] + bbox[4 * (f - 1) + 2] || y >= bbox[4 * (f - 1) + 1] + bbox[4 * (f - 1) + 3]))
            throw new Error(`case ${i}: pixel (${x}, ${y}) of segment ${f} outside its box`);
        }
        for (let f = 1; f <= K; f++) {
          const centred = Math.abs(centroid[2 * (f - 1)] - sx[f] / seen[f]) + Math.abs(centroid[2 * (f - 1) + 1] - sy[f] / seen[f]) < 1e-9;
          if (area[f - 1] !== seen[f] || seen[f] < Math.max(1, minArea) || !centred)
            throw new Error(`case ${i}: segment ${f} has area ${area[f - 1]} and ${seen[f]} pixels (centroid ${centroid[2 * (f - 1)]}, ${centroid[2 * (f - 1) + 1]})`);
        }
        expect(K).toBeGreaterThan(100);
        // Each segment is one component of the labelled pixels (with minArea > 0 dropped ones are background).
        if (minArea === 0) {
          const { labels: ref } = floodFill(Uint8Array.from(labels, (v) => (v ? 1 : 0)), h, w, connectivity);
          expect([i, partitionDifference(labels, ref)]).toEqual([i, null]);
        }
      }
    } finally {
      Atomics.store(stop, 0, 1);
      await writer.terminate();
    }
  });
});

describe('components fuzz', () => {
  const ITERATIONS = Number(process.env.PGN_FUZZ_ITERATIONS ?? 600);
  test(`${ITERATIONS} malformed components() and componentsGridEmulation() calls never crash`, async () => {
    const r = rng(4242);
    const outcomes: Record<string, number> = {};
    for (let i = 0; i < ITERATIONS; i++) {
      const calls: (() => unknown)[] = [
        () => native.components(mutatedArgs(r) as never),
        () => native.componentsGridEmulation(mutatedArgs(r) as never),
        () => native.components(randomValue(r) as never),
        () => native.components({ scores: randomValue(r), dims: randomValue(r), threshold: randomValue(r), roi: randomValue(r) } as never),
      ];
      const outcome = await settle(calls[i % calls.length]);
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
    }
    expect(outcomes.TypeError).toBeGreaterThan(ITERATIONS / 10);
    expect(outcomes.RangeError).toBeGreaterThan(ITERATIONS / 50);
    expect(outcomes.ok).toBeGreaterThan(0);
  });
});
