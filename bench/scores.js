/**
 * Scores benchmark (issue 2): a 1024×2048 image at 1/4 and 1/8 feature resolution, F = 128 and 256,
 * C = 19. Prints ms per image for each score alone and for all ten PGN variants in one call, the
 * features' bytes read per second, and a memcpy of the same bytes in the same run (the ceiling).
 */
const { computeScores } = require('../dist/scores');
const { native } = require('../dist/native');

const PS = [0.1, 0.3, 0.5, 1, 2];
const TEN_PGN = PS.flatMap((p) => [`pgn-oh:p=${p}`, `pgn-uni:p=${p}`]);
const SINGLE = ['pgn-oh:p=0.5', 'pgn-oh:p=2', 'pgn-uni:p=0.1', 'entropy', 'msp', 'maxlogit', 'energy'];

function fill(n, seed) {
  const a = new Float32Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    a[i] = (x / 4294967296) * 4 - 1;
  }
  return a;
}

async function timeIt(fn, minMs = 400, minReps = 3) {
  await fn(); // warm-up
  const times = [];
  const start = performance.now();
  while (times.length < minReps || performance.now() - start < minMs) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

async function run({ threads = 0 } = {}) {
  const rows = [];
  for (const [stride, label] of [[4, '1/4'], [8, '1/8']]) {
    const h = 1024 / stride, w = 2048 / stride;
    for (const F of [128, 256]) {
      const C = 19;
      const logits = { data: fill(C * h * w, 1), dims: [1, C, h, w] };
      const features = { data: fill(F * h * w, 2).map((v) => (v < 0 ? 0 : v)), dims: [1, F, h, w] };
      const bytes = features.data.byteLength + logits.data.byteLength;
      const src = new Float32Array(features.data.length + logits.data.length);
      const dst = new Float32Array(src.length);
      const memcpy = await timeIt(async () => dst.set(src));
      const score = (scores) => timeIt(() => computeScores(logits, features, { scores, prediction: false, threads }));
      const row = { resolution: label, h, w, F, C, memcpyMs: memcpy, all10Ms: await score(TEN_PGN), single: {} };
      for (const s of SINGLE) row.single[s] = await score([s]);
      row.readGBs = bytes / (row.all10Ms / 1000) / 1e9;
      row.memcpyGBs = bytes / (memcpy / 1000) / 1e9;
      row.ratio = row.all10Ms / memcpy;
      rows.push(row);
    }
  }
  return rows;
}

function print(rows, threads = Number(process.env.PGN_THREADS ?? 0)) {
  console.log(`\n## Scores: 1024×2048 image, C = 19, threads = ${threads || native.defaultThreads} (ms per image, median)`);
  const singles = Object.keys(rows[0].single);
  console.log(`| features | F | ${singles.join(' | ')} | all 10 PGN | read GB/s | memcpy ms | memcpy GB/s | all10 / memcpy |`);
  console.log(`|---|---|${singles.map(() => '---|').join('')}---|---|---|---|---|`);
  for (const r of rows)
    console.log(`| ${r.resolution} (${r.h}×${r.w}) | ${r.F} | ${singles.map((s) => r.single[s].toFixed(2)).join(' | ')} | ${r.all10Ms.toFixed(2)} | ${r.readGBs.toFixed(2)} | ${r.memcpyMs.toFixed(2)} | ${r.memcpyGBs.toFixed(2)} | ${r.ratio.toFixed(2)}× |`);
}

module.exports = { run, print };

if (require.main === module) {
  const threads = Number(process.env.PGN_THREADS ?? 0);
  run({ threads }).then((rows) => print(rows, threads));
}
