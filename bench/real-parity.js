/**
 * Issue 17's parity of the real network: pgn-oh:p=0.5 maps computed from the images through
 * ../shared/real/espnetv2 (sharp's decoding and resize, float32 ONNX Runtime) against those computed
 * from the float16 tensors the authors' pipeline produced (PIL resize), both upsampled to the mask's
 * size. Per set: at feature resolution the Pearson correlation of the features and of the logits and
 * the share of pixels with the same predicted class; at mask size (non-void pixels) the Pearson
 * correlation of the scores, their median and 95th-percentile relative difference, and the share of
 * pixels on which both agree about the card's threshold (flagged or not).
 */
const fs = require('node:fs');
const path = require('node:path');
const { readDataset, readLabelMask } = require('../dist/eval/dataset');
const { readFloatNpy } = require('../dist/common/npy');
const { Scorer } = require('../dist/run/scorer');
const { toTensor } = require('../dist/image/preprocess');

/** Streaming Pearson correlation. */
function pearson() {
  let n = 0, sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
  return {
    add(x, y) { n++, sx += x, sy += y, sxx += x * x, syy += y * y, sxy += x * y; },
    get r() { return (n * sxy - sx * sy) / Math.sqrt((n * sxx - sx * sx) * (n * syy - sy * sy)); },
    get n() { return n; },
  };
}

function argmaxAgreement(a, b, C, plane) {
  let same = 0;
  for (let p = 0; p < plane; p++) {
    let i = 0, j = 0;
    for (let c = 1; c < C; c++) {
      if (a[c * plane + p] > a[i * plane + p]) i = c;
      if (b[c * plane + p] > b[j * plane + p]) j = c;
    }
    if (i === j) same++;
  }
  return same;
}
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
      const scores = pearson(), feats = pearson(), logs = pearson();
      let agree = 0, sameClass = 0, featurePixels = 0;
      const rel = [];
      for (const item of readDataset(path.join(REAL, set))) {
        const label = await readLabelMask(item.label);
        const batch = await toTensor([await scorer.decode(item.image)], scorer.session.card);
        const out = await scorer.session.run(batch.data, batch.dims);
        const dir = path.join(REAL, set, 'tensors');
        const logits = await readFloatNpy(path.join(dir, `${item.stem}.logits.npy`));
        const features = await readFloatNpy(path.join(dir, `${item.stem}.features.npy`));
        for (let i = 0; i < out.features.length; i++) feats.add(out.features[i], features.data[i]);
        for (let i = 0; i < out.logits.length; i++) logs.add(out.logits[i], logits.data[i]);
        const [, C, h, w] = logits.dims;
        sameClass += argmaxAgreement(out.logits, logits.data, C, h * w);
        featurePixels += h * w;
        const size = [label.height, label.width];
        const ours = (await upsample((await computeScores({ data: out.logits, dims: out.logitsDims }, { data: out.features, dims: out.featuresDims }, { scores: [SCORE] })).maps[0].map, size)).data;
        const theirs = (await upsample((await computeScores(logits, features, { scores: [SCORE] })).maps[0].map, size)).data;
        for (let i = 0; i < ours.length; i++) {
          if (label.data[i] === 255) continue;
          const x = ours[i], y = theirs[i];
          scores.add(x, y);
          if ((x > threshold) === (y > threshold)) agree++;
          if (i % 97 === 0) rel.push(Math.abs(x - y) / Math.max(Math.abs(y), 1e-12));
        }
      }
      rel.sort((a, b) => a - b);
      rows.push({ set, pixels: scores.n, featuresR: feats.r, logitsR: logs.r, sameClass: sameClass / featurePixels, corr: scores.r, medianRel: rel[rel.length >> 1], p95Rel: rel[Math.floor(rel.length * 0.95)], agree: agree / scores.n, threshold });
    }
  } finally {
    await scorer.dispose();
  }
  return rows;
}

function print(rows) {
  console.log(`\n### ESPNetv2 from the images vs from the float16 tensors\n`);
  console.log(`| set | features r | logits r | same class | ${SCORE} r | median rel. diff | 95th pct rel. diff | same side of the card threshold |`);
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) console.log(`| ${r.set} | ${r.featuresR.toFixed(4)} | ${r.logitsR.toFixed(4)} | ${(100 * r.sameClass).toFixed(2)} % | ${r.corr.toFixed(4)} | ${(100 * r.medianRel).toFixed(1)} % | ${(100 * r.p95Rel).toFixed(1)} % | ${(100 * r.agree).toFixed(2)} % (t = ${r.threshold}) |`);
}

module.exports = { run, print };
if (require.main === module) run().then(print);
