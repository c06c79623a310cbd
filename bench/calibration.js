/**
 * Issue 17's calibration run on the demo set: `calibrate` on the even-numbered demo images (20), the
 * achieved false-positive rate on the odd-numbered ones (20, held back): the fraction of their
 * in-distribution pixels (label 0) scoring above the threshold. Unlabeled: every pixel of the
 * calibration images counts as in-distribution (as for a user's unlabeled images; the demo images
 * hold some OoD pixels, which push the threshold up); labeled: only their label-0 pixels.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { calibrate } = require('../dist/eval/calibrate');
const { readDataset, readLabelMask } = require('../dist/eval/dataset');
const { Scorer } = require('../dist/run/scorer');

const DEMO = path.join(__dirname, '..', 'models', 'demo');
const SCORE = 'pgn-oh:p=0.5';

/** A data set folder of links to some demo items. */
function subset(items, dir) {
  for (const sub of ['images', 'labels_masks']) fs.mkdirSync(path.join(dir, sub), { recursive: true });
  for (const item of items) {
    fs.symlinkSync(item.image, path.join(dir, 'images', path.basename(item.image)));
    fs.symlinkSync(item.label, path.join(dir, 'labels_masks', path.basename(item.label)));
  }
  return dir;
}

async function run() {
  const items = readDataset(path.join(DEMO, 'eval'));
  const calib = items.filter((_, i) => i % 2 === 0);
  const held = items.filter((_, i) => i % 2 === 1);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pgn-bench-calibration-'));
  const scorer = await Scorer.create({ model: DEMO, scores: [SCORE], prediction: false });
  const heldMaps = [];
  for (const item of held) {
    const label = await readLabelMask(item.label);
    const [r] = await scorer.scoreDecoded([await scorer.decode(item.image)], [label]);
    heldMaps.push({ map: r.maps[0].data, label: label.data });
  }
  await scorer.dispose();
  const achieved = (t) => {
    let n = 0, flagged = 0;
    for (const { map, label } of heldMaps) for (let i = 0; i < map.length; i++) if (label[i] === 0) n++, (flagged += map[i] > t ? 1 : 0);
    return flagged / n;
  };
  const dataset = subset(calib, path.join(tmp, 'calib'));
  const rows = [];
  try {
    for (const fpr of [0.01, 0.05, 0.1]) {
      for (const labeled of [false, true]) {
        const t0 = performance.now();
        const r = await calibrate({ model: DEMO, score: SCORE, fpr, version: 'bench', ...(labeled ? { dataset } : { images: calib.map((i) => i.image) }) });
        rows.push({ fpr, labeled, threshold: r.threshold, pixels: r.pixels, achieved: achieved(r.threshold), ms: performance.now() - t0 });
      }
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return rows;
}

function print(rows) {
  console.log(`\n### Calibration on the demo set (${SCORE}; calibrated on 20 images, achieved FPR on 20 held back)\n`);
  console.log('| target fpr | calibration pixels | threshold | achieved FPR (held back, label 0) | calibrate ms |');
  console.log('|---:|---|---:|---:|---:|');
  for (const r of rows) {
    console.log(`| ${r.fpr} | ${r.labeled ? `label 0 only (${r.pixels})` : `all (${r.pixels})`} | ${r.threshold.toFixed(2)} | ${(100 * r.achieved).toFixed(2)} % | ${r.ms.toFixed(0)} |`);
  }
}

module.exports = { run, print };
if (require.main === module) run().then(print);
