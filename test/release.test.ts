/**
 * Releasing arrays early (native/binding/release_binding.cc, Scorer.release): the memory goes back at
 * once, the arrays read as empty, a result's segments stay usable, and nothing is released that
 * another view still shows.
 */
import path from 'node:path';
import fs from 'node:fs';
import sharp from 'sharp';
import { native, releaseArrays } from '../src/addon';
import { ArrayPool } from '../src/run/array-pool';
import { ImageResult, Scorer } from '../src/run/scorer';
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

describe('reuseArrays: released results\' maps and prediction are written again by later images', () => {
  const images = ['demo_000', 'demo_001', 'demo_002'].map((f) => path.join(__dirname, '..', 'models', 'demo', 'eval', 'images', `${f}.jpg`));
  const arrays = (r: ImageResult) => [...r.maps.map((m) => m.data), r.prediction!];

  test('results equal those of a scorer without it, in arrays of released results of the same size', async () => {
    const small = await sharp(fs.readFileSync(images[1]!)).resize(300, 150).jpeg().toBuffer(); // another size: no array fits it
    const options = { executionProviders: ['cpu' as const], scores: ['pgn-oh:p=0.5', 'entropy'], segments: { minArea: 0 } };
    const plain = await Scorer.create(options);
    const reusing = await Scorer.create({ ...options, reuseArrays: true });
    try {
      const inputs = [images[0]!, small, images[1]!, images[2]!, small];
      const expected = [];
      for (const input of inputs) expected.push(await plain.score(input));
      let previous: ImageResult | undefined;
      for (const [i, input] of inputs.entries()) {
        const result = await reusing.score(input);
        for (const [k, m] of result.maps.entries()) expect(m.data).toEqual(expected[i]!.maps[k]!.data);
        expect(result.prediction).toEqual(expected[i]!.prediction);
        expect(JSON.parse(JSON.stringify(result.segments))).toEqual(JSON.parse(JSON.stringify(expected[i]!.segments)));
        if (previous && previous.width === result.width) {
          // the previous result's arrays, all three of them, each again in its own role
          expect(result.maps[0]!.data === previous.maps[0]!.data || result.maps[0]!.data === previous.maps[1]!.data).toBe(true);
          expect(result.prediction).toBe(previous.prediction);
        } else if (previous) {
          for (const a of arrays(result)) expect(arrays(previous)).not.toContain(a);
        }
        const kept = arrays(result).map((a) => a.length);
        reusing.release(result);
        expect(arrays(result).map((a) => a.length)).toEqual(kept); // kept, not detached
        await expect(reusing.segmentsOf(result, {})).rejects.toThrow(/the result's arrays were released \(Scorer\.release\)/);
        previous = result;
      }
    } finally {
      await Promise.all([plain.dispose(), reusing.dispose()]);
    }
  });

  test('a result released twice gives its arrays to one later result only', async () => {
    const scorer = await Scorer.create({ executionProviders: ['cpu'], reuseArrays: true });
    try {
      const first = await scorer.score(images[0]!);
      scorer.release(first);
      scorer.release(first);
      const [a, b] = await Promise.all([scorer.score(images[1]!), scorer.score(images[2]!)]);
      expect(arrays(a).some((x) => arrays(b).includes(x))).toBe(false);
      expect(arrays(a).filter((x) => arrays(first).includes(x)).length + arrays(b).filter((x) => arrays(first).includes(x)).length).toBe(2);
      expect(a.maps[0]!.data).not.toEqual(b.maps[0]!.data);
    } finally {
      await scorer.dispose();
    }
  });
});

describe('ArrayPool', () => {
  test('keeps whole arrays up to maxBytes, the oldest released beyond; takes by type and length', () => {
    const pool = new ArrayPool(100);
    const [a, b, c] = [new Float32Array(10), new Int32Array(10), new Float32Array(10)]; // 40 bytes each
    const part = new Float32Array(20).subarray(0, 10);
    pool.give([a, b, part, undefined]);
    expect(part.length).toBe(10); // a view of part of a buffer: neither kept nor detached
    pool.give([a]); // already kept: once
    pool.give([c]); // 120 bytes: a, the oldest, goes
    expect(a.length).toBe(0);
    expect(pool.take(Float32Array, 10)).toBe(c);
    expect(pool.take(Float32Array, 10)).toBeUndefined();
    expect(pool.take(Float32Array, 11)).toBeUndefined();
    expect(pool.take(Int32Array, 10)).toBe(b);
    const big = new Float32Array(30); // 120 bytes: more than the pool holds
    pool.give([big]);
    expect(big.length).toBe(0);
    const d = new Int32Array(5);
    pool.give([d]);
    pool.clear();
    expect(d.length).toBe(0);
    expect(pool.take(Int32Array, 5)).toBeUndefined();
  });
});
