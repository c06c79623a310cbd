/**
 * Dynamic batching of Scorer.score() (issue 15): concurrent single-image calls share one inference
 * batch, and every result is bit-identical to the same image scored alone: maps, prediction and
 * segments; for a model of any batch size, a fixed batch size (padded batches) and resize "none"
 * (a batch only holds images of one size).
 */
import fs from 'node:fs';
import sharp from 'sharp';
import { ModelSession } from '../src/model/session';
import { ImageResult, Scorer, ScorerOptions } from '../src/run/scorer';
import { writeSlowModel, SlowModelOptions } from './helpers/slow-model';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** Noisy images of several sizes, so that no two results agree by accident. */
function images(sizes: [number, number][]): Promise<Buffer[]> {
  return Promise.all(sizes.map(([w, h], k) => {
    const raw = Buffer.alloc(w * h * 3);
    for (let i = 0; i < raw.length; i++) raw[i] = (i * (k + 5) * 2654435761) >>> 24;
    return sharp(raw, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer();
  }));
}

async function scoreAll(model: string, inputs: Buffer[], options: ScorerOptions): Promise<ImageResult[]> {
  const scorer = await Scorer.create({ model, intraOpThreads: 1, segments: {}, ...options });
  try {
    return await Promise.all(inputs.map((input) => scorer.score(input)));
  } finally {
    await scorer.dispose();
  }
}

function expectIdentical(batched: ImageResult[], alone: ImageResult[]): void {
  batched.forEach((b, i) => {
    const a = alone[i]!;
    expect([b.width, b.height]).toEqual([a.width, a.height]);
    b.maps.forEach((m, k) => expect(Buffer.from(m.data.buffer).equals(Buffer.from(a.maps[k]!.data.buffer))).toBe(true));
    expect(Buffer.from(b.prediction!.buffer).equals(Buffer.from(a.prediction!.buffer))).toBe(true);
    expect(b.segments).toEqual(a.segments);
  });
}

async function check(model: SlowModelOptions, sizes: [number, number][], expectedBatches: number[]): Promise<void> {
  const dir = writeSlowModel({ layers: 2, channels: 16, size: 64, ...model });
  dirs.push(dir);
  const inputs = await images(sizes);
  const alone = await scoreAll(dir, inputs, { maxBatch: 1 });
  expect(alone.every((r) => r.batchSize === 1)).toBe(true);
  // a long delay: on a loaded machine every image is decoded before its batch goes, whatever the timing
  const batched = await scoreAll(dir, inputs, { maxBatch: 4, maxDelayMs: 2000 });
  // The batches are reported per result; which image lands in which batch follows decode timing, so
  // the sizes are compared as a multiset.
  const sorted = (a: number[]) => [...a].sort((x, y) => x - y);
  expect(sorted(batched.map((r) => r.batchSize!))).toEqual(sorted(expectedBatches));
  expectIdentical(batched, alone);
  expect(batched.some((r) => (r.segments ?? []).length > 0)).toBe(true); // the segments compared are not all empty
}

test('four concurrent calls of different sizes make one batch, each result identical to the image alone', async () => {
  await check({}, [[70, 50], [64, 64], [33, 90], [120, 40]], [4, 4, 4, 4]);
});

test('a fixed batch size caps maxBatch and pads the last batch; results identical', async () => {
  await check({ batch: 3 }, [[70, 50], [64, 64], [33, 90], [120, 40], [50, 50]], [3, 3, 3, 2, 2]);
});

test('resize "none": a batch holds images of one size only, the others wait for the next; results identical', async () => {
  await check({ anySize: true }, [[40, 30], [24, 24], [40, 30], [24, 24], [40, 30]], [3, 2, 3, 2, 3]);
});

test('ModelSession.run: a batch larger than a fixed batch size runs in padded chunks, each image as if alone', async () => {
  const dir = writeSlowModel({ layers: 2, channels: 16, size: 32, batch: 2 });
  dirs.push(dir);
  const session = await ModelSession.create(dir);
  try {
    expect(session.fixedBatch).toBe(2);
    const per = 3 * 32 * 32;
    const input = Float32Array.from({ length: 5 * per }, (_, i) => Math.sin(i * 0.37));
    const all = await session.run(input, [5, 3, 32, 32]);
    expect(all.logitsDims[0]).toBe(5);
    expect(all.featuresDims[0]).toBe(5);
    for (let n = 0; n < 5; n++) {
      const pair = new Float32Array(2 * per);
      pair.set(input.subarray(n * per, (n + 1) * per));
      const alone = await session.run(pair, [2, 3, 32, 32]);
      const size = alone.logits.length / 2;
      expect(Buffer.from(all.logits.subarray(n * size, (n + 1) * size).slice().buffer).equals(Buffer.from(alone.logits.subarray(0, size).slice().buffer))).toBe(true);
    }
  } finally {
    await session.dispose();
  }
});
