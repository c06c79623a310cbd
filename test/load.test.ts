/**
 * Load: 64 scorer.score() calls at once each get their own result, identical to the one a lone call
 * gets (no state shared between calls: ONNX Runtime session, native workers, output arrays); and the
 * native work runs off the event loop, which stays responsive (lag < 50 ms) during a long
 * computeScores call.
 *
 * The model is the demo model (256×512) when models/demo/model.onnx exists, else a small network
 * built by test/helpers/onnx-builder.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import sharp from 'sharp';
import { ModelCard } from '../src/model/model-card';
import { ImageResult, Scorer } from '../src/run/scorer';
import { computeScores } from '../src/scoring/scores';
import { buildSegModel } from './helpers/onnx-builder';
import { rng } from './helpers/reference';

const CONCURRENT = 64;
const demo = path.join(__dirname, '..', 'models', 'demo');
const useDemo = fs.existsSync(path.join(demo, 'model.onnx')) && fs.existsSync(path.join(demo, 'model.json'));

let dir: string;
let model: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgn-load-'));
  if (useDemo) {
    model = demo;
    return;
  }
  const card: ModelCard = {
    name: 'load',
    model: 'model.onnx',
    input: { name: 'input', resize: 'none', channelOrder: 'rgb', scale: 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
    classes: Array.from({ length: 7 }, (_, i) => ({ name: `c${i}`, color: [i * 30, 0, 0] })),
  };
  fs.writeFileSync(path.join(dir, 'model.onnx'), buildSegModel({ dynamic: true, classes: 7, features: 16 }).bytes);
  fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(card));
  model = dir;
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Image i: its own size and content, so that any mix-up between calls shows. */
async function image(i: number): Promise<Buffer> {
  const r = rng(1000 + i);
  const width = 24 + 2 * (i % 13);
  const height = 16 + 2 * ((i * 7) % 11);
  const data = Buffer.from(Array.from({ length: width * height * 3 }, () => Math.floor(r() * 256)));
  return sharp(data, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

function fingerprint(r: ImageResult) {
  return { width: r.width, height: r.height, maps: r.maps.map((m) => ({ name: m.name, data: Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength) })), prediction: Buffer.from(r.prediction!.buffer) };
}

test(`${CONCURRENT} concurrent scorer.score() calls each return their own result, equal to a sequential run's`, async () => {
  const scorer = await Scorer.create({ model, scores: ['pgn-oh:p=0.5', 'pgn-uni:p=2', 'entropy', 'energy'], threads: 2 });
  try {
    const images = await Promise.all(Array.from({ length: CONCURRENT }, (_, i) => image(i)));
    const sequential: ReturnType<typeof fingerprint>[] = [];
    for (const im of images) sequential.push(fingerprint(await scorer.score(im)));
    const t0 = performance.now();
    const concurrent = (await Promise.all(images.map((im) => scorer.score(im)))).map(fingerprint);
    const ms = performance.now() - t0;
    expect(concurrent).toHaveLength(CONCURRENT);
    for (let i = 0; i < CONCURRENT; i++) {
      expect({ i, width: concurrent[i].width, height: concurrent[i].height }).toEqual({ i, width: sequential[i].width, height: sequential[i].height });
      expect(concurrent[i].prediction.equals(sequential[i].prediction)).toBe(true);
      concurrent[i].maps.forEach((m, k) => {
        expect(m.name).toBe(sequential[i].maps[k].name);
        expect({ i, k, equal: m.data.equals(sequential[i].maps[k].data) }).toEqual({ i, k, equal: true });
      });
    }
    // distinct images, distinct results: the comparison above is not vacuous
    expect(new Set(concurrent.map((c) => c.maps[0].data.toString('base64'))).size).toBe(CONCURRENT);
    expect(ms).toBeGreaterThan(0);
  } finally {
    await scorer.dispose();
  }
});

/** Uniform values in [lo, hi) from a 32-bit LCG: fast enough for tens of millions. */
function fill(n: number, seed: number, lo: number, hi: number): Float32Array {
  const a = new Float32Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    a[i] = lo + ((hi - lo) * x) / 4294967296;
  }
  return a;
}

test('the event loop lags < 50 ms while a long native computeScores runs', async () => {
  // 1 × 19 × 256 × 512 logits and 1 × 128 × 256 × 512 features (64 MB): ~0.5–2 s of native work.
  const [N, C, F, h, w] = [1, 19, 128, 256, 512];
  const logits = { data: fill(N * C * h * w, 1, -4, 4), dims: [N, C, h, w] };
  const features = { data: fill(N * F * h * w, 2, 0, 3), dims: [N, F, h, w] };
  const scores = ['pgn-oh:p=0.1', 'pgn-oh:p=0.3', 'pgn-oh:p=0.5', 'pgn-uni:p=0.5', 'pgn-uni:p=2', 'entropy', 'energy'];
  await computeScores(logits, features, { scores, threads: 1 }); // warm-up (page faults, dispatch)

  let ticks = 0;
  const ticker = setInterval(() => ticks++, 5);
  const histogram = monitorEventLoopDelay({ resolution: 5 });
  histogram.enable();
  const t0 = performance.now();
  let native = 0;
  // Several calls back to back, so that the measurement covers at least a second of native work.
  while (performance.now() - t0 < 1000) {
    const t = performance.now();
    const out = await computeScores(logits, features, { scores, threads: 1 });
    native += performance.now() - t;
    expect(out.maps).toHaveLength(scores.length);
  }
  histogram.disable();
  clearInterval(ticker);
  const maxLagMs = histogram.max / 1e6;
  expect(native).toBeGreaterThan(900);
  expect(ticks).toBeGreaterThan(native / 5 / 4); // the timer kept firing during the native work
  if (process.env.PGN_LOAD_VERBOSE) console.log({ maxLagMs, native, ticks, mean: histogram.mean / 1e6 });
  expect(maxLagMs).toBeLessThan(50);
});
