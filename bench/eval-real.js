/**
 * Issue 8's timing: the whole evaluation of one set of ../shared/real (10 images, 2 MP masks, pixel
 * metrics of several scores from one read of the tensors) by pgn-ood, and by the NumPy + scikit-learn
 * peer (bench/peers/eval_real.py) on the same files in the same run.
 */
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { evaluate } = require('../dist/eval/evaluate');

const REAL = path.join(__dirname, '..', '..', 'shared', 'real');
const SCORES = ['pgn-oh:p=0.5', 'pgn-oh:p=2', 'entropy', 'msp'];

async function run() {
  const rows = [];
  for (const set of ['roadanomaly21', 'roadobstacle21']) {
    const dataset = path.join(REAL, set);
    if (!fs.existsSync(dataset)) {
      console.warn(`eval-real: ${dataset} missing, skipped`);
      continue;
    }
    await evaluate({ dataset, tensors: path.join(dataset, 'tensors'), scores: SCORES, instance: false }); // warm-up
    const t0 = performance.now();
    const ours = await evaluate({ dataset, tensors: path.join(dataset, 'tensors'), scores: SCORES, instance: false });
    const oursMs = performance.now() - t0;
    const t1 = performance.now();
    const withInstance = await evaluate({ dataset, tensors: path.join(dataset, 'tensors'), scores: SCORES, track: set === 'roadobstacle21' ? 'obstacle' : 'anomaly' });
    const fullMs = performance.now() - t1;
    let peer = null;
    try {
      peer = JSON.parse(execFileSync('/usr/bin/python3', [path.join(__dirname, 'peers', 'eval_real.py'), dataset, ...SCORES], { encoding: 'utf8' }));
    } catch (err) {
      console.warn(`eval-real: python peer unavailable (${err.message.split('\n')[0]})`);
    }
    const maxDiff = peer ? Math.max(...ours.rows.map((r) => Math.abs(r.pixel.auprc - peer.figures[r.label].auprc))) : NaN;
    rows.push({ set, oursMs, fullMs, peerMs: peer ? peer.seconds * 1000 : NaN, maxAuprcDiff: maxDiff, images: withInstance.images });
  }
  return rows;
}

function print(rows) {
  console.log(`\n## Evaluation of ../shared/real from tensors: ${SCORES.length} scores (${SCORES.join(', ')}), pixel metrics, whole set`);
  console.log('| set | images | pgn-ood ms | NumPy + scikit-learn ms | ratio | max |ΔAuPRC| | pgn-ood with component metrics ms |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const r of rows)
    console.log(`| ${r.set} | ${r.images} | ${r.oursMs.toFixed(0)} | ${r.peerMs.toFixed(0)} | ${(r.peerMs / r.oursMs).toFixed(1)}× faster | ${r.maxAuprcDiff.toExponential(1)} | ${r.fullMs.toFixed(0)} |`);
}

module.exports = { run, print };

if (require.main === module) run().then(print);
