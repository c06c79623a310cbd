import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FprThreshold } from '../src/scoring/fpr-threshold';
import { thresholdAtFpr } from '../src/scoring/segments';
import { random } from './helpers/onnx-builder';

/** Maps with ties, negatives, ±0, ±Infinity, NaN, tiny and huge magnitudes. */
function maps(count: number, size: number, seed: number): Float32Array[] {
  const rand = random(seed);
  const special = [0, -0, Infinity, -Infinity, NaN, 1e-40, -1e38, 3.5, 3.5, 3.5];
  return Array.from({ length: count }, () => Float32Array.from({ length: size }, () => {
    const r = rand();
    if (r > 0.9) return special[Math.floor((rand() + 1) * 5)]!;
    if (r > 0.6) return Math.round(rand() * 4); // many ties
    return rand() * 10 ** Math.round(rand() * 6);
  }));
}

function concat(arrays: ArrayLike<number>[], Type: Float32ArrayConstructor | Uint8ArrayConstructor) {
  const out = new Type(arrays.reduce((a, m) => a + m.length, 0));
  let at = 0;
  for (const m of arrays) out.set(m, (at += m.length) - m.length);
  return out;
}

describe('FprThreshold: thresholdAtFpr streamed over images, exact', () => {
  test.each([0, 0.001, 0.05, 0.29, 0.5, 0.999, 1])('fpr %p, with and without masks, spilled to disk or not', async (fpr) => {
    const all = maps(7, 333, 11);
    const masks = maps(7, 333, 12).map((m) => Uint8Array.from(m, (v) => (v > 0.5 ? 0 : 1)));
    const whole = { data: concat(all, Float32Array) as Float32Array, dims: [7, 1, 333] as [number, number, number] };
    const everything = { data: new Uint8Array(7 * 333).fill(1), dims: whole.dims };
    const expected = thresholdAtFpr(whole, everything, fpr);
    const expectedMasked = thresholdAtFpr(whole, { data: concat(masks, Uint8Array) as Uint8Array, dims: whole.dims }, fpr);
    for (const chunkValues of [1, 100, 1 << 20]) {
      const plain = new FprThreshold(fpr, { chunkValues });
      const masked = new FprThreshold(fpr, { chunkValues });
      for (const [i, m] of all.entries()) {
        await plain.add(m);
        await masked.add(m, masks[i]);
      }
      expect(plain.pixels).toBe(7 * 333);
      expect(Object.is(await plain.finish(), expected)).toBe(true);
      expect(Object.is(await masked.finish(), expectedMasked)).toBe(true);
    }
  });

  test('a million pixels spread over many chunks give the exact order statistic', async () => {
    const t = new FprThreshold(0.05, { chunkValues: 4096 });
    const rand = random(3);
    const values = Float32Array.from({ length: 1 << 20 }, () => rand() * 100);
    for (let i = 0; i < values.length; i += 1 << 16) await t.add(values.subarray(i, i + (1 << 16)));
    const sorted = Float32Array.from(values).sort();
    expect(await t.finish()).toBe(sorted[values.length - 1 - Math.floor(0.05 * values.length)]);
  });

  test('the temporary file lives in tmpDir and is removed by finish and by dispose', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgn-fpr-'));
    const t = new FprThreshold(0.1, { chunkValues: 10, tmpDir: dir });
    await t.add(new Float32Array(100).fill(2));
    expect(fs.readdirSync(dir)).toHaveLength(1);
    expect(await t.finish()).toBe(2);
    expect(fs.readdirSync(dir)).toHaveLength(0);
    const abandoned = new FprThreshold(0.1, { chunkValues: 10, tmpDir: dir });
    await abandoned.add(new Float32Array(100));
    await abandoned.dispose();
    expect(fs.readdirSync(dir)).toHaveLength(0);
    await expect(abandoned.add(new Float32Array(1))).rejects.toThrow(/add after finish/);
  });

  test('bad arguments are typed errors', async () => {
    expect(() => new FprThreshold(1.5)).toThrow(RangeError);
    expect(() => new FprThreshold(NaN)).toThrow(/fpr must be a number in \[0, 1\]/);
    expect(() => new FprThreshold(0.1, { chunkValues: 0 })).toThrow(/chunkValues must be a positive integer/);
    const t = new FprThreshold(0.1);
    await expect(t.add([1, 2] as unknown as Float32Array)).rejects.toThrow(TypeError);
    await expect(t.add(new Float32Array(3), new Uint8Array(2))).rejects.toThrow(/inDistribution must be a Uint8Array of 3 values/);
    await expect(t.finish()).rejects.toThrow(/no in-distribution pixel/);
  });
});
