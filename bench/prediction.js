/**
 * Prediction benchmark (issue 18): the class map at image size, argmax of the bilinearly upsampled
 * logits (upsampleArgmax), from real ESPNetv2 logits [1, 20, 256, 512] of ../shared/real to
 * 1024×2048, and from random logits (every output pixel near a class boundary: the worst case).
 * Wall clock: median, the best run in parentheses; CPU time: median, all threads.
 */
const fs = require('node:fs');
const path = require('node:path');
const { upsampleArgmax } = require('../dist/scoring/scores');
const { readFloatNpy } = require('../dist/common/npy');
const { timeIt } = require('./timing');

const REAL = path.join(__dirname, '..', '..', 'shared', 'real');
const SIZE = [1024, 2048];

function random(n, seed) {
  const a = new Float32Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    a[i] = (x / 4294967296) * 8 - 4;
  }
  return a;
}

async function run({ threads = 0 } = {}) {
  const inputs = [];
  for (const set of ['roadanomaly21', 'roadobstacle21']) {
    const file = path.join(REAL, set, 'tensors', '0.logits.npy');
    if (!fs.existsSync(file)) {
      console.warn(`prediction: ${file} missing, skipped`);
      continue;
    }
    const t = await readFloatNpy(file);
    inputs.push({ name: `ESPNetv2 logits, ${set} image 0`, logits: { data: t.data, dims: t.dims } });
  }
  inputs.push({ name: 'random logits', logits: { data: random(20 * 256 * 512, 1), dims: [1, 20, 256, 512] } });
  const rows = [];
  for (const { name, logits } of inputs) {
    const time = await timeIt(() => upsampleArgmax(logits, SIZE, { threads }), 400, 5);
    rows.push({ name, dims: logits.dims, time });
  }
  return rows;
}

function print(rows, threads = Number(process.env.PGN_THREADS ?? 0)) {
  console.log(`\n## Prediction: argmax of the upsampled logits to ${SIZE.join('×')}, threads = ${threads || 'all'} (ms)`);
  console.log('| logits | dims | wall: median (best) | CPU (median) |');
  console.log('|---|---|---:|---:|');
  for (const r of rows) console.log(`| ${r.name} | ${r.dims.join('×')} | ${r.time.median.toFixed(2)} (${r.time.best.toFixed(2)}) | ${r.time.cpu.toFixed(2)} |`);
}

module.exports = { run, print };

if (require.main === module) {
  const threads = Number(process.env.PGN_THREADS ?? 0);
  run({ threads }).then((rows) => print(rows, threads));
}
