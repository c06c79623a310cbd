/**
 * Scores benchmark (issue 2): a 1024×2048 image at 1/4 and 1/8 feature resolution, F = 128 and 256,
 * C = 19. Prints ms per image for all ten PGN variants in one call, the bytes read per second, and
 * a memcpy of the same bytes in the same run (the ceiling); each score alone (the ten PGN variants
 * and the four baselines); then all ten at every CPU instruction-set level this machine has (the
 * AVX2 and baseline passes are what machines without AVX-512 run).
 *
 * Times are medians, with the best run in parentheses: on a shared VM the median carries the
 * neighbours' noise, the best run is what the code does when it has the cores.
 */
const { computeScores, cpuIsa, limitCpuIsa } = require('../dist/scoring/scores');
const { native } = require('../dist/addon');
const { timeIt } = require('./timing');

const PS = [0.1, 0.3, 0.5, 1, 2];
const TEN_PGN = PS.flatMap((p) => [`pgn-oh:p=${p}`, `pgn-uni:p=${p}`]);
const SINGLE = [...TEN_PGN, 'entropy', 'msp', 'maxlogit', 'energy'];
const LEVELS = ['baseline', 'avx2', 'avx512'];

function fill(n, seed) {
  const a = new Float32Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    a[i] = (x / 4294967296) * 4 - 1;
  }
  return a;
}

function inputs(h, w, F, C = 19) {
  return {
    logits: { data: fill(C * h * w, 1), dims: [1, C, h, w] },
    features: { data: fill(F * h * w, 2).map((v) => (v < 0 ? 0 : v)), dims: [1, F, h, w] },
  };
}

async function run({ threads = 0 } = {}) {
  const rows = [];
  const levels = LEVELS.slice(0, LEVELS.indexOf(cpuIsa().detected) + 1).reverse();
  for (const [stride, label] of [[4, '1/4'], [8, '1/8']]) {
    const h = 1024 / stride, w = 2048 / stride;
    for (const F of [128, 256]) {
      const { logits, features } = inputs(h, w, F);
      const bytes = features.data.byteLength + logits.data.byteLength;
      // The memcpy copies the inputs themselves. A fresh, never-written array would not do: its
      // pages all map the kernel's one zero page, so copying it reads from cache, not memory
      // (about twice as fast as copying the same number of written bytes).
      const dst = new Float32Array(features.data.length + logits.data.length);
      const memcpy = await timeIt(async () => {
        dst.set(features.data);
        dst.set(logits.data, features.data.length);
      });
      const score = (scores) => timeIt(() => computeScores(logits, features, { scores, prediction: false, threads }));
      const row = { resolution: label, h, w, F, C: 19, memcpy, all10: await score(TEN_PGN), single: {}, byLevel: {} };
      for (const s of SINGLE) row.single[s] = (await score([s])).median;
      try {
        for (const level of levels) {
          limitCpuIsa(level);
          row.byLevel[level] = await score(TEN_PGN);
        }
      } finally {
        limitCpuIsa('avx512');
      }
      row.readGBs = bytes / (row.all10.median / 1000) / 1e9;
      row.memcpyGBs = bytes / (memcpy.median / 1000) / 1e9;
      rows.push(row);
    }
  }
  return rows;
}

const both = (t) => `${t.median.toFixed(2)} (${t.best.toFixed(2)})`;
const ratio = (t, memcpy) => `${(t.median / memcpy.median).toFixed(2)}× (${(t.best / memcpy.best).toFixed(2)}×)`;

function print(rows, threads = Number(process.env.PGN_THREADS ?? 0)) {
  const isa = cpuIsa().detected;
  console.log(`\n## Scores: 1024×2048 image, C = 19, threads = ${threads || native.defaultThreads}, CPU level ${isa} (ms per image: median, best in parentheses)`);
  console.log('| features | F | all 10 PGN | read GB/s | memcpy of the same bytes ms | memcpy GB/s | all10 / memcpy |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of rows)
    console.log(`| ${r.resolution} (${r.h}×${r.w}) | ${r.F} | ${both(r.all10)} | ${r.readGBs.toFixed(2)} | ${both(r.memcpy)} | ${r.memcpyGBs.toFixed(2)} | ${ratio(r.all10, r.memcpy)} |`);
  const singles = Object.keys(rows[0].single);
  console.log(`\n### Each score alone (ms per image, median)`);
  console.log(`| features | F | ${singles.join(' | ')} |`);
  console.log(`|---|---|${singles.map(() => '---|').join('')}`);
  for (const r of rows) console.log(`| ${r.resolution} | ${r.F} | ${singles.map((s) => r.single[s].toFixed(2)).join(' | ')} |`);
  const levels = Object.keys(rows[0].byLevel);
  console.log(`\n### All ten PGN variants by CPU level (ms: median, best; ratio to the memcpy)`);
  console.log(`| features | F | ${levels.join(' | ')} |`);
  console.log(`|---|---|${levels.map(() => '---|').join('')}`);
  for (const r of rows)
    console.log(`| ${r.resolution} | ${r.F} | ${levels.map((l) => `${both(r.byLevel[l])}, ${ratio(r.byLevel[l], r.memcpy)}`).join(' | ')} |`);
}

module.exports = { run, print };

if (require.main === module) {
  const threads = Number(process.env.PGN_THREADS ?? 0);
  run({ threads }).then((rows) => print(rows, threads));
}
