/**
 * summarizeMaps (native/core/map_summary.cc), which `pgn score` and `pgn serve` report per score map,
 * against a float64 reference summed in index order: the mean must match bit for bit, with any
 * thread count. Edge cases: one value, extreme magnitudes, ±Infinity, NaN, a constant map.
 */
import { summarizeMaps } from '../src/scoring/summary';
import { native } from '../src/addon';
import { expectRejection, expectThrow } from './helpers/errors';
import { randomArray, rng } from './helpers/reference';

function reference(data: Float32Array): { min: number; max: number; mean: number } {
  let min = Infinity, max = -Infinity, sum = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
  }
  return { min, max, mean: sum / data.length };
}

test('random maps of many sizes match the float64 reference exactly, for 1 thread and all cores', async () => {
  const r = rng(11);
  const maps = [1, 2, 7, 1000, 65537, 1024 * 2048].map((n, k) => randomArray(n, r, k % 2 ? -3 : 0, k % 2 ? 1e3 : 1));
  for (const threads of [1, 0]) {
    const got = await summarizeMaps(maps, { threads });
    expect(got).toEqual(maps.map(reference));
  }
});

test('edge cases: extreme values, infinities, a constant map, NaN', async () => {
  const cases = [
    new Float32Array([3.4e38, 3.4e38, -3.4e38]), // the float64 sum does not overflow
    new Float32Array([1e-45, -1e-45, 0, -0]),
    new Float32Array([Infinity, 1, 2]),
    new Float32Array([-Infinity, Infinity]), // mean NaN
    new Float32Array(5000).fill(0.25),
    new Float32Array([NaN, 5, -2]), // min and max skip NaN, the mean is NaN
    new Float32Array([NaN]),
  ];
  const got = await summarizeMaps(cases);
  expect(got).toEqual(cases.map(reference));
  expect(got[0]!.mean / (Math.fround(3.4e38) / 3)).toBeCloseTo(1, 12);
  expect(got[5]).toEqual({ min: -2, max: 5, mean: NaN });
  expect(got[6]).toEqual({ min: Infinity, max: -Infinity, mean: NaN });
});

test('no maps give no summaries; bad arguments are typed errors', async () => {
  await expect(summarizeMaps([])).resolves.toEqual([]);
  expectThrow(() => native.summarizeMaps({ maps: 'x' as never }), 'TypeError', /maps must be an array of Float32Arrays/);
  expectThrow(() => native.summarizeMaps({ maps: [new Float64Array(3) as never] }), 'TypeError', /maps\[0\] must be a Float32Array/);
  expectThrow(() => native.summarizeMaps({ maps: [new Float32Array(2), new Float32Array(0)] }), 'TypeError', /maps\[1\] is empty or its buffer was detached/);
  expectThrow(() => native.summarizeMaps({ maps: [new Float32Array(2)], threads: -1 }), 'RangeError', /threads/);
  const gone = new Float32Array(4);
  structuredClone(gone.buffer, { transfer: [gone.buffer] });
  expectThrow(() => native.summarizeMaps({ maps: [gone] }), 'TypeError', /maps\[0\] is empty or its buffer was detached/);
  await expectRejection(Promise.resolve().then(() => native.summarizeMaps(undefined as never)), 'TypeError', /summarizeMaps options/);
});
