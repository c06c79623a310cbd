/**
 * `pgn bench` on the demo model: the report's shape and figures with synthetic images and with
 * --images (the files used in turn), and a missing file named in the error.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';

const run = promisify(execFile);
const cli = path.join(__dirname, '..', 'dist', 'cli', 'index.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgn-bench-'));
const STAGES = ['decode', 'preprocess', 'inference', 'scores', 'upsample', 'prediction', 'segments', 'total'];

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function bench(args: string[]) {
  const { stdout } = await run('node', [cli, 'bench', '--iterations', '3', '--warmup', '1', '--json', ...args]);
  return JSON.parse(stdout);
}

function expectFigures(report: { stages: Record<string, { p50: number; p95: number; p99: number; mean: number }> }) {
  expect(Object.keys(report.stages)).toEqual(STAGES);
  for (const s of Object.values(report.stages)) {
    for (const v of [s.p50, s.p95, s.p99, s.mean]) expect(Number.isFinite(v) && v >= 0).toBe(true);
    expect(s.p50).toBeLessThanOrEqual(s.p99);
  }
  expect(report.stages.inference.p50).toBeGreaterThan(0);
}

test('synthetic images: per-stage figures, segments with or without the label image', async () => {
  const plain = await bench(['--size', '64x96']);
  expect(plain.size).toEqual([64, 96]);
  expect(plain.images).toBeUndefined();
  expect(plain.segments).toBe('segments');
  expectFigures(plain);
  expect((await bench(['--size', '64x96', '--labels'])).segments).toBe('segments and label image');
  expect((await bench(['--size', '64x96', '--no-segments'])).segments).toBe('off');
}, 60000);

test('--images: the files in turn, the first one\'s size reported', async () => {
  const files = [];
  for (const [i, [w, h]] of [[120, 80], [90, 60], [64, 48]].entries()) {
    const raw = Buffer.alloc(w * h * 3, 40 * i + 20);
    const file = path.join(dir, `im${i}.jpg`);
    await sharp(raw, { raw: { width: w, height: h, channels: 3 } }).jpeg().toFile(file);
    files.push(file);
  }
  const report = await bench(['--images', ...files, '--batch', '2']);
  expect(report.images).toBe(3);
  expect(report.size).toEqual([80, 120]);
  expect(report.batch).toBe(2);
  expectFigures(report);
}, 60000);

test('--images: a missing file is named, and a file that is no image is refused', async () => {
  const missing = path.join(dir, 'nope.jpg');
  await expect(run('node', [cli, 'bench', '--images', missing, '--iterations', '1'])).rejects.toMatchObject({ stderr: expect.stringContaining(`${missing}: cannot read (ENOENT)`) });
  const text = path.join(dir, 'text.jpg');
  fs.writeFileSync(text, 'not an image');
  await expect(run('node', [cli, 'bench', '--images', text, '--iterations', '1'])).rejects.toMatchObject({ stderr: expect.stringContaining('cannot be decoded') });
}, 60000);
