#!/usr/bin/env node
/**
 * Dev-time: pgn2-* beside pgn-* on the demo evaluation set (docs/second-layer.md).
 *
 *   npx tsc -p tsconfig.build.json
 *   node docs/second-layer/eval-demo.js [--bn DIR] [--dump DIR] [--maps DIR]
 *
 * For every image of models/demo/eval: one ModelSession run (secondLayer: true), the scores at
 * feature resolution, bilinear upsampling to the label size, exact pixel metrics (src/metrics.ts)
 * pooled over the data set. --bn DIR: also the pgn2 scores with the head's BatchNorm unfolded
 * (DIR/bn_scale.npy, DIR/bn_gamma.npy, written by check_autograd.py from the training checkpoint).
 * --dump DIR: feature-resolution tensors and maps of the first image for check_autograd.py.
 * --maps DIR: upsampled maps of a few scores over all images, for the scikit-learn cross-check.
 */
const fs = require('node:fs');
const path = require('node:path');
const root = path.join(__dirname, '..', '..');
const { ModelSession } = require(path.join(root, 'dist', 'session'));
const { computeScores, upsample, scoreName, scoreLabel } = require(path.join(root, 'dist', 'scores'));
const { decodeImage, toTensor } = require(path.join(root, 'dist', 'preprocess'));
const { readDataset, readLabelMask } = require(path.join(root, 'dist', 'dataset'));
const { PixelMetrics } = require(path.join(root, 'dist', 'metrics'));
const { readFloatNpy, writeNpy } = require(path.join(root, 'dist', 'npy'));

function arg(name) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

const P = [0.5, 1, 2];
const LAST = P.flatMap((p) => [`pgn-oh:p=${p}`, `pgn-uni:p=${p}`]);
const SECOND = P.flatMap((p) => [`pgn2-oh:p=${p}`, `pgn2-uni:p=${p}`, `pgn2-oh:p=${p}:variant=code`, `pgn2-uni:p=${p}:variant=code`]);
const BASE = ['entropy', 'msp'];
const MAPS = ['pgn-oh:p=2', 'pgn2-oh:p=2', 'pgn2-uni:p=1'];

async function main() {
  const bnDir = arg('--bn'), dumpDir = arg('--dump'), mapsDir = arg('--maps');
  const session = await ModelSession.create(path.join(root, 'models', 'demo'), { executionProviders: ['cpu'], secondLayer: true });
  const layer = session.analysis.secondLayer.layer;
  const unfolded = bnDir ? { ...layer, bnScale: (await readFloatNpy(path.join(bnDir, 'bn_scale.npy'))).data, bnGamma: (await readFloatNpy(path.join(bnDir, 'bn_gamma.npy'))).data } : null;
  const rows = [...LAST, ...SECOND, ...BASE].map((s) => ({ label: scoreLabel(s), spec: s, layer, negate: false }));
  // the uniform label's norm is largest where the prediction is confident: its negative as well
  for (const s of [...LAST, ...SECOND].filter((s) => s.includes('-uni'))) rows.push({ label: `−${scoreLabel(s)}`, spec: s, layer, negate: true });
  if (unfolded) for (const s of SECOND) rows.push({ label: `${scoreLabel(s)} (BN unfolded)`, spec: s, layer: unfolded, negate: false });
  for (const r of rows) r.metrics = new PixelMetrics();
  const maps = Object.fromEntries(MAPS.map((s) => [s, []]));
  const labels = [];
  const items = readDataset(path.join(root, 'models', 'demo', 'eval'));
  for (const [index, item] of items.entries()) {
    const image = await decodeImage(item.image);
    const batch = await toTensor([image], session.card);
    const out = await session.run(batch.data, batch.dims);
    const logits = { data: out.logits, dims: out.logitsDims };
    const features = { data: out.features, dims: out.featuresDims };
    const input = { data: out.convInput, dims: out.convInputDims };
    const mask = await readLabelMask(item.label);
    const size = [mask.height, mask.width];
    const cache = new Map();
    for (const r of rows) {
      const key = `${r.spec}|${r.layer === layer}`;
      if (!cache.has(key)) {
        const res = await computeScores(logits, features, { scores: [r.spec], prediction: false, secondLayer: { input, kernel: session.kernel, layer: r.layer } });
        cache.set(key, { low: res.maps[0].map, up: (await upsample(res.maps[0].map, size)).data });
      }
      const { up } = cache.get(key);
      await r.metrics.add(r.negate ? up.map((v) => -v) : up, mask.data, size);
      if (!r.negate && r.layer === layer && MAPS.includes(r.spec) && mapsDir) maps[r.spec].push(up);
    }
    if (mapsDir) labels.push(mask.data);
    if (index === 0 && dumpDir) {
      fs.mkdirSync(dumpDir, { recursive: true });
      await writeNpy(path.join(dumpDir, 'x.npy'), out.convInput, out.convInputDims);
      await writeNpy(path.join(dumpDir, 'phi.npy'), out.features, out.featuresDims);
      await writeNpy(path.join(dumpDir, 'z.npy'), out.logits, out.logitsDims);
      const specs = [...SECOND, ...LAST];
      const res = await computeScores(logits, features, { scores: specs, prediction: false, secondLayer: { input, kernel: session.kernel, layer } });
      for (const m of res.maps) await writeNpy(path.join(dumpDir, `${m.name}.npy`), m.map.data, m.map.dims);
      if (unfolded) {
        const resU = await computeScores(logits, features, { scores: SECOND, prediction: false, secondLayer: { input, kernel: session.kernel, layer: unfolded } });
        for (const m of resU.maps) await writeNpy(path.join(dumpDir, `${m.name}_bn.npy`), m.map.data, m.map.dims);
      }
    }
    process.stderr.write(`\r${index + 1}/${items.length}`);
  }
  process.stderr.write('\n');
  if (mapsDir) {
    fs.mkdirSync(mapsDir, { recursive: true });
    const [h, w] = [labels[0].length / 512, 512];
    const concat = (arrays, Type) => { const o = new Type(arrays.length * arrays[0].length); arrays.forEach((a, i) => o.set(a, i * a.length)); return o; };
    await writeNpy(path.join(mapsDir, 'labels.npy'), concat(labels, Uint8Array), [labels.length, h, w]);
    for (const s of MAPS) await writeNpy(path.join(mapsDir, `${scoreName(s)}.npy`), concat(maps[s], Float32Array), [labels.length, h, w]);
  }
  const pct = (v) => (v * 100).toFixed(2).padStart(6);
  console.log('| score | AUROC | AuPRC | FPR95 |');
  console.log('|---|---:|---:|---:|');
  for (const r of rows) {
    const m = await r.metrics.finish();
    console.log(`| ${r.label} | ${pct(m.auroc)} | ${pct(m.auprc)} | ${pct(m.fpr95)} |`);
  }
  await session.dispose();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
