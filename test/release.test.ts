/**
 * Releasing arrays early (native/binding/release_binding.cc, Scorer.release): the memory goes back at
 * once, the arrays read as empty, a result's segments stay usable, and nothing is released that
 * another view still shows.
 */
import path from 'node:path';
import { native, releaseArrays } from '../src/addon';
import { Scorer } from '../src/run/scorer';
import { expectThrow } from './helpers/errors';

const image = path.join(__dirname, '..', 'models', 'demo', 'eval', 'images', 'demo_000.jpg');

test('release detaches whole buffers; views of part of a buffer and shared memory are refused', () => {
  const big = new Float32Array(4 * 1024 * 1024); // 16 MiB: past the size where outputs get mappings of their own
  const small = new Int32Array(10);
  native.release([big, small]);
  expect([big.length, big.buffer.byteLength, small.length]).toEqual([0, 0, 0]);
  native.release([big]); // already released: nothing to do
  const whole = new Float32Array(8);
  expectThrow(() => native.release([whole.subarray(2)]), 'RangeError', /arrays\[0\] is a view of part of a larger buffer \(24 of 32 bytes\)/);
  expect(whole.length).toBe(8);
  expectThrow(() => native.release([new Float32Array(new SharedArrayBuffer(16))]), 'TypeError', /SharedArrayBuffer/);
  expectThrow(() => native.release([whole, {} as never]), 'TypeError', /arrays\[1\] must be a typed array/);
  expect(whole.length).toBe(8); // nothing is released when one item is refused
  expectThrow(() => native.release('x' as never), 'TypeError', /release expects an array of typed arrays/);
});

test('releaseArrays leaves views of part of a buffer to the collector', () => {
  const buffer = new Float32Array(16);
  const part = buffer.subarray(0, 8);
  releaseArrays([part, undefined, null]);
  expect([part.length, buffer.length]).toEqual([8, 16]);
});

test('Scorer.release empties the maps, prediction and labels; the segments stay', async () => {
  const scorer = await Scorer.create({ executionProviders: ['cpu'], segments: { minArea: 0 } });
  try {
    const result = await scorer.score(image);
    const expected = { segments: JSON.parse(JSON.stringify(result.segments)), map: result.maps[0]!.data.slice() };
    expect(result.segments!.length).toBeGreaterThan(0);
    scorer.release(result);
    expect(result.maps[0]!.data).toHaveLength(0);
    expect(result.prediction).toHaveLength(0);
    expect(result.segmentLabels).toHaveLength(0);
    expect(JSON.parse(JSON.stringify(result.segments))).toEqual(expected.segments);
    // The scorer's own arrays (released inside each call) do not leak into the next result.
    const again = await scorer.score(image);
    expect(again.maps[0]!.data).toEqual(expected.map);
    await expect(scorer.segmentsOf(result, {})).rejects.toThrow(/the result's arrays were released \(Scorer\.release\)/);
  } finally {
    await scorer.dispose();
  }
});
