/**
 * Issue 17's parity of the real network: pgn-oh:p=0.5 maps computed from the images through
 * ../shared/real/espnetv2 (sharp's decoding and resize, float32 ONNX Runtime) against those computed
 * from the float16 tensors the authors' pipeline produced (PIL resize), both upsampled to the mask's
 * size. Per set: the per-pixel Pearson correlation, the median relative difference, and the share of
 * pixels on which both agree about the card's threshold (flagged or not).
 */
const fs = require('node:fs');
const path = require('node:path');
const { readDataset, readLabelMask } = require('../dist/eval/dataset');
const { readFloatNpy } = require('../dist/common/npy');
const { Scorer } = require('../dist/run/scorer');
const { computeScores, upsample } = require('../dist/scoring/scores');

const REAL = path.join(__dirname, '..', '..', 'shared', 'real');
const SCORE = 'pgn-oh:p=0.5';

async function run() {
  const model = path.join(REAL, 'espnetv2');
  if (!fs.existsSync(model)) {
    console.warn(`real-parity: ${model} missing, skipped`);
    return [];
  }
  const scorer = await Scorer.create({ model, scores: [SCORE], prediction: false });
  const threshold = scorer.session.card.recommended.threshold;
  const rows = [];
  try {
    for (const set of ['roadanomaly21', 'roadobstacle21']) {
      let n = 0, sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0, agree = 0;
      const rel = [];
      for (const item of readDataset(path.join(REAL, set))) {
        const label = await readLabelMask(item.label);
        const [r] = await scorer.scoreDecoded([await scorer.decode(item.image)], [label]);
        const dir = path.join(REAL, set, 'tensors');
        const logits = await readFloatNpy(path.join(dir, `${item.stem}.logits.npy`));
        const features = await readFloatNpy(path.join(dir, `${item.stem}.features.npy`));
        const scored = await computeScores(logits, features, { scores: [SCORE] });
        const t = (await upsample(scored.maps[0].map, [label.height, label.width])).data;
        const m = r.maps[0].data;
        for (let i = 0; i < m.length; i++) {
          if (label.data[i] === 255) continue;
          const x = m[i], y = t[i];
          n++, sx += x, sy += y, sxx += x * x, syy += y * y, sxy += x * y;
          if ((x > threshold) === (y > threshold)) agree++;
          if (i % 97 === 0) rel.push(Math.abs(x - y) / Math.max(Math.abs(y), 1e-12));
        }
      }
      rel.sort((a, b) => a - b);
      const corr = (n * sxy - sx * sy) / Math.sqrt((n * sxx - sx * sx) * (n * syy - sy * sy));
      rows.push({ set, pixels: n, corr, medianRel: rel[rel.length >> 1], p95Rel: rel[Math.floor(rel.length * 0.95)], agree: agree / n, threshold });
    }
  } finally {
    await scorer.dispose();
  }
  return rows;
}

function print(rows) {
  console.log(`\n### ESPNetv2: ${SCORE} from the images vs from the float16 tensors (non-void pixels, mask size)\n`);
  console.log('| set | pixels | Pearson r | median rel. diff | 95th pct rel. diff | same side of the card threshold |');
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const r of rows) console.log(`| ${r.set} | ${r.pixels} | ${r.corr.toFixed(4)} | ${(100 * r.medianRel).toFixed(1)} % | ${(100 * r.p95Rel).toFixed(1)} % | ${(100 * r.agree).toFixed(2)} % (t = ${r.threshold}) |`);
}

module.exports = { run, print };
if (require.main === module) run().then(print);
