/**
 * The real network (issue 17): ESPNetv2 in ONNX (../shared/real/espnetv2) from the images, against
 * its precomputed tensors and the figures in docs/evaluation.md ("From the images, through the
 * network"). Skipped, with a message, where ../shared/real is absent.
 */
import fs from 'node:fs';
import path from 'node:path';
import { readFloatNpy } from '../src/common/npy';
import { readDataset } from '../src/eval/dataset';
import { evaluate } from '../src/eval/evaluate';
import { toTensor } from '../src/image/preprocess';
import { Scorer } from '../src/run/scorer';

const REAL = path.join(__dirname, '..', '..', 'shared', 'real');
const present = fs.existsSync(path.join(REAL, 'espnetv2', 'model.onnx'));
if (!present) console.warn(`real-network tests skipped: ${REAL}/espnetv2 not found (CI has it beside the project)`);
const maybe = present ? describe : describe.skip;

function pearson(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
  const n = a.length;
  for (let i = 0; i < n; i++) {
    const x = a[i]!, y = b[i]!;
    sx += x, sy += y, sxx += x * x, syy += y * y, sxy += x * y;
  }
  return (n * sxy - sx * sy) / Math.sqrt((n * sxx - sx * sx) * (n * syy - sy * sy));
}

maybe('ESPNetv2 from the images', () => {
  test('surgery finds the conv of kernel.npy; features and logits of RoadAnomaly21 image 0 agree with the tensors (r > 0.999)', async () => {
    const scorer = await Scorer.create({ model: path.join(REAL, 'espnetv2'), prediction: false, executionProviders: ['cpu'] });
    try {
      const tensors = path.join(REAL, 'roadanomaly21', 'tensors');
      const kernel = await readFloatNpy(path.join(tensors, 'kernel.npy'));
      expect(Array.from(scorer.session.kernel)).toEqual(Array.from(kernel.data));
      const item = readDataset(path.join(REAL, 'roadanomaly21'))[0]!;
      const batch = await toTensor([await scorer.decode(item.image)], scorer.session.card);
      const out = await scorer.session.run(batch.data, batch.dims);
      const features = await readFloatNpy(path.join(tensors, `${item.stem}.features.npy`));
      const logits = await readFloatNpy(path.join(tensors, `${item.stem}.logits.npy`));
      expect(out.featuresDims).toEqual(features.dims);
      expect(pearson(out.features, features.data)).toBeGreaterThan(0.999);
      expect(pearson(out.logits, logits.data)).toBeGreaterThan(0.999);
    } finally {
      await scorer.dispose();
    }
  }, 60000);

  test('pgn-oh:p=0.5 pixel figures on RoadAnomaly21 are those documented (±0.15 points)', async () => {
    const result = await evaluate({ dataset: path.join(REAL, 'roadanomaly21'), model: path.join(REAL, 'espnetv2'), scores: ['pgn-oh:p=0.5'], instance: false, executionProviders: ['cpu'] });
    const { auroc, auprc, fpr95 } = result.rows[0]!.pixel;
    expect(Math.abs(100 * auroc - 76.24)).toBeLessThanOrEqual(0.15);
    expect(Math.abs(100 * auprc - 30.7)).toBeLessThanOrEqual(0.15);
    expect(Math.abs(100 * fpr95 - 59.67)).toBeLessThanOrEqual(0.15);
  }, 180000);
});
