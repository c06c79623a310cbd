/**
 * The real-data check (issue 8): ESPNetv2 tensors on 10 RoadAnomaly21 and 10 RoadObstacle21
 * validation images (../shared/real), against figures computed independently in float64 with
 * scikit-learn. Skipped, with a message, where ../shared/real is absent.
 */
import fs from 'node:fs';
import path from 'node:path';
import { evaluate } from '../src/eval/evaluate';

const REAL = path.join(__dirname, '..', '..', 'shared', 'real');
const present = fs.existsSync(path.join(REAL, 'roadanomaly21', 'tensors'));
if (!present) console.warn(`real-data tests skipped: ${REAL} not found (CI has it beside the project)`);
const maybe = present ? describe : describe.skip;

// AUROC, AuPRC, FPR95 in percent; the tolerance is ±0.15 points.
const EXPECTED: Record<string, Record<string, [number, number, number]>> = {
  roadanomaly21: {
    'pgn-oh:p=0.5': [74.8, 28.2, 61.0],
    'pgn-oh:p=2': [73.3, 30.0, 64.5],
    entropy: [73.4, 26.7, 63.1],
    msp: [72.7, 26.8, 63.9],
  },
  roadobstacle21: {
    'pgn-oh:p=1': [96.7, 40.8, 18.4],
    'pgn-oh:p=0.5': [96.7, 33.9, 17.5],
    entropy: [96.4, 14.6, 18.2],
    msp: [96.4, 18.6, 18.4],
    maxlogit: [91.2, 4.1, 38.6],
  },
};

maybe('real data: pixel figures from precomputed tensors match the reference', () => {
  test.each(Object.keys(EXPECTED))('%s', async (set) => {
    const dataset = path.join(REAL, set);
    const result = await evaluate({ dataset, tensors: path.join(dataset, 'tensors'), scores: Object.keys(EXPECTED[set]), track: set === 'roadobstacle21' ? 'obstacle' : 'anomaly' });
    expect(result.images).toBe(10);
    for (const row of result.rows) {
      const [auroc, auprc, fpr95] = EXPECTED[set][row.label];
      expect(Math.abs(100 * row.pixel.auroc - auroc)).toBeLessThanOrEqual(0.15);
      expect(Math.abs(100 * row.pixel.auprc - auprc)).toBeLessThanOrEqual(0.15);
      expect(Math.abs(100 * row.pixel.fpr95 - fpr95)).toBeLessThanOrEqual(0.15);
      // Component figures exist and are fractions (their reference values are in docs/evaluation.md).
      for (const v of [row.instance!.sIoU, row.instance!.ppv, row.instance!.meanF1]) expect(v).toBeGreaterThanOrEqual(0), expect(v).toBeLessThanOrEqual(1);
    }
  });
});
