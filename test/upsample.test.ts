import fs from 'node:fs';
import path from 'node:path';
import { upsample, upsampleArgmax } from '../src/scoring/scores';
import { randomArray, rng } from './helpers/reference';
import { readFloatNpy } from '../src/common/npy';
import { expectRejection } from './helpers/errors';

const dir = path.join(__dirname, 'fixtures', 'upsample');
const cases = fs.readdirSync(dir).filter((f) => f.endsWith('.input.npy')).map((f) => f.replace('.input.npy', ''));

describe('bilinear upsampling matches PyTorch F.interpolate (fixtures from test/fixtures/recipes/upsample.py)', () => {
  test.each(cases.flatMap((c) => [[c, false], [c, true]] as [string, boolean][]))('%s align_corners=%s', async (name, align) => {
    const input = await readFloatNpy(path.join(dir, `${name}.input.npy`));
    const expected = await readFloatNpy(path.join(dir, `${name}.align${align ? 1 : 0}.npy`));
    const out = await upsample({ data: input.data, dims: input.dims as [number, number, number] }, [expected.dims[1], expected.dims[2]], { alignCorners: align });
    expect(out.dims).toEqual(expected.dims);
    for (let i = 0; i < expected.data.length; i++) expect(Math.abs(out.data[i] - expected.data[i])).toBeLessThan(1e-6);
  });

  test('same size is the identity; a constant map stays constant', async () => {
    const data = Float32Array.from({ length: 12 }, (_, i) => i * 0.5);
    expect((await upsample({ data, dims: [1, 3, 4] }, [3, 4])).data).toEqual(data);
    const c = await upsample({ data: new Float32Array(6).fill(2.5), dims: [1, 2, 3] }, [7, 9]);
    expect(c.data.every((v) => v === 2.5)).toBe(true);
  });

  test('bad arguments are TypeError/RangeError naming the argument', async () => {
    const data = new Float32Array(6);
    await expectRejection(upsample({ data, dims: [1, 2, 4] }, [4, 4]), 'RangeError', /input has 6 elements but its dims call for 8/);
    await expectRejection(upsample({ data, dims: [1, 2, 3] }, [0, 4]), 'RangeError', /size\[0\] must be a positive integer/);
    await expectRejection(upsample({ data, dims: [1, 2, 3] }, [1e6, 1e6]), 'RangeError', /more than 2\^31/);
    await expectRejection(upsample({ data: new Int32Array(6) as never, dims: [1, 2, 3] }, [2, 2]), 'TypeError', /maps must be/);
  });
});

/**
 * The full computation: every class upsampled on its own, then argmax with ties to the lowest class
 * (a NaN never wins, except as class 0 where nothing beats it), as upsampleArgmax promises.
 */
async function fullArgmax(logits: Float32Array, dims: [number, number, number, number], size: [number, number], alignCorners: boolean): Promise<Int32Array> {
  const [N, C, h, w] = dims;
  const [H, W] = size;
  const planes = (await upsample({ data: logits, dims: [N * C, h, w] }, size, { alignCorners })).data;
  const out = new Int32Array(N * H * W);
  for (let n = 0; n < N; n++)
    for (let i = 0; i < H * W; i++) {
      let best = 0;
      for (let c = 1; c < C; c++) if (planes[(n * C + c) * H * W + i] > planes[(n * C + best) * H * W + i]) best = c;
      out[n * H * W + i] = best;
    }
  return out;
}

async function expectFullArgmax(logits: Float32Array, dims: [number, number, number, number], size: [number, number], alignCorners = false): Promise<Int32Array> {
  const pred = await upsampleArgmax({ data: logits, dims }, size, { alignCorners });
  expect(pred.dims).toEqual([dims[0], ...size]);
  const full = await fullArgmax(logits, dims, size, alignCorners);
  const wrong = pred.data.findIndex((v, i) => v !== full[i]);
  expect(wrong < 0 ? 'all equal' : `pixel ${wrong}: ${pred.data[wrong]}, full computation ${full[wrong]}`).toBe('all equal');
  return pred.data;
}

/** Logits with regions: class k's logit falls off with the distance to its centre, plus noise. */
function regionLogits(N: number, C: number, h: number, w: number, seed: number, noise = 0.3): Float32Array {
  const r = rng(seed);
  const data = new Float32Array(N * C * h * w);
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++) {
      const [cy, cx] = [r() * h, r() * w];
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) data[((n * C + c) * h + y) * w + x] = -Math.hypot(y - cy, x - cx) / 4 + noise * (r() - 0.5);
    }
  return data;
}

describe('upsampleArgmax equals the argmax of each class upsampled separately', () => {
  test.each([false, true])('random logits: nearly every pixel near a class boundary (align_corners=%s)', async (alignCorners) => {
    const [N, C, h, w] = [2, 5, 6, 9];
    await expectFullArgmax(randomArray(N * C * h * w, rng(17), -3, 3), [N, C, h, w], [23, 31], alignCorners);
  });

  // Many classes (issue 20: 2^20 classes once asked for 16 GB of row caches): the working memory
  // stays that of two source rows of logits per thread.
  test('2100 classes, 1024 output columns', async () => {
    const [N, C, h, w] = [2, 2100, 6, 9];
    await expectFullArgmax(randomArray(N * C * h * w, rng(17), -3, 3), [N, C, h, w], [23, 1024]);
  });

  // Large regions: most output pixels take the clear-winner shortcut, the others the full path.
  test.each([
    [[1, 20, 32, 64], [128, 256], false],
    [[2, 7, 17, 23], [61, 97], true],
    [[1, 4, 40, 30], [40, 30], false], // same size
    [[1, 6, 48, 64], [20, 25], false], // shrinking
    [[1, 1, 5, 7], [13, 11], true], // one class: all 0
  ] as [[number, number, number, number], [number, number], boolean][])('regions %j → %j align_corners=%s', async (dims, size, alignCorners) => {
    const [N, C, h, w] = dims;
    const pred = await expectFullArgmax(regionLogits(N, C, h, w, 5 + C), dims, size, alignCorners);
    if (C > 1) expect(new Set(pred).size).toBeGreaterThan(1);
  });

  // Output rows with many pixels near class boundaries read pixel-major copies of their source
  // rows, the others the logits in place (native/core/upsample.cc, kDenseShare): both in one image.
  test('noisy rows (pixel-major path) beside rows of clean regions (in-place path)', async () => {
    const [C, h, w] = [12, 24, 40];
    const data = regionLogits(1, C, h, w, 21, 0.01);
    const r = rng(22);
    for (let c = 0; c < C; c++)
      for (let y = 8; y < 14; y++)
        for (let x = 0; x < w; x++) data[(c * h + y) * w + x] = 3 * (r() - 0.5);
    await expectFullArgmax(data, [1, C, h, w], [71, 123]);
    await expectFullArgmax(data, [1, C, h, w], [48, 80], true);
  });

  test('ties and near ties (equal logits, one ulp apart, huge, tiny and subnormal values) go to the lowest class as in the full computation', async () => {
    const [C, h, w] = [4, 12, 12];
    const r = rng(3);
    const data = new Float32Array(C * h * w);
    const ulp = (v: number) => { const f = new Float32Array([v]); new Int32Array(f.buffer)[0] += 1; return f[0]; };
    const bases = [1, 3e38, 1e-30, 1e-40, 0, 7];
    for (let p = 0; p < h * w; p++) {
      const base = bases[Math.floor(p / 24)] * (r() < 0.5 ? -1 : 1);
      for (let c = 0; c < C; c++) {
        const kind = Math.floor(r() * 3); // equal, one ulp up, or well apart
        data[c * h * w + p] = kind === 0 ? base : kind === 1 ? ulp(base) : base + (r() - 0.5) * Math.abs(base || 1);
      }
    }
    await expectFullArgmax(data, [1, C, h, w], [37, 41]);
    await expectFullArgmax(data, [1, C, h, w], [37, 41], true);
  });

  test('NaN and ±Infinity logits give what the full computation gives', async () => {
    const [C, h, w] = [3, 10, 10];
    const data = regionLogits(1, C, h, w, 9);
    const r = rng(4);
    for (let i = 0; i < 40; i++) data[Math.floor(r() * data.length)] = [NaN, Infinity, -Infinity][i % 3];
    await expectFullArgmax(data, [1, C, h, w], [31, 29]);
  });
});

const REAL = path.join(__dirname, '..', '..', 'shared', 'real');
const realLogits = path.join(REAL, 'roadanomaly21', 'tensors', '0.logits.npy');
(fs.existsSync(realLogits) ? describe : describe.skip)('upsampleArgmax on real ESPNetv2 logits (../shared/real)', () => {
  if (!fs.existsSync(realLogits)) console.warn(`real-logits test skipped: ${realLogits} not found`);
  test('roadanomaly21 image 0, [1, 20, 256, 512] to its 720×1280 image: equal to the full computation', async () => {
    const t = await readFloatNpy(realLogits);
    const pred = await expectFullArgmax(t.data, t.dims as [number, number, number, number], [720, 1280]);
    expect(new Set(pred).size).toBeGreaterThan(3);
  });
});

describe('output: the result written into a given array', () => {
  test('upsample and upsampleArgmax fill the given array, bit for bit what a new one holds, and give it back', async () => {
    const maps = { data: randomArray(2 * 9 * 13, rng(31), -5, 5), dims: [2, 9, 13] as [number, number, number] };
    const fresh = await upsample(maps, [40, 37]);
    const given = new Float32Array(2 * 40 * 37).fill(NaN); // stale contents: every element must be written
    const into = await upsample(maps, [40, 37], { output: given });
    expect(into.data).toBe(given);
    expect(Buffer.from(given.buffer).equals(Buffer.from(fresh.data.buffer))).toBe(true);

    const logits = { data: regionLogits(1, 6, 12, 16, 8), dims: [1, 6, 12, 16] as [number, number, number, number] };
    const pred = await upsampleArgmax(logits, [50, 61]);
    const slot = new Int32Array(50 * 61).fill(-7);
    const predInto = await upsampleArgmax(logits, [50, 61], { output: slot });
    expect(predInto.data).toBe(slot);
    expect(slot).toEqual(pred.data);
  });

  test('an output of the wrong type or size, detached, or sharing memory with the input is refused, naming it', async () => {
    const data = new Float32Array(6);
    const maps = { data, dims: [1, 2, 3] as [number, number, number] };
    await expectRejection(upsample(maps, [2, 2], { output: new Int32Array(4) as never }), 'TypeError', /output must be a Float32Array/);
    await expectRejection(upsample(maps, [2, 2], { output: new Float32Array(5) }), 'RangeError', /output has 5 elements but the result has 4/);
    const detached = new Float32Array(4);
    structuredClone(detached.buffer, { transfer: [detached.buffer] });
    await expectRejection(upsample(maps, [2, 2], { output: detached }), 'TypeError', /output is empty or its buffer was detached/);
    const shared = new Float32Array(12);
    await expectRejection(upsample({ data: shared.subarray(0, 6), dims: [1, 2, 3] }, [2, 3], { output: shared.subarray(4, 10) }), 'RangeError', /output shares memory with the input/);
    const logits = new Float32Array(2 * 4 * 4);
    await expectRejection(upsampleArgmax({ data: logits, dims: [1, 2, 4, 4] }, [4, 4], { output: new Int32Array(logits.buffer, 0, 16) }), 'RangeError', /output shares memory with the input/);
    await expectRejection(upsampleArgmax({ data: logits, dims: [1, 2, 4, 4] }, [4, 4], { output: new Float32Array(16) as never }), 'TypeError', /output must be an Int32Array/);
    // side by side in one buffer, not overlapping: fine
    const both = new Float32Array(6 + 4);
    const out = await upsample({ data: both.subarray(0, 6).fill(1), dims: [1, 2, 3] }, [2, 2], { output: both.subarray(6) });
    expect([...out.data]).toEqual([1, 1, 1, 1]);
  });
});
