import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { evaluate } from '../src/eval/evaluate';
import { InstanceMetrics } from '../src/eval/metrics';
import { readDataset, readLabelMask } from '../src/eval/dataset';
import { loadModelCard } from '../src/model/model-card';
import { Scorer } from '../src/run/scorer';
import { thresholdAtFpr } from '../src/scoring/segments';

const run = promisify(execFile);
const cli = path.join(__dirname, '..', 'dist', 'cli', 'index.js');
const demo = path.join(__dirname, '..', 'models', 'demo');
const demoImages = path.join(demo, 'eval', 'images');
type Failure = { code: number; stderr: string };

let dir: string;
let model: string;
let data: string;
beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgn-calibrate-'));
  model = path.join(dir, 'net');
  fs.mkdirSync(model);
  fs.copyFileSync(path.join(demo, 'model.onnx'), path.join(model, 'seg.onnx'));
  await run('node', [cli, 'card', 'init', path.join(model, 'seg.onnx')]);
  data = path.join(dir, 'data'); // the first 4 demo images with their masks
  for (const sub of ['images', 'labels_masks']) fs.mkdirSync(path.join(data, sub), { recursive: true });
  for (const item of readDataset(path.join(demo, 'eval')).slice(0, 4)) {
    fs.copyFileSync(item.image, path.join(data, 'images', path.basename(item.image)));
    fs.copyFileSync(item.label, path.join(data, 'labels_masks', path.basename(item.label)));
  }
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Each item's pgn-oh:p=0.5 map at its mask's size, through the API. */
async function referenceMaps() {
  const scorer = await Scorer.create({ model, scores: ['pgn-oh:p=0.5'], prediction: false });
  try {
    const out = [];
    for (const item of readDataset(data)) {
      const label = await readLabelMask(item.label);
      const [r] = await scorer.scoreDecoded([await scorer.decode(item.image)], [label]);
      out.push({ map: r!.maps[0]!.data, label });
    }
    return out;
  } finally {
    await scorer.dispose();
  }
}

function stack(arrays: ArrayLike<number>[], Type: Float32ArrayConstructor | Uint8ArrayConstructor, h: number, w: number) {
  const data = new Type(arrays.length * h * w);
  arrays.forEach((a, i) => data.set(a, i * h * w));
  return { data, dims: [arrays.length, h, w] as [number, number, number] };
}

test('unlabeled images: the exact threshold at --fpr goes into the card, and pgn score then finds segments', async () => {
  const images = readDataset(data).map((i) => i.image);
  const { stdout, stderr } = await run('node', [cli, 'calibrate', '--model', model, '--fpr', '0.1', '--json', ...images]);
  const record = JSON.parse(stdout);
  expect(stderr).toMatch(/pgn calibrate images: 4\/4/); // progress (plain lines when stderr is not a terminal)
  const maps = await referenceMaps();
  const { height: h, width: w } = maps[0]!.label;
  const all = stack(maps.map((m) => m.map), Float32Array, h, w) as { data: Float32Array; dims: [number, number, number] };
  expect(record.threshold).toBe(thresholdAtFpr(all, { data: new Uint8Array(all.data.length).fill(1), dims: all.dims }, 0.1));
  expect(record).toMatchObject({ score: 'pgn-oh:p=0.5', fpr: 0.1, images: 4, pixels: 4 * h * w, version: expect.any(String), card: path.join(model, 'model.json') });
  expect(Date.parse(record.date)).toBeGreaterThan(Date.parse('2026-01-01'));
  const { card } = await loadModelCard(model);
  expect(card.recommended).toEqual({ score: 'pgn-oh:p=0.5', threshold: record.threshold });
  expect(card.calibration).toEqual(Object.fromEntries(Object.entries(record).filter(([k]) => k !== 'card')));
  expect(card.unchecked).toHaveLength(5); // the rest of the card is kept

  const scored = await run('node', [cli, 'score', '--model', model, images[0]!]);
  expect(scored.stderr).not.toMatch(/no segments/);
  const line = JSON.parse(scored.stdout);
  const flagged = maps[0]!.map.filter((v) => v > record.threshold).length;
  expect(line.segments.reduce((a: number, s: { area: number }) => a + s.area, 0)).toBeLessThanOrEqual(flagged);
  expect(line.segments.length).toBeGreaterThan(0);
});

test('--dataset: fpr on the in-distribution pixels, best pixel F1, best component F1 among its candidates', async () => {
  const maps = await referenceMaps();
  const { height: h, width: w } = maps[0]!.label;
  const all = stack(maps.map((m) => m.map), Float32Array, h, w) as { data: Float32Array; dims: [number, number, number] };
  const inDist = stack(maps.map((m) => Uint8Array.from(m.label.data, (v) => (v === 0 ? 1 : 0))), Uint8Array, h, w) as { data: Uint8Array; dims: [number, number, number] };
  const calibrated = async (...args: string[]) => JSON.parse((await run('node', [cli, 'calibrate', '--model', model, '--dataset', data, '--json', ...args])).stdout);

  const fpr = await calibrated('--fpr', '0.02', '--no-write');
  expect(fpr.threshold).toBe(thresholdAtFpr(all, inDist, 0.02));
  expect(fpr).toMatchObject({ pixels: inDist.data.reduce((a, v) => a + v, 0), dataset: data, card: null });

  const pixel = await calibrated('--objective', 'pixel-f1'); // written: an objective record fits the card's schema
  const e = await evaluate({ dataset: data, model, scores: ['pgn-oh:p=0.5'], instance: false });
  expect(pixel).toMatchObject({ objective: 'pixel-f1', threshold: e.rows[0]!.pixel.bestF1Threshold, value: e.rows[0]!.pixel.bestF1 });

  const component = await calibrated('--objective', 'component-f1', '--no-write');
  const meanF1 = async (threshold: number) => {
    const m = new InstanceMetrics({ threshold });
    for (const { map, label } of maps) await m.add(map, label.data, [label.height, label.width]);
    return (await m.finish()).meanF1;
  };
  expect(component.objective).toBe('component-f1');
  expect(component.value).toBe(await meanF1(component.threshold));
  expect(component.value).toBeGreaterThanOrEqual(await meanF1(pixel.threshold));
  const { card } = await loadModelCard(model); // --no-write left the pixel-f1 calibration in place
  expect(card.calibration).toMatchObject({ objective: 'pixel-f1', threshold: pixel.threshold, value: pixel.value, images: 4 });
  expect(card.recommended).toEqual({ score: 'pgn-oh:p=0.5', threshold: pixel.threshold });
}, 60000);

test('refusals: a model without a card, F1 without labels, images and --dataset together, a bad --fpr', async () => {
  const bare = path.join(dir, 'bare.onnx');
  fs.copyFileSync(path.join(demo, 'model.onnx'), bare);
  const fail = async (...args: string[]) => ((await run('node', [cli, 'calibrate', ...args]).catch((e: Failure) => e)) as Failure);
  const image = path.join(demoImages, 'demo_000.jpg');
  expect((await fail('--model', bare, image)).stderr).toMatch(/PGN_MODEL_CARD: .*no card to write the threshold into: run `pgn card init .*bare\.onnx` first/);
  expect((await fail('--model', model, '--objective', 'pixel-f1', image)).stderr).toMatch(/--objective pixel-f1 needs --dataset/);
  expect((await fail('--model', model, '--dataset', data, image)).stderr).toMatch(/give either images or --dataset/);
  expect((await fail('--model', model, '--fpr', '1.5', image)).stderr).toMatch(/expected a fraction in \[0, 1\)/);
  expect((await fail(image)).stderr).toMatch(/required option '--model <path>'/);
});
