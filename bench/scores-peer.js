/**
 * Issue 6's peer comparison: the demo model's logits and features for a set of images, dumped once
 * to .npy, then the ten PGN variants plus entropy and msp timed per image in pgn-ood and in a
 * straightforward PyTorch-on-CPU implementation (bench/peers/torch_scores.py) on the same files.
 */
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { ModelSession } = require('../dist/model/session');
const { decodeImage, toTensor } = require('../dist/image/preprocess');
const { readFloatNpy, writeNpy } = require('../dist/common/npy');
const { computeScores } = require('../dist/scoring/scores');

const MODEL = process.env.PGN_BENCH_MODEL ?? path.join(__dirname, '..', 'models', 'demo');
const SCORES = [0.1, 0.3, 0.5, 1, 2].flatMap((p) => [`pgn-oh:p=${p}`, `pgn-uni:p=${p}`]).concat(['entropy', 'msp']);

async function dump(dir, count) {
  const session = await ModelSession.create(MODEL, { executionProviders: ['cpu'] });
  const images = path.join(path.dirname(session.modelPath), 'eval', 'images');
  const files = fs.readdirSync(images).sort().slice(0, count);
  for (const [i, f] of files.entries()) {
    const batch = await toTensor([await decodeImage(path.join(images, f))], session.card);
    const out = await session.run(batch.data, batch.dims);
    await writeNpy(path.join(dir, `${i}.logits.npy`), out.logits, out.logitsDims);
    await writeNpy(path.join(dir, `${i}.features.npy`), out.features, out.featuresDims);
  }
  await session.dispose();
  return files.length;
}

async function run({ count = 10, repeats = 5 } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgn-peer-'));
  try {
    const images = await dump(dir, count);
    const tensors = [];
    for (let i = 0; i < images; i++) tensors.push([await readFloatNpy(path.join(dir, `${i}.logits.npy`)), await readFloatNpy(path.join(dir, `${i}.features.npy`))]);
    const times = [];
    for (let r = 0; r < repeats + 1; r++)
      for (const [z, phi] of tensors) {
        const t0 = performance.now();
        await computeScores(z, phi, { scores: SCORES, prediction: false });
        if (r > 0) times.push(performance.now() - t0); // the first round warms up
      }
    times.sort((a, b) => a - b);
    const ours = times[Math.floor(times.length / 2)];
    const peer = JSON.parse(execFileSync('/usr/bin/python3', [path.join(__dirname, 'peers', 'torch_scores.py'), dir, String(repeats)], { encoding: 'utf8' }));
    const [, C, h, w] = tensors[0][0].dims;
    const F = tensors[0][1].dims[1];
    return [{ images, C, F, h, w, oursMs: ours, torchMs: peer.medianSeconds * 1000, torchThreads: peer.threads }];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function print(rows) {
  console.log(`\n## Scores of the demo model's tensors: ${SCORES.length} maps (10 PGN variants, entropy, msp) per image, pgn-ood vs PyTorch on CPU (median ms per image)`);
  console.log('| images | C | F | h×w | pgn-ood ms | PyTorch ms | PyTorch threads | ratio |');
  console.log('|---:|---:|---:|---|---:|---:|---:|---:|');
  for (const r of rows) console.log(`| ${r.images} | ${r.C} | ${r.F} | ${r.h}×${r.w} | ${r.oursMs.toFixed(2)} | ${r.torchMs.toFixed(2)} | ${r.torchThreads} | ${(r.torchMs / r.oursMs).toFixed(1)}× faster |`);
}

module.exports = { run, print };

if (require.main === module) run().then(print);
