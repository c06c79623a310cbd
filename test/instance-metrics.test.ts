/**
 * Component-level metrics (DESIGN.md §2): hand-made masks whose figures are worked out below, and the
 * random blobs of test/fixtures/recipes/metrics.py against its scipy restatement of the benchmark.
 */
import fs from 'node:fs';
import path from 'node:path';
import { types } from 'node:util';
import { InstanceMetrics, InstanceMetricsResult, TRACK_SIZES, metricsTable } from '../src/eval/metrics';
import { readNpy } from '../src/common/npy';
import { expectRejection, expectThrow } from './helpers/errors';

/** A blank image; `rect` paints labels or scores over rows r0..r1, columns c0..c1 (inclusive). */
function canvas(h: number, w: number) {
  const labels = new Uint8Array(h * w);
  const scores = new Float32Array(h * w);
  const rect = (arr: Uint8Array | Float32Array, r0: number, r1: number, c0: number, c1: number, v: number) => {
    for (let r = r0; r <= r1; r++) for (let c = c0; c <= c1; c++) arr[r * w + c] = v;
  };
  return {
    labels,
    scores,
    dims: [h, w] as [number, number],
    gt: (r0: number, r1: number, c0: number, c1: number) => rect(labels, r0, r1, c0, c1, 1),
    void: (r0: number, r1: number, c0: number, c1: number) => rect(labels, r0, r1, c0, c1, 255),
    pred: (r0: number, r1: number, c0: number, c1: number, v = 1) => rect(scores, r0, r1, c0, c1, v),
  };
}

function expectValues(actual: Float64Array | number[], wanted: number[]): void {
  expect(actual.length).toBe(wanted.length);
  wanted.forEach((w, i) => expect(Math.abs(actual[i] - w)).toBeLessThan(1e-12));
}

// Image 1 (12 × 14). Ground truth: G1 rows 1–3 × cols 1–3 (9 px), G2 rows 1–3 × cols 6–8 (9 px),
// G3 rows 6–8 × cols 1–4 (12 px). Predictions (score 1, threshold 0.5):
//   P1 row 2 × cols 2–7 (6 px): 2 px on G1, 2 on background (cols 4–5), 2 on G2 — spans two GT components;
//   P2 rows 6–8 × cols 0–3 (12 px): 9 px on G3;
//   P3 rows 6–8 × cols 10–12 (9 px): background only;
//   P5 row 11 × cols 5–7 (3 px): smaller than minPredictedSize 4 → removed;
//   rows 10–11 × cols 0–1 at score 0.5 = threshold: not predicted (score > t, strictly).
function image1() {
  const im = canvas(12, 14);
  im.gt(1, 3, 1, 3);
  im.gt(1, 3, 6, 8);
  im.gt(6, 8, 1, 4);
  im.pred(2, 2, 2, 7);
  im.pred(6, 8, 0, 3);
  im.pred(6, 8, 10, 12);
  im.pred(11, 11, 5, 7);
  im.pred(10, 11, 0, 1, 0.5);
  return im;
}

// Image 2 (12 × 14), minGtSize 6. Ground truth: G5 rows 1–4 × cols 1–4 (16 px); G6 (1,7)–(1,8) (2 px < 6 →
// void); G7 row 8 × cols 8–12 (5 px < 6 → void). Predictions:
//   P6 rows 1–2 × cols 1–8 ∪ rows 3–4 × cols 1–4 (16 + 8 = 24 px ≥ 4, kept): 16 px on G5, 2 on G6 (now
//      void, so not counted), 6 on background → 22 non-void px;
//   P7 = G7's 5 px (≥ 4, survives the size filter) but lies wholly on void once G7 is voided → gone;
//   rows 10–11 × cols 0–5 are void with score 1 (and NaN in one pixel): void is never predicted.
function image2() {
  const im = canvas(12, 14);
  im.gt(1, 4, 1, 4);
  im.gt(1, 1, 7, 8);
  im.gt(8, 8, 8, 12);
  im.pred(1, 2, 1, 8);
  im.pred(3, 4, 1, 4);
  im.pred(8, 8, 8, 12);
  im.void(10, 11, 0, 5);
  im.pred(10, 11, 0, 5);
  im.scores[10 * 14 + 3] = NaN;
  return im;
}

const options = { threshold: 0.5, minPredictedSize: 4, minGtSize: 6 };

describe('hand-made masks', () => {
  test('image 1: |A| correction, a prediction spanning two GT components, strict threshold, small predictions removed', async () => {
    const m = new InstanceMetrics(options);
    const im = image1();
    const c = await m.add(im.scores, im.labels, im.dims);
    // G1: P̂ = {P1}, |k ∩ P̂| = 2, |A| = P1's 2 px on G2 → 2 / (9 + 6 − 2 − 2) = 2/11 (without the
    //     correction it would be 2/13); G2 the same by symmetry; G3: 9 / (12 + 12 − 9 − 0) = 9/15 = 0.6.
    expectValues(c.sIoU, [2 / 11, 2 / 11, 9 / 15]);
    expectValues(c.gtArea, [9, 9, 12]);
    // raster order of first pixels: P1 (2,2), P2 (6,0), P3 (6,10); P5 removed.
    // PPV: P1 4/6, P2 9/12, P3 0/9.
    expectValues(c.ppv, [4 / 6, 9 / 12, 0]);
    expectValues(c.predArea, [6, 12, 9]);
    // the benchmark's sIoU of predictions: P1: 4 / (6 + 18 − 4 − 0) = 0.2; P2: 9 / (12 + 12 − 9) = 0.6; P3: 0.
    expectValues(c.sIoUPred, [4 / 20, 9 / 15, 0]);
    const r = await m.finish();
    // τ:   .25 .30 .35 .40 .45 .50 .55 .60 .65 .70 .75
    // TP:  sIoU ≥ τ: only G3's 0.6, and only up to τ = 0.55: numpy.linspace's τ[7] is 0.6000000000000001 > 0.6.
    // FP:  PPV < τ: P3 (0) always; P1 (0.667) from τ = 0.70; P2 (0.75) never (0.75 < 0.75 is false).
    expect(r.thresholds[7]).toBe(0.6000000000000001);
    expect(r.tp).toEqual([1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0]);
    expect(r.fn).toEqual([2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3]);
    expect(r.fp).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2]);
    // F1 = 2TP / (2TP + FN + FP): 2 / (2 + 2 + 1) = 0.4 for τ ≤ 0.55, then 0.
    expectValues(r.f1, [0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0, 0, 0, 0]);
    expect(Math.abs(r.meanF1 - (7 * 0.4) / 11)).toBeLessThan(1e-12);
  });

  test('image 2: small GT components turned void, with the predictions on them', async () => {
    const m = new InstanceMetrics(options);
    const im = image2();
    const c = await m.add(im.scores, im.labels, im.dims);
    // G5: P̂ = {P6} with 22 non-void px, |k ∩ P̂| = 16, |A| = 0 (G6 is void now) → 16 / (16 + 22 − 16) = 16/22.
    expectValues(c.sIoU, [16 / 22]);
    expectValues(c.gtArea, [16]);
    // P6: 16 of its 22 non-void px on ground truth; P7 is absent (wholly on void), not a false positive.
    expectValues(c.ppv, [16 / 22]);
    expectValues(c.predArea, [22]);
    expectValues(c.sIoUPred, [16 / 22]);
  });

  test('pooled over the data set (images 1 and 2), never averaged per image', async () => {
    const m = new InstanceMetrics(options);
    for (const im of [image1(), image2()]) await m.add(im.scores, im.labels, im.dims);
    const r = await m.finish();
    expect([r.images, r.gtComponents, r.predictedComponents]).toEqual([2, 4, 4]);
    // sIoU: [2/11, 2/11, 0.6, 16/22] → mean (4/11 + 0.6 + 8/11) / 4 = (12/11 + 0.6) / 4
    expect(Math.abs(r.sIoU - (12 / 11 + 0.6) / 4)).toBeLessThan(1e-12);
    // PPV: [4/6, 0.75, 0, 16/22] → mean (2/3 + 3/4 + 8/11) / 4
    expect(Math.abs(r.ppv - (2 / 3 + 3 / 4 + 8 / 11) / 4)).toBeLessThan(1e-12);
    // τ:   .25 .30 .35 .40 .45 .50 .55 .60 .65 .70 .75
    // TP:  0.6 counts up to 0.55, 16/22 = 0.727 up to 0.70.
    // FP:  0 always; 2/3 from 0.70; 16/22 = 0.727 at 0.75; 0.75 never.
    expect(r.tp).toEqual([2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 0]);
    expect(r.fn).toEqual([2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 4]);
    expect(r.fp).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 3]);
    // F1: 4 / (4 + 2 + 1) = 4/7 (τ ≤ 0.55); 2 / (2 + 3 + 1) = 1/3 (0.60, 0.65); 2 / (2 + 3 + 2) = 2/7 (0.70);
    //     0 / (0 + 4 + 3) = 0 (0.75). Mean: (7·4/7 + 2·1/3 + 2/7 + 0) / 11.
    expectValues(r.f1, [4 / 7, 4 / 7, 4 / 7, 4 / 7, 4 / 7, 4 / 7, 4 / 7, 1 / 3, 1 / 3, 2 / 7, 0]);
    expect(Math.abs(r.meanF1 - (4 + 2 / 3 + 2 / 7) / 11)).toBeLessThan(1e-12);
  });

  test('8-connectivity: diagonal neighbours form one component', async () => {
    // G: two 2×2 squares touching at a corner (rows 0–1 × cols 0–1 and rows 2–3 × cols 2–3) = one
    // 8 px component; P: the first square only (4 px) → sIoU 4 / (8 + 4 − 4) = 0.5, PPV 1.
    const im = canvas(5, 5);
    im.gt(0, 1, 0, 1);
    im.gt(2, 3, 2, 3);
    im.pred(0, 1, 0, 1);
    const c = await new InstanceMetrics({ threshold: 0, minPredictedSize: 0, minGtSize: 0 }).add(im.scores, im.labels, im.dims);
    expectValues(c.sIoU, [0.5]);
    expectValues(c.gtArea, [8]);
    expectValues(c.ppv, [1]);
  });

  test('tracks: anomaly 500/100 px (default), obstacle 50/10 px', async () => {
    expect(TRACK_SIZES).toEqual({ anomaly: { minPredictedSize: 500, minGtSize: 100 }, obstacle: { minPredictedSize: 50, minGtSize: 10 } });
    // one 8×8 object (64 px) predicted exactly: below both anomaly filters, above both obstacle ones
    const im = canvas(20, 20);
    im.gt(5, 12, 5, 12);
    im.pred(5, 12, 5, 12);
    const anomaly = new InstanceMetrics({ threshold: 0.5 });
    const a = await anomaly.add(im.scores, im.labels, im.dims);
    expect([a.sIoU.length, a.ppv.length]).toEqual([0, 0]);
    const ra = await anomaly.finish();
    expect(ra.sIoU).toBeNaN(); // no component at all: the means and F1 are undefined
    expect(ra.f1.every((v) => Number.isNaN(v))).toBe(true);
    const obstacle = new InstanceMetrics({ threshold: 0.5, track: 'obstacle' });
    const o = await obstacle.add(im.scores, im.labels, im.dims);
    expectValues(o.sIoU, [1]);
    expectValues(o.ppv, [1]);
    const ro = await obstacle.finish();
    expect(ro.meanF1).toBe(1);
    expect(metricsTable([{ name: 'x', instance: ro }]).split('\n')[2]).toMatch(/100\.00\s+100\.00\s+100\.00$/);
  });
});

describe('random blobs = the scipy restatement of the benchmark (test/fixtures/recipes/metrics.py)', () => {
  const dir = path.join(__dirname, 'fixtures', 'metrics');
  const expected = JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8')).instance.blobs as {
    images: number;
    configs: Record<string, { threshold: number; minPredictedSize: number; minGtSize: number; perImage: { sIoU: number[]; ppv: number[]; sIoUPred: number[] }[]; pooled: InstanceMetricsResult }>;
  };

  test.each(Object.keys(expected.configs))('%s', async (name) => {
    const cfg = expected.configs[name];
    const m = new InstanceMetrics({ threshold: cfg.threshold, minPredictedSize: cfg.minPredictedSize, minGtSize: cfg.minGtSize });
    for (let i = 0; i < expected.images; i++) {
      const s = await readNpy(path.join(dir, 'instance', 'blobs', `img${i}.scores.npy`));
      const l = await readNpy(path.join(dir, 'instance', 'blobs', `img${i}.labels.npy`));
      if (!types.isFloat32Array(s.data) || !types.isUint8Array(l.data)) throw new Error('fixture dtypes');
      const c = await m.add(s.data, l.data, [s.dims[0], s.dims[1]]);
      expectValues(c.sIoU, cfg.perImage[i].sIoU);
      expectValues(c.ppv, cfg.perImage[i].ppv);
      expectValues(c.sIoUPred, cfg.perImage[i].sIoUPred);
    }
    const r = await m.finish();
    const e = cfg.pooled;
    expect([r.gtComponents, r.predictedComponents]).toEqual([e.gtComponents, e.predictedComponents]);
    expect([r.tp, r.fn, r.fp, r.thresholds]).toEqual([e.tp, e.fn, e.fp, e.thresholds]);
    expectValues(r.f1, e.f1);
    for (const k of ['sIoU', 'ppv', 'sIoUPred', 'meanF1'] as const) expect(Math.abs(r[k] - e[k])).toBeLessThan(1e-12);
  });
});

describe('bad arguments', () => {
  test('options', () => {
    expectThrow(() => new InstanceMetrics({} as never), 'TypeError', /^threshold is required$/);
    expectThrow(() => new InstanceMetrics({ threshold: '0.5' as never }), 'TypeError', /^threshold must be a number$/);
    expectThrow(() => new InstanceMetrics({ threshold: NaN }), 'RangeError', /^threshold must be a finite number, got NaN$/);
    expectThrow(() => new InstanceMetrics({ threshold: 0.5, minGtSize: -1 }), 'RangeError', /^minGtSize must be an integer in \[0, 2147483648\], got -1$/);
    expectThrow(() => new InstanceMetrics({ threshold: 0.5, minPredictedSize: 1.5 }), 'RangeError', /^minPredictedSize must be an integer/);
    expectThrow(() => new InstanceMetrics({ threshold: 0.5, track: 'road' as never }), 'RangeError', /^track must be "anomaly" or "obstacle", got "road"$/);
    expectThrow(() => new InstanceMetrics(undefined as never), 'TypeError', /^InstanceMetrics options must be an object/);
  });

  test('images', async () => {
    const m = new InstanceMetrics({ threshold: 0.5 });
    const dims: [number, number] = [2, 2];
    await expectRejection(m.add(new Float32Array(4), Uint8Array.from([0, 0, 0, 3]), dims), 'RangeError', /^image 0: pixel \(row 1, column 1\) has label 3; labels must be 0 \(in-distribution\), 1 \(OoD\) or 255 \(void\)$/);
    await expectRejection(m.add(Float32Array.from([0, Infinity, 0, 0]), new Uint8Array(4), dims), 'RangeError', /^image 1: pixel \(row 0, column 1\) has score Infinity; scores of non-void pixels must be finite$/);
    await expectRejection(m.add(new Float32Array(4), new Uint8Array(4), [2, 3]), 'RangeError', /^scores has 4 elements but its dims call for 6$/);
    await expectRejection(m.add(new Float64Array(4) as never, new Uint8Array(4), dims), 'TypeError', /^scores must be a Float32Array$/);
    await m.add(new Float32Array(4), new Uint8Array(4), dims);
    expect(m.images).toBe(1);
    await m.finish();
    await expectRejection(m.add(new Float32Array(4), new Uint8Array(4), dims), 'Error', /InstanceMetrics accumulator is finished/);
  });
});
