/**
 * A loop over every native entry point, with small inputs, including calls that are refused (sync
 * TypeError/RangeError) and calls that reject (NaN in the logits): the workload of the leak test
 * (test/leaks.test.ts, RSS and external memory across thousands of iterations) and of
 * scripts/valgrind.sh (a few iterations under memcheck).
 *
 *   node --expose-gc test/helpers/native-loop.js ITERATIONS [CHECKPOINT_EVERY]
 *
 * Prints one JSON line per checkpoint: { iteration, rss, external, arrayBuffers } (bytes, after a
 * full GC when --expose-gc is given), then { done: true, calls }. Honors PGN_OOD_ADDON (dist/addon).
 */
'use strict';
const { native } = require('../../dist/addon');

const iterations = Number(process.argv[2] ?? 100);
const every = Number(process.argv[3] ?? Math.max(1, Math.floor(iterations / 20)));
const gc = typeof global.gc === 'function' ? global.gc : null;

let seed = 12345;
const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 4294967296);
const floats = (n, scale = 4) => Float32Array.from({ length: n }, () => (random() - 0.5) * scale);

const [N, C, F, h, w] = [1, 5, 8, 32, 32];
let calls = 0;

async function expectRefused(fn) {
  try {
    await fn();
  } catch {
    return;
  }
  throw new Error('a malformed call was accepted');
}

async function iteration(i) {
  const logits = floats(N * C * h * w);
  const features = floats(N * F * h * w).map(Math.abs);
  const out = await native.scores({
    logits, logitsDims: [N, C, h, w], features, featuresDims: [N, F, h, w],
    scores: [{ kind: 'pgn-oh', p: 0.5 }, { kind: 'pgn-uni', p: 2, variant: 'code' }, { kind: 'entropy' }], prediction: true, threads: 2,
  });
  const bad = logits.slice();
  bad[17] = NaN;
  await expectRefused(() => native.scores({ logits: bad, logitsDims: [N, C, h, w], scores: [{ kind: 'msp' }] }));
  await expectRefused(() => native.scores({ logits, logitsDims: [N, C, h], scores: [] }));
  const up = await native.upsample({ input: out.maps[0], dims: [N, h, w], size: [64, 64], threads: 2 });
  await native.upsampleArgmax({ logits, dims: [N, C, h, w], size: [48, 80], alignCorners: i % 2 === 0 });
  await native.normalizeImages({ images: [new Uint8Array(3 * 64)], plane: 64, tables: new Float32Array(768), source: [2, 1, 0] });
  await expectRefused(() => native.upsample({ input: up, dims: [1, 64, 64], size: [0, 3] }));
  const seg = await native.components({ scores: up, dims: [1, 64, 64], threshold: 0.5, prediction: new Int32Array(64 * 64), connectivity: i % 2 ? 4 : 8, threads: 2 });
  if (seg.segments.counts.length !== 1) throw new Error('components: one image expected');
  await native.componentsGridEmulation({ scores: out.maps[2], dims: [N, h, w], threshold: 0.8, blockDims: [4, 8], shuffleSeed: i });
  await expectRefused(() => native.components({ scores: up, dims: [1, 64, 64], threshold: NaN }));
  if (native.secondLayerScores) {
    const x = floats(N * 3 * 34 * 34);
    await native.secondLayerScores({
      logits, logitsDims: [N, C, h, w], features, featuresDims: [N, F, h, w], input: x, inputDims: [N, 3, 34, 34],
      kernel: floats(C * F), kernelShape: [3, 3], scores: [{ kind: 'pgn2-oh', p: 1 }], prediction: false,
    });
  }
  calls += 10;
  if (i % 10 === 0) {
    const labels = Uint8Array.from({ length: 64 * 64 }, () => (random() < 0.1 ? 1 : random() < 0.05 ? 255 : 0));
    const pixel = new native.PixelMetricsAccumulator(i % 20 === 0 ? { mode: 'exact', chunkValues: 2048 } : { mode: 'binned', bins: 100 });
    await Promise.all([pixel.add(up, labels, [64, 64]), pixel.add(up, labels, [64, 64])]);
    await expectRefused(() => pixel.add(up, new Uint8Array(64 * 64).fill(7), [64, 64]));
    await pixel.finish({ curves: true });
    const instance = new native.InstanceMetricsAccumulator({ threshold: 0.5, minPredictedSize: 2, minGtSize: 2 });
    await instance.add(up, labels, [64, 64]);
    await instance.finish();
    // an accumulator dropped unfinished: its data goes with the garbage collector
    const dropped = new native.PixelMetricsAccumulator();
    await dropped.add(up, labels, [64, 64]);
    calls += 8;
  }
}

function checkpoint(i) {
  if (gc) {
    gc();
    gc();
  }
  const m = process.memoryUsage();
  process.stdout.write(`${JSON.stringify({ iteration: i, rss: m.rss, external: m.external, arrayBuffers: m.arrayBuffers })}\n`);
}

(async () => {
  for (let i = 0; i < iterations; i++) {
    await iteration(i);
    if (gc && i % 5 === 0) gc();
    if (i % every === 0) checkpoint(i);
  }
  checkpoint(iterations);
  process.stdout.write(`${JSON.stringify({ done: true, calls })}\n`);
})().catch((err) => {
  process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
