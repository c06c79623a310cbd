/**
 * The TypeScript API of the OoD segments: findSegments / findSegmentTables, thresholdAtFpr
 * (exact quantile), and the PNG writers (16-bit labels, overlay with heatmap and outlines).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { types } from 'node:util';
import v8 from 'node:v8';
import vm from 'node:vm';
import sharp from 'sharp';
import {
  findSegments,
  findSegmentTables,
  segmentsFromTable,
  thresholdAtFpr,
  type LabelStack,
  type MapStack,
} from '../src';
import { decodeImage, writeLabelPng, writeOverlayPng, renderOverlay, outlineMask, labelsToUint16, heatColor } from '../src/image';
import { rng } from './helpers/reference';
import { referenceSegments, type RefSegment } from './helpers/flood-fill';
import { expectRejection, expectThrow } from './helpers/errors';

function stack(data: number[] | Float32Array, dims: [number, number, number]): MapStack {
  return { data: Float32Array.from(data), dims };
}

/** Same values: integers and maxScore exactly, centroid and meanScore to rounding. */
function sameSegment(s: RefSegment, r: RefSegment): boolean {
  const close = (a: number, b: number) => Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b));
  return s.id === r.id && s.area === r.area && s.bbox.every((v, k) => v === r.bbox[k]) && close(s.centroid[0], r.centroid[0]) &&
    close(s.centroid[1], r.centroid[1]) && close(s.meanScore, r.meanScore) && s.maxScore === r.maxScore && s.majorityClass === r.majorityClass;
}

describe('findSegments', () => {
  // 0.9 0.9 0   0   0   0.7
  // 0   0.8 0   0   0   0.6
  // 0   0   0   0.9 0   0
  const map = stack([0.9, 0.9, 0, 0, 0, 0.7, 0, 0.8, 0, 0, 0, 0.6, 0, 0, 0, 0.9, 0, 0], [1, 3, 6]);
  const prediction = { data: Int32Array.from([2, 1, 0, 0, 0, 4, 0, 1, 0, 0, 0, 4, 0, 0, 0, 3, 0, 0]), dims: [1, 3, 6] as [number, number, number] };

  test('a worked example: ids in raster order, statistics, majority class', async () => {
    const { labels, segments } = await findSegments(map, { threshold: 0.5, prediction });
    expect(Array.from(labels!.data)).toEqual([1, 1, 0, 0, 0, 2, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0]);
    expect(labels!.dims).toEqual([1, 3, 6]);
    expect(segments).toHaveLength(1);
    const [a, b, c] = segments[0];
    expect(a).toEqual({ id: 1, area: 3, bbox: [0, 0, 2, 2], centroid: [2 / 3, 1 / 3], meanScore: expect.closeTo((0.9 + 0.9 + 0.8) / 3, 6), maxScore: Math.fround(0.9), majorityClass: 1 });
    expect(b).toMatchObject({ id: 2, area: 2, bbox: [5, 0, 1, 2], centroid: [5, 0.5], majorityClass: 4 });
    expect(b.meanScore).toBeCloseTo(0.65, 6);
    expect(c).toMatchObject({ id: 3, area: 1, bbox: [3, 2, 1, 1], centroid: [3, 2], maxScore: Math.fround(0.9), majorityClass: 3 });
    // minArea 2 drops segment 3; without prediction majorityClass is null.
    const filtered = await findSegments(map, { threshold: 0.5, minArea: 2 });
    expect(filtered.segments[0].map((s) => s.id)).toEqual([1, 2]);
    expect(filtered.segments[0][0].majorityClass).toBeNull();
    expect(filtered.labels!.data[15]).toBe(0);
  });

  test('connectivity, roi, labels: false, batches', async () => {
    const diag = stack([1, 0, 0, 1], [1, 2, 2]);
    expect((await findSegments(diag, { threshold: 0.5 })).segments[0]).toHaveLength(1);
    expect((await findSegments(diag, { threshold: 0.5, connectivity: 4 })).segments[0]).toHaveLength(2);
    const roi = { data: Uint8Array.from([1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]), dims: [3, 6] as [number, number] };
    const withRoi = await findSegments(map, { threshold: 0.5, roi, labels: false });
    expect(withRoi.labels).toBeNull();
    expect(withRoi.segments[0].map((s) => s.area)).toEqual([2, 2, 1]);
    // Two maps with per-map ROI: the second one masked out entirely.
    const two = stack([...map.data, ...map.data], [2, 3, 6]);
    const roi2 = { data: Uint8Array.from([...new Array(18).fill(1), ...new Array(18).fill(0)]), dims: [2, 3, 6] as [number, number, number] };
    const res = await findSegments(two, { threshold: 0.5, roi: roi2, threads: 2 });
    expect(res.segments.map((l) => l.length)).toEqual([3, 0]);
    expect(res.labels!.dims).toEqual([2, 3, 6]);
  });

  test('tables and objects agree with the flood-fill reference on random maps', async () => {
    const r = rng(17);
    for (let i = 0; i < 50; i++) {
      const N = 1 + (i % 3), h = 1 + Math.floor(r() * 30), w = 1 + Math.floor(r() * 30);
      const scores = stack(Float32Array.from({ length: N * h * w }, () => r()), [N, h, w]);
      const threshold = r();
      const tables = await findSegmentTables(scores, { threshold, minArea: i % 4 });
      const objects = await findSegments(scores, { threshold, minArea: i % 4 });
      expect(tables.tables.map(segmentsFromTable)).toEqual(objects.segments);
      for (let n = 0; n < N; n++) {
        const ref = referenceSegments(scores.data.subarray(n * h * w, (n + 1) * h * w), h, w, threshold, { minArea: i % 4 });
        expect(objects.segments[n].map((s) => [s.id, s.area, ...s.bbox])).toEqual(ref.segments.map((s) => [s.id, s.area, ...s.bbox]));
        expect(Array.from(objects.labels!.data.subarray(n * h * w, (n + 1) * h * w))).toEqual(Array.from(ref.labels));
      }
      expect(types.isFloat64Array(tables.tables[0].centroid)).toBe(true);
    }
  });

  test('large maps (outputs and scratch in reused huge-page memory): every label and segment field as the flood-fill reference', async () => {
    // Label images of 2 MiB and more, the input copy and the scratch are mappings kept and reused
    // from call to call, not zero-filled: a pixel or record left unwritten would show the previous
    // call's values. A dense map first, its result collected (its label image then freed for reuse).
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const h = 768, w = 1024, r = rng(23);
    const random = Float32Array.from({ length: h * w }, () => r());
    // Blobs: a smooth field with a little noise, rank-free (thresholds pick about 50 % and 10 %).
    const blobs = Float32Array.from({ length: h * w }, (_, i) => {
      const x = i % w, y = Math.floor(i / w);
      return (Math.sin(x / 23) + Math.sin(y / 17) + Math.sin((x + y) / 31)) / 3 + 0.05 * r();
    });
    const prediction = Int32Array.from({ length: h * w }, () => Math.floor(r() * 4));
    const first = await findSegments(stack(random, [1, h, w]), { threshold: 0.5, threads: 2 });
    expect(first.segments[0].length).toBeGreaterThan(1000);
    first.labels = null;
    for (let i = 0; i < 3; i++) {
      gc();
      await new Promise((resolve) => setImmediate(resolve));
    }
    const cases: [string, Float32Array, number, { connectivity?: 4 | 8; minArea?: number; prediction?: boolean; threads: number }][] = [
      ['random 0.1', random, 0.9, { threads: 1 }],
      ['random 0.5, prediction', random, 0.5, { prediction: true, threads: 1 }],
      ['blobs 0.5, 4-connectivity, 2 threads', blobs, 0.0, { connectivity: 4, threads: 2 }],
      ['blobs 0.1, minArea 20', blobs, 0.55, { minArea: 20, threads: 1 }],
      ['random 0.1, 2 threads, minArea 2', random, 0.9, { minArea: 2, threads: 2 }],
      ['nothing above the threshold', blobs, 2, { threads: 1 }],
    ];
    for (const [name, data, threshold, o] of cases) {
      const options = { threshold, connectivity: o.connectivity, minArea: o.minArea, threads: o.threads, ...(o.prediction ? { prediction: { data: prediction, dims: [1, h, w] as [number, number, number] } } : {}) };
      const got = await findSegments(stack(data, [1, h, w]), options);
      const ref = referenceSegments(data, h, w, threshold, { connectivity: o.connectivity, minArea: o.minArea, prediction: o.prediction ? prediction : undefined });
      const labels = got.labels!.data;
      const firstWrong = labels.findIndex((v, i) => v !== ref.labels[i]);
      expect([name, firstWrong]).toEqual([name, -1]);
      expect([name, got.segments[0].length]).toEqual([name, ref.segments.length]);
      const wrong = got.segments[0].findIndex((s, i) => !sameSegment(s, ref.segments[i]));
      if (wrong >= 0) throw new Error(`${name}: segment ${wrong + 1} ${JSON.stringify(got.segments[0][wrong])} vs reference ${JSON.stringify(ref.segments[wrong])}`);
      // The tables hold the same values as the objects.
      const tables = await findSegmentTables(stack(data, [1, h, w]), options);
      expect(segmentsFromTable(tables.tables[0])).toEqual(got.segments[0]);
    }
  });

  test('result.segments, built on its first read, behaves as a plain property', async () => {
    const result = await findSegments(map, { threshold: 0.5 });
    expect(Object.keys(result)).toEqual(['labels', 'segments']);
    const segments = result.segments;
    expect(result.segments).toBe(segments); // built once
    expect(JSON.parse(JSON.stringify(result)).segments).toEqual(JSON.parse(JSON.stringify(segments)));
    expect({ ...result }.segments).toBe(segments);
    expect(structuredClone(result).segments).toEqual(segments);
    result.segments = [];
    expect(result.segments).toEqual([]);
    // Never read, the segments are still those of the call.
    const unread = await findSegments(map, { threshold: 0.5 });
    const later = await findSegments(map, { threshold: 0.9 });
    expect(unread.segments[0].map((s) => s.area)).toEqual([3, 2, 1]);
    expect(later.segments[0]).toEqual([]);
  });

  test('argument errors', async () => {
    await expect(findSegments({ data: new Float64Array(4), dims: [1, 2, 2] } as never, { threshold: 0 })).rejects.toThrow(/scores must be \{ data: Float32Array, dims: \[N, h, w\] \}/);
    await expect(findSegments(stack([0, 0, 0, 0], [1, 2, 2]), { threshold: 0, roi: { data: new Uint8Array(6), dims: [2, 3] } })).rejects.toThrow(/roi dims \[2, 3\] must be those of the score maps \[1, 2, 2\] or \[h, w\] = \[2, 2\]/);
    await expect(findSegments(stack([0, 0, 0, 0], [1, 2, 2]), { threshold: 0, roi: { data: new Int8Array(4), dims: [2, 2] } as never })).rejects.toThrow(/roi must be \{ data: Uint8Array/);
    await expect(findSegments(stack([0, 0, 0, 0], [1, 2, 2]), { threshold: 0, prediction: { data: new Int32Array(4), dims: [1, 4, 1] } })).rejects.toThrow(/prediction dims \[1, 4, 1\] must be those of the score maps \[1, 2, 2\]/);
    await expect(findSegments(stack([0, 0, 0, 0], [1, 2, 2]), { threshold: 0, backend: 'gpu' as never })).rejects.toThrow(/backend must be "cpu" or "cuda"/);
    // The binding's own checks come through with their names.
    await expectRejection(findSegments(stack([0, 0, 0, 0], [1, 2, 2]), { threshold: NaN }), 'RangeError', /threshold must not be NaN/);
    await expectRejection(findSegments(stack([0, 0, 0, 0], [1, 2, 2]), { threshold: 0, connectivity: 6 as never }), 'RangeError', /connectivity must be 4 or 8, got 6/);
    await expectRejection(findSegments(stack([0, 0, 0], [1, 2, 2]), { threshold: 0 }), 'RangeError', /scores has 3 elements but its dims call for 4/);
  });
});

describe('thresholdAtFpr', () => {
  const all = (n: number) => ({ data: new Uint8Array(n).fill(1), dims: [1, 1, n] as [number, number, number] });

  test('exact quantile: at most fpr·n in-distribution pixels above, and the smallest such score', () => {
    const r = rng(23);
    for (let i = 0; i < 300; i++) {
      const N = 1 + (i % 3), h = 1 + Math.floor(r() * 20), w = 1 + Math.floor(r() * 20);
      // Few distinct values now and then: ties at the threshold.
      const levels = i % 2 ? 0 : 2 + Math.floor(r() * 6);
      const s = Float32Array.from({ length: N * h * w }, () => (levels ? Math.floor(r() * levels) / levels : r() * 10 - 5));
      const shared = i % 5 === 0;
      const m = Uint8Array.from({ length: shared ? h * w : N * h * w }, () => (r() < 0.7 ? 1 : 0));
      const maskOf = (j: number) => m[shared ? j % (h * w) : j];
      const ids: number[] = [];
      s.forEach((v, j) => maskOf(j) && ids.push(v));
      if (ids.length === 0) continue;
      const fpr = [0, 1, r(), r(), 0.05, 0.5][i % 6];
      const t = thresholdAtFpr({ data: s, dims: [N, h, w] }, { data: m, dims: shared ? [h, w] : [N, h, w] }, fpr);
      const k = Math.floor(fpr * ids.length + 1e-9);
      expect(ids.filter((v) => v > t).length).toBeLessThanOrEqual(k);
      if (t !== -Infinity) {
        expect(ids).toContain(t); // one of the scores
        expect(ids.filter((v) => v >= t).length).toBeGreaterThan(k); // anything lower would flag more than k
      } else expect(k).toBe(ids.length);
    }
  });

  test('edge cases: fpr 0 and 1, rounding of fpr·n, NaN scores, OoD pixels ignored', () => {
    const s = { data: Float32Array.from({ length: 100 }, (_, i) => i), dims: [1, 10, 10] as [number, number, number] };
    const m = all(100);
    m.dims = [1, 10, 10];
    expect(thresholdAtFpr(s, m, 0)).toBe(99);
    expect(thresholdAtFpr(s, m, 1)).toBe(-Infinity);
    expect(thresholdAtFpr(s, m, 0.29)).toBe(70); // 0.29·100 = 28.999999999999996 in doubles: 29 above 70
    expect(thresholdAtFpr(s, m, 0.05)).toBe(94);
    expect(thresholdAtFpr(s, m, 0.0599)).toBe(94);
    // NaN: an in-distribution pixel never flagged; counted in n.
    const withNaN = { data: Float32Array.from([NaN, 1, 2, 3]), dims: [1, 1, 4] as [number, number, number] };
    expect(thresholdAtFpr(withNaN, all(4), 0.5)).toBe(1);
    expect(thresholdAtFpr(withNaN, all(4), 0.75)).toBe(-Infinity);
    // Mask 0 = not in-distribution: the high OoD scores do not count.
    const mixed = { data: Float32Array.from([9, 8, 1, 2, 3, 4]), dims: [1, 1, 6] as [number, number, number] };
    expect(thresholdAtFpr(mixed, { data: Uint8Array.from([0, 0, 1, 1, 1, 1]), dims: [1, 1, 6] }, 0.25)).toBe(3);
    // float32 scores come back exactly, and findSegments with that threshold flags exactly the counted pixels.
    expect(thresholdAtFpr({ data: Float32Array.from([0.1, 0.2, 0.3]), dims: [1, 1, 3] }, all(3), 0.34)).toBe(Math.fround(0.2));
  });

  test('calibrated threshold applied with findSegments flags at most fpr of the in-distribution pixels', async () => {
    const r = rng(31);
    const h = 60, w = 70;
    const s = { data: Float32Array.from({ length: h * w }, () => r()), dims: [1, h, w] as [number, number, number] };
    const id = Uint8Array.from({ length: h * w }, () => (r() < 0.8 ? 1 : 0));
    for (const fpr of [0.01, 0.1, 0.3]) {
      const t = thresholdAtFpr(s, { data: id, dims: [h, w] }, fpr);
      const { labels } = await findSegments(s, { threshold: t, roi: { data: id, dims: [h, w] } });
      const flagged = labels!.data.reduce((a, v) => a + (v ? 1 : 0), 0);
      const n = id.reduce((a, v) => a + v, 0);
      expect(flagged).toBe(Math.floor(fpr * n)); // distinct scores: exactly k
    }
  });

  test('argument errors', () => {
    const s = { data: new Float32Array(4), dims: [1, 2, 2] as [number, number, number] };
    expectThrow(() => thresholdAtFpr(s, { data: new Uint8Array(4).fill(1), dims: [2, 2] }, 1.5), 'RangeError', /fpr must be a number in \[0, 1\], got 1.5/);
    expectThrow(() => thresholdAtFpr(s, { data: new Uint8Array(4).fill(1), dims: [2, 2] }, NaN), 'RangeError', /fpr must be a number in \[0, 1\], got NaN/);
    expectThrow(() => thresholdAtFpr(s, { data: new Uint8Array(4), dims: [2, 2] }, 0.1), 'RangeError', /mark no in-distribution pixel/);
    expectThrow(() => thresholdAtFpr(s, { data: new Uint8Array(3), dims: [3, 1] }, 0.1), 'RangeError', /inDistributionMasks dims \[3, 1\] must be those of the score maps \[1, 2, 2\] or \[h, w\]/);
    expectThrow(() => thresholdAtFpr(s, { data: new Uint8Array(3), dims: [2, 2] }, 0.1), 'RangeError', /inDistributionMasks has 3 elements but its dims call for 4/);
    expectThrow(() => thresholdAtFpr(s, { data: new Int32Array(4), dims: [2, 2] } as never, 0.1), 'TypeError', /inDistributionMasks must be \{ data: Uint8Array/);
    expectThrow(() => thresholdAtFpr({ data: new Float32Array(3), dims: [1, 2, 2] }, { data: new Uint8Array(4), dims: [2, 2] }, 0.1), 'RangeError', /scores has 3 elements but dims \[1, 2, 2\] call for 4/);
  });
});

describe('segment images', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgn-segments-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('16-bit label PNG round trip; more than 65535 labels is a RangeError pointing to .npy', async () => {
    const labels: LabelStack = { data: Uint32Array.from([0, 1, 2, 65535, 7, 0, 300, 1, 2, 3, 4, 5]), dims: [2, 2, 3] };
    const file = path.join(dir, 'labels.png');
    await writeLabelPng(file, labels, 1);
    const { data, info } = await sharp(file).toColourspace('grey16').raw({ depth: 'ushort' }).toBuffer({ resolveWithObject: true });
    expect(info).toMatchObject({ width: 3, height: 2, channels: 1 });
    expect(Array.from(new Uint16Array(data.buffer, data.byteOffset, data.length / 2))).toEqual([300, 1, 2, 3, 4, 5]);
    expect((await sharp(file).metadata()).depth).toBe('ushort');
    expectThrow(() => labelsToUint16({ data: Uint32Array.from([0, 65536]), dims: [1, 1, 2] }), 'RangeError', /labels up to 65536, more than a 16-bit PNG holds \(65535\): write the labels as a 32-bit \.npy instead/);
    await expect(writeLabelPng(file, labels, 2)).rejects.toThrow(/index 2 is not an image of the labels \(N = 2\)/);
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  test('outlines: pixels with a 4-neighbour outside their segment or the image', () => {
    // A 4×4 block inside a 6×6 map: its 12 border pixels are the outline, the inner 2×2 not.
    const l = new Uint32Array(36);
    for (let y = 1; y < 5; y++) for (let x = 1; x < 5; x++) l[y * 6 + x] = 1;
    const o = outlineMask(l, 6, 6);
    expect(o.reduce((a, v) => a + v, 0)).toBe(12);
    expect([o[2 * 6 + 2], o[2 * 6 + 3], o[3 * 6 + 2], o[3 * 6 + 3]]).toEqual([0, 0, 0, 0]);
    // Two touching segments both outline along their common border; the image edge counts as outside.
    expect(Array.from(outlineMask(Uint32Array.from([1, 1, 2, 2, 1, 1, 2, 2, 1, 1, 2, 2]), 3, 4))).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
  });

  test('overlay: heatmap blended, outlines drawn; PNG from raw pixels and from an image file (resized)', async () => {
    const h = 4, w = 5;
    const scores = stack(Float32Array.from({ length: h * w }, (_, i) => i), [1, h, w]);
    const labels: LabelStack = { data: new Uint32Array(h * w), dims: [1, h, w] };
    labels.data[7] = 1; // one-pixel segment at (2, 1): all outline
    const image = { data: new Uint8Array(h * w * 3).fill(100), width: w, height: h, channels: 3 as const };
    const rgb = renderOverlay(image, scores, labels, { alpha: 0.25, outlineColor: [255, 0, 0] });
    expect(Array.from(rgb.subarray(21, 24))).toEqual([255, 0, 0]);
    const hot = heatColor(1), cold = heatColor(0);
    expect(Array.from(rgb.subarray(0, 3))).toEqual(cold.map((c) => Math.round(0.75 * 100 + 0.25 * c)));
    expect(Array.from(rgb.subarray(57, 60))).toEqual(hot.map((c) => Math.round(0.75 * 100 + 0.25 * c)));
    expectThrow(() => renderOverlay({ ...image, width: 4 }, scores, labels), 'RangeError', /image is 4×4 but the score map is 5×4/);
    expectThrow(() => renderOverlay(image, scores, labels, { alpha: 2 }), 'RangeError', /alpha must be in \[0, 1\]/);

    const file = path.join(dir, 'overlay.png');
    await writeOverlayPng(file, image, scores, labels, { alpha: 0.25, outlineColor: [255, 0, 0] });
    const back = await sharp(file).raw().toBuffer({ resolveWithObject: true });
    expect(back.info).toMatchObject({ width: w, height: h, channels: 3 });
    expect(Array.from(back.data)).toEqual(Array.from(rgb));

    // From an encoded image of another size: decoded and resized to the map.
    const png = await sharp({ create: { width: 10, height: 8, channels: 3, background: { r: 100, g: 100, b: 100 } } }).png().toBuffer();
    const src = path.join(dir, 'input.png');
    fs.writeFileSync(src, png);
    await writeOverlayPng(file, src, scores, null, { alpha: 0.25 });
    const fromFile = await sharp(file).raw().toBuffer();
    expect(Array.from(fromFile.subarray(0, 3))).toEqual(cold.map((c) => Math.round(0.75 * 100 + 0.25 * c)));
    await expect(writeOverlayPng(file, Buffer.from('not an image'), scores, null)).rejects.toThrow(/cannot read the overlay's image/);
  });

  test('overlay of an EXIF-rotated JPEG: the upright pixels, as the model saw them', async () => {
    // stored 24×16, left half red, right half blue; orientation 6 shows it turned 90° clockwise, 16×24
    const stored = Buffer.alloc(24 * 16 * 3);
    for (let i = 0; i < 24 * 16; i++) stored.set(i % 24 < 12 ? [220, 20, 20] : [20, 20, 220], 3 * i);
    const jpg = path.join(dir, 'rotated.jpg');
    await sharp(stored, { raw: { width: 24, height: 16, channels: 3 } }).jpeg({ quality: 100 }).withMetadata({ orientation: 6 }).toFile(jpg);
    const upright = await decodeImage(jpg);
    expect([upright.width, upright.height]).toEqual([16, 24]);
    const file = path.join(dir, 'rotated-overlay.png');
    for (const source of [jpg, fs.readFileSync(jpg)]) {
      await writeOverlayPng(file, source, stack(new Float32Array(16 * 24), [1, 24, 16]), null, { alpha: 0 });
      const back = await sharp(file).raw().toBuffer();
      expect(Array.from(back)).toEqual(Array.from(upright.data)); // alpha 0: the image alone
      expect(back[0]).toBeGreaterThan(150); // top row red (the stored left column), bottom row blue
      expect(back[3 * (23 * 16) + 2]).toBeGreaterThan(150);
    }
  });
});
