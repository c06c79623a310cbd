/**
 * The scorer and the streaming pipeline on a tiny ONNX model built in the test: results equal the
 * scores computed directly from the model's tensors, come in input order, bad images get their own
 * error, the stream pulls inputs lazily and stops on an AbortSignal.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { buildSegModel } from './helpers/onnx-builder';
import { ImageError } from '../src/common/errors';
import { scoreStream } from '../src/run/pipeline';
import { Scorer } from '../src/run/scorer';
import { computeScores, upsample } from '../src/scoring/scores';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgn-pipeline-'));
const card = {
  name: 'tiny',
  model: 'model.onnx',
  input: { name: 'input', height: 16, width: 16, resize: 'stretch', channelOrder: 'rgb', scale: 255, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] },
  classes: ['a', 'b', 'c', 'd', 'e'].map((name, i) => ({ name, color: [i * 50, 100, 200 - i * 40] })),
  recommended: { score: 'pgn-oh:p=0.5', threshold: 1 },
};

async function image(seed: number, width = 20, height = 12): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 37 + seed * 101) % 256;
  return sharp(raw, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

let scorer: Scorer;
const images: Buffer[] = [];

beforeAll(async () => {
  fs.writeFileSync(path.join(dir, 'model.onnx'), buildSegModel({ dynamic: true }).bytes);
  fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(card));
  for (let i = 0; i < 7; i++) images.push(await image(i, 20 + i, 12 + (i % 3)));
  scorer = await Scorer.create({ model: dir, scores: ['pgn-oh:p=0.5', 'entropy'], executionProviders: ['cpu'], segments: { minArea: 0 } });
});
afterAll(async () => {
  await scorer.dispose();
  await expect(scorer.dispose()).resolves.toBeUndefined(); // a second dispose() is a no-op
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a scored image equals the scores of the model\'s own tensors, upsampled to the image size', async () => {
  const decoded = await scorer.decode(images[3]);
  const r = await scorer.score(images[3]);
  const size = decoded.original ?? decoded; // decoded straight to the model input size where that is exact
  expect([r.width, r.height]).toEqual([size.width, size.height]);
  const { toTensor } = await import('../src/image/preprocess');
  const batch = await toTensor([decoded], card as never);
  const out = await scorer.session.run(batch.data, batch.dims);
  const direct = await computeScores({ data: out.logits, dims: out.logitsDims }, { data: out.features, dims: out.featuresDims }, { scores: ['pgn-oh:p=0.5', 'entropy'] });
  for (const k of [0, 1]) {
    const up = await upsample(direct.maps[k].map, [r.height, r.width]);
    expect(r.maps[k].data).toEqual(up.data);
  }
  expect(r.prediction).toHaveLength(r.width * r.height);
  expect(r.segments!.length).toBeGreaterThan(0); // threshold 1 from the card: most pixels above
  expect(r.segmentLabels).toHaveLength(r.width * r.height);
});

test('segments.labels false gives the same segments without the label image', async () => {
  const lean = await Scorer.create({ model: dir, scores: ['pgn-oh:p=0.5', 'entropy'], executionProviders: ['cpu'], segments: { minArea: 0, labels: false } });
  try {
    for (const input of [images[1], images[4]]) {
      const [full, without] = [await scorer.score(input), await lean.score(input)];
      expect(without.segmentLabels).toBeUndefined();
      expect(full.segmentLabels).toHaveLength(full.width * full.height);
      expect(without.segments!.length).toBeGreaterThan(0);
      expect(without.segments).toEqual(full.segments);
      expect(without.maps).toEqual(full.maps);
      // segmentsOf, for overlays drawn later, still gives the label image
      const again = await lean.segmentsOf(without, {});
      expect(again.segmentLabels).toEqual(full.segmentLabels);
    }
  } finally {
    await lean.dispose();
  }
});

test.each([1, 3])('results come in input order, bad inputs as their own errors (batch %i)', async (batchSize) => {
  const inputs = [images[0], Buffer.from('not an image'), images[1], Buffer.alloc(0), images[2], (await image(9)).subarray(0, 40), images[3]];
  const items = [];
  for await (const item of scoreStream(scorer, inputs, { batchSize })) items.push(item);
  expect(items.map((i) => i.index)).toEqual([0, 1, 2, 3, 4, 5, 6]);
  expect(items.map((i) => (i.error ? 'error' : 'ok'))).toEqual(['ok', 'error', 'ok', 'error', 'ok', 'error', 'ok']);
  for (const i of items.filter((i) => i.error)) expect(i.error).toBeInstanceOf(ImageError);
  // Each good result is the one of its own image, whatever batch it ran in.
  const alone = await scorer.score(images[2]);
  expect(items[4].result!.maps[0].data).toEqual(alone.maps[0].data);
});

test.each([1, 3])('a caller\'s mistake among the inputs (a number) is thrown by the iterator in its turn (batch %i)', async (batchSize) => {
  const inputs = [images[0], Buffer.alloc(0), 42, images[1]] as Buffer[];
  const items: string[] = [];
  const run = (async () => {
    for await (const item of scoreStream(scorer, inputs, { batchSize })) items.push(item.error ? 'error' : 'ok');
  })();
  await expect(run).rejects.toThrow(new TypeError('an image must be a file path, a Buffer or a Uint8Array of encoded bytes, got number'));
  expect(items).toEqual(['ok', 'error']);
});

test('the next batch is in the scorer (its inference) while the previous one finishes and is yielded', async () => {
  const events: string[] = [];
  const original = scorer.scoreDecoded.bind(scorer);
  let calls = 0;
  const spied = jest.spyOn(scorer, 'scoreDecoded').mockImplementation(async (images, sizes) => {
    const k = calls++;
    events.push(`start ${k}`);
    const results = await original(images, sizes);
    events.push(`done ${k}`);
    return results;
  });
  try {
    const got = [];
    for await (const item of scoreStream(scorer, images.slice(0, 6), { batchSize: 2 })) {
      events.push(`yield ${item.index}`);
      got.push(item);
    }
    expect(got.map((i) => i.index)).toEqual([0, 1, 2, 3, 4, 5]);
    for (const [i, item] of got.entries()) expect(item.result!.maps[0].data).toEqual((await original([await scorer.decode(images[i])]))[0].maps[0].data);
    // batch k + 1 starts before batch k's first result is yielded, and never more than two at once
    expect(events.indexOf('start 1')).toBeLessThan(events.indexOf('yield 0'));
    expect(events.indexOf('start 2')).toBeLessThan(events.indexOf('yield 2'));
    expect(events.indexOf('start 2')).toBeGreaterThan(events.indexOf('done 0'));
  } finally {
    spied.mockRestore();
  }
});

test('inputs are pulled lazily: no more than prefetch ahead of the consumer', async () => {
  let pulled = 0;
  function* source() {
    for (let i = 0; i < 50; i++) {
      pulled++;
      yield images[i % images.length];
    }
  }
  const stream = scoreStream(scorer, source(), { batchSize: 2, prefetch: 4 });
  await stream.next();
  expect(pulled).toBeLessThanOrEqual(2 + 4 + 2);
  await stream.return(undefined);
  expect(pulled).toBeLessThan(50);
});

test('an AbortSignal stops the stream with an AbortError', async () => {
  const controller = new AbortController();
  const seen: number[] = [];
  const run = (async () => {
    for await (const item of scoreStream(scorer, Array(40).fill(images[0]), { signal: controller.signal })) {
      seen.push(item.index);
      if (seen.length === 3) controller.abort();
    }
  })();
  await expect(run).rejects.toMatchObject({ name: 'AbortError' });
  expect(seen).toEqual([0, 1, 2]);
});

test('a batch that fails as a whole (mixed sizes, resize "none") is scored image by image: no image lost', async () => {
  const native = path.join(dir, 'native');
  fs.mkdirSync(native);
  fs.writeFileSync(path.join(native, 'model.onnx'), buildSegModel({ dynamic: true }).bytes);
  fs.writeFileSync(path.join(native, 'model.json'), JSON.stringify({ ...card, input: { ...card.input, resize: 'none', height: undefined, width: undefined } }));
  const mixed = await Scorer.create({ model: native, scores: ['pgn-oh:p=0.5'], executionProviders: ['cpu'] });
  try {
    const decoded = await Promise.all([images[0], images[1]].map((i) => mixed.decode(i)));
    await expect(mixed.scoreDecoded(decoded)).rejects.toThrow(); // the batch alone cannot run
    const items = [];
    for await (const item of scoreStream(mixed, [images[0], images[1], Buffer.from('bad'), images[2]], { batchSize: 2 })) items.push(item);
    expect(items.map((i) => (i.error ? i.error.code : 'ok'))).toEqual(['ok', 'ok', 'PGN_IMAGE', 'ok']);
    for (const k of [0, 1]) expect(items[k].result!.maps[0].data).toEqual((await mixed.score(images[k])).maps[0].data);
    expect([items[1].result!.width, items[1].result!.height]).toEqual([21, 13]);
  } finally {
    await mixed.dispose();
  }
});
