/**
 * The embedded demo model end to end: the README's main command works, and `pgn eval` on the demo
 * set reproduces the figures its card records (computed at training time in PyTorch + scikit-learn).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { evaluate } from '../src/eval/evaluate';
import { readNpy } from '../src/common/npy';

const run = promisify(execFile);
const root = path.join(__dirname, '..');
const demo = path.join(root, 'models', 'demo');
const card = JSON.parse(fs.readFileSync(path.join(demo, 'model.json'), 'utf8'));

test('pgn score on a demo image writes the map, the prediction and the overlay, and finds the OoD object', async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'pgn-demo-'));
  const { stdout } = await run('node', [path.join(root, 'dist', 'cli', 'index.js'), 'score', path.join(demo, 'eval', 'images', 'demo_000.jpg'), '--out', out], { cwd: root });
  const line = JSON.parse(stdout.trim());
  expect([line.width, line.height]).toEqual([512, 256]);
  expect(fs.readdirSync(out).sort()).toEqual(['demo_000.overlay.png', 'demo_000.pgn-oh_p0.5.npy', 'demo_000.prediction.png']);
  const map = await readNpy(path.join(out, 'demo_000.pgn-oh_p0.5.npy'));
  expect(map.dims).toEqual([256, 512]);
  // Some segment overlaps the labelled OoD object of this scene.
  const { readLabelMask } = await import('../src/eval/dataset');
  const mask = await readLabelMask(path.join(demo, 'eval', 'labels_masks', 'demo_000.png'));
  const hit = line.segments.some((s: { bbox: number[] }) => {
    const [x, y, w, h] = s.bbox;
    for (let yy = y; yy < y + h; yy++) for (let xx = x; xx < x + w; xx++) if (mask.data[yy * 512 + xx] === 1) return true;
    return false;
  });
  expect(hit).toBe(true);
});

test('pgn eval on the demo set reproduces the figures of the model card', async () => {
  const scores = Object.keys(card.metrics.ood);
  const result = await evaluate({ dataset: path.join(demo, 'eval'), scores, instance: false });
  expect(result.images).toBe(40);
  for (const row of result.rows) {
    const expected = card.metrics.ood[row.label];
    expect(100 * row.pixel.auroc).toBeCloseTo(expected.AUROC, 1);
    expect(100 * row.pixel.auprc).toBeCloseTo(expected.AuPRC, 1);
    expect(100 * row.pixel.fpr95).toBeCloseTo(expected.FPR95, 1);
  }
  // The paper's qualitative finding on this set: PGN beats softmax entropy on AuPRC.
  const auprc = (label: string) => result.rows.find((r) => r.label === label)!.pixel.auprc;
  expect(auprc('pgn-oh:p=0.5')).toBeGreaterThan(auprc('entropy'));
});

test('pgn score with a score the card recommends no threshold for still scores, and says segments were skipped', async () => {
  const { stdout, stderr } = await run('node', [path.join(root, 'dist', 'cli', 'index.js'), 'score', path.join(demo, 'eval', 'images', 'demo_001.jpg'), '--score', 'entropy'], { cwd: root });
  const line = JSON.parse(stdout.trim());
  expect(Object.keys(line.scores)).toEqual(['entropy']);
  expect(line.segments).toBeUndefined();
  expect(stderr).toMatch(/no segments: the model card recommends no threshold for entropy/);
});

test('the pgn bin stays executable after the build that precedes the tests (npx pgn works after npm test)', () => {
  expect(fs.statSync(path.join(root, 'dist', 'cli', 'index.js')).mode & 0o111).not.toBe(0);
});
