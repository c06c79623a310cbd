/**
 * The bad-input matrix (docs/bad-input.md): every way a caller can hand pgn-ood something broken —
 * images, models, model cards, tensors, thresholds, output paths, data sets — ends in a specific
 * typed error with a message saying what was wrong (or, for inputs that are merely unusual, in a
 * result), and the process carries on: after every case a native call still works, and the CLI
 * cases exit with a status code, never a signal.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { DatasetError, ImageError, ModelCardError, ModelError, OutputError, PgnError } from '../src/common/errors';
import { evaluate } from '../src/eval/evaluate';
import { writeFileAtomic } from '../src/common/files';
import { ModelCard } from '../src/model/model-card';
import { writeNpy } from '../src/common/npy';
import { Scorer } from '../src/run/scorer';
import { computeScores, upsample } from '../src/scoring/scores';
import { findSegments } from '../src/scoring/segments';
import { buildSegModel, GraphBuilder } from './helpers/onnx-builder';
import { runCli } from './helpers/cli';
import { pngClaiming } from './helpers/png';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pgn-bad-input-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

type ErrorClass = abstract new (...args: never[]) => Error;

/** The promise rejects with exactly this class (by constructor and name) and a message matching. */
async function expectFailure(promise: Promise<unknown>, cls: ErrorClass, message: RegExp): Promise<Error> {
  const err = await promise.then(
    () => new Error('expected a rejection, got a result'),
    (e: unknown) => e as Error,
  );
  expect(err).toBeInstanceOf(cls);
  expect(err.name).toBe(cls.name);
  expect(err.message).toMatch(message);
  return err;
}

/** The process lives on: a native call still runs to completion after each case. */
afterEach(async () => {
  const out = await computeScores({ data: new Float32Array([0, 1, 2, 3]), dims: [1, 2, 1, 2] }, undefined, { scores: ['msp'] });
  expect(out.maps[0].map.data).toHaveLength(2);
});

// ---------------------------------------------------------------------------------------------------
// Fixtures: a tiny model with its card, images of every kind, broken models.

const CLASSES = 5;
const card = (o: Partial<ModelCard> = {}): ModelCard => ({
  name: 'tiny',
  model: 'model.onnx',
  input: { name: 'input', height: 16, width: 16, resize: 'stretch', channelOrder: 'rgb', scale: 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
  classes: Array.from({ length: CLASSES }, (_, i) => ({ name: `c${i}`, color: [i * 40, 0, 0] })),
  recommended: { score: 'pgn-oh:p=0.5', threshold: 1 },
  ...o,
});

function modelDir(name: string, bytes: Uint8Array | string, c: ModelCard | null = card()): string {
  const dir = path.join(root, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'model.onnx'), bytes);
  if (c) fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(c));
  return c ? dir : path.join(dir, 'model.onnx');
}

const goodModel = modelDir('good', buildSegModel().bytes);

function pixels(width: number, height: number, channels: number): Buffer {
  return Buffer.from(Array.from({ length: width * height * channels }, (_, i) => (i * 37) % 256));
}

const images = path.join(root, 'images');
fs.mkdirSync(images);
const img = (name: string) => path.join(images, name);

beforeAll(async () => {
  const rgb = sharp(pixels(24, 16, 3), { raw: { width: 24, height: 16, channels: 3 } });
  await rgb.clone().png().toFile(img('good.png'));
  const png = fs.readFileSync(img('good.png'));
  const jpeg = await rgb.clone().jpeg().toBuffer();
  fs.writeFileSync(img('truncated.png'), png.subarray(0, png.length >> 1));
  fs.writeFileSync(img('truncated.jpg'), jpeg.subarray(0, jpeg.length >> 1));
  // a JPEG start-of-image marker followed by noise
  fs.writeFileSync(img('corrupt.jpg'), Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), pixels(200, 1, 1)]));
  fs.writeFileSync(img('empty.png'), Buffer.alloc(0));
  fs.writeFileSync(img('bomb.png'), pngClaiming(100000, 100000));
  fs.writeFileSync(img('notes.png'), 'just some text, not an image\n');
  fs.writeFileSync(img('paper.pdf'), '%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n');
  await sharp(pixels(24, 16, 1), { raw: { width: 24, height: 16, channels: 1 } }).png().toFile(img('grey.png'));
  await sharp(pixels(24, 16, 2), { raw: { width: 24, height: 16, channels: 2 } }).png().toFile(img('grey-alpha.png'));
  await sharp(pixels(24, 16, 4), { raw: { width: 24, height: 16, channels: 4 } }).png().toFile(img('rgba.png'));
  const wide = Uint16Array.from(pixels(24, 16, 3), (v) => v * 257);
  await sharp(wide, { raw: { width: 24, height: 16, channels: 3 } }).toColourspace('rgb16').png().toFile(img('16bit.png'));
  await rgb.clone().jpeg().withMetadata({ orientation: 6 }).toFile(img('exif-rotated.jpg'));
});

// ---------------------------------------------------------------------------------------------------

describe('images', () => {
  let scorer: Scorer;
  beforeAll(async () => {
    scorer = await Scorer.create({ model: goodModel, scores: ['pgn-oh:p=0.5', 'entropy'] });
  });
  afterAll(() => scorer.dispose());

  test.each([
    ['corrupt JPEG', 'corrupt.jpg', /corrupt\.jpg: cannot decode image \(/],
    ['truncated PNG', 'truncated.png', /truncated\.png: cannot decode image \(/],
    ['truncated JPEG', 'truncated.jpg', /truncated\.jpg: cannot decode image \(.*premature end of JPEG/],
    ['zero-byte file', 'empty.png', /empty\.png: empty file \(0 bytes\), not an image$/],
    ['PNG header claiming 100000x100000', 'bomb.png', /bomb\.png: image claims 100000x100000 = 10000000000 pixels, more than the limit of 67108864 \(limitInputPixels; --limit-input-pixels in the CLI\); not decoded/],
    ['text file', 'notes.png', /notes\.png: cannot decode image \(.*unsupported image format/],
    ['PDF', 'paper.pdf', /paper\.pdf: cannot decode image \(.*unsupported image format/],
    ['missing file', 'missing.png', /missing\.png: cannot decode image \(Input file is missing/],
    ['a folder', '.', /images: is a directory, not an image file$/],
  ])('%s → ImageError', async (_title, file, message) => {
    const err = await expectFailure(scorer.score(img(file)), ImageError, message);
    expect((err as PgnError).code).toBe('PGN_IMAGE');
  });

  test('zero bytes in a buffer → ImageError', async () => {
    await expectFailure(scorer.score(Buffer.alloc(0)), ImageError, /^<buffer>: cannot decode image \(Input Buffer is empty\)$/);
  });

  test('something that is not an image at all (a number) → TypeError', async () => {
    await expectFailure(scorer.score(42 as never), TypeError, /an image must be a file path, a Buffer or a Uint8Array of encoded bytes, got number/);
  });

  test('a 100000x100000 header is refused before any pixel is allocated', async () => {
    const before = process.memoryUsage().rss;
    await expectFailure(scorer.score(fs.readFileSync(img('bomb.png'))), ImageError, /^<buffer>: image claims 100000x100000/);
    expect(process.memoryUsage().rss - before).toBeLessThan(256 * 2 ** 20); // 30 GB of RGB were claimed
  });

  test.each(['grey.png', 'grey-alpha.png', 'rgba.png', '16bit.png'])('%s is scored like any image', async (file) => {
    const r = await scorer.score(img(file));
    expect([r.width, r.height]).toEqual([24, 16]);
    expect(r.maps).toHaveLength(2);
    for (const m of r.maps) {
      expect(m.data).toHaveLength(24 * 16);
      expect(m.data.every(Number.isFinite)).toBe(true);
    }
  });

  test('an EXIF-rotated JPEG is scored upright: the result has the rotated size', async () => {
    expect((await sharp(img('exif-rotated.jpg')).metadata()).orientation).toBe(6);
    const r = await scorer.score(img('exif-rotated.jpg'));
    expect([r.width, r.height]).toEqual([16, 24]);
    expect(r.maps[0].data).toHaveLength(16 * 24);
    expect(r.prediction).toHaveLength(16 * 24);
  });
});

// ---------------------------------------------------------------------------------------------------

/** input [1, 48] → Reshape [1, 3, 4, 4] → Conv1x1 → logits: a model, but not of an image tensor. */
function rank2InputModel(): Uint8Array {
  const g = new GraphBuilder(3);
  g.input('input', [1, 48]);
  g.initializer({ name: 'shape', dims: [4], dataType: 7, int64Data: [1, 3, 4, 4] });
  g.node('Reshape', ['input', 'shape'], ['x']);
  g.randomInit('w', [CLASSES, 3, 1, 1]);
  g.node('Conv', ['x', 'w'], ['logits'], { kernel_shape: [1, 1] }, 'head');
  g.output('logits', [1, CLASSES, 4, 4]);
  return g.build();
}

/** A 1x1 conv straight on the input: [1, channels, 16, 16] → [1, classes, 16, 16]. */
function convOnlyModel(channels: number, classes: number): Uint8Array {
  const g = new GraphBuilder(4);
  g.input('input', [1, channels, 16, 16]);
  g.randomInit('w', [classes, channels, 1, 1]);
  g.node('Conv', ['input', 'w'], ['logits'], { kernel_shape: [1, 1] }, 'head');
  g.output('logits', [1, classes, 16, 16]);
  return g.build();
}

describe('models and model cards', () => {
  const good = buildSegModel().bytes;

  test.each([
    ['a text file as model', () => modelDir('text', 'this is not a model\n', null), ModelError, /model\.onnx: not an ONNX model/],
    ['a PNG as model', () => modelDir('png', pngClaiming(4, 4), null), ModelError, /model\.onnx: not an ONNX model/],
    ['a zero-byte model', () => modelDir('zero', Buffer.alloc(0), null), ModelError, /model\.onnx: not an ONNX model \(empty file\)/],
    ['an ONNX model truncated mid-file', () => modelDir('truncated', good.subarray(0, Math.floor(good.length * 0.6)), null), ModelError, /model\.onnx: not an ONNX model, or truncated/],
    ['the same, with its card', () => modelDir('truncated-card', good.subarray(0, Math.floor(good.length * 0.6))), ModelError, /model\.onnx: not an ONNX model, or truncated/],
    ['a rank-2 input', () => modelDir('rank2', rank2InputModel(), null), ModelError, /model\.onnx: the model's input "input" has shape \[1,48\]; pgn-ood feeds images as \[N,3,H,W\]/],
    ['a 1-channel input', () => modelDir('grey-input', convOnlyModel(1, CLASSES), null), ModelError, /model\.onnx: the model's input "input" has 1 channel; pgn-ood feeds RGB images as \[N,3,H,W\]/],
    ['one class (C = 1)', () => modelDir('one-class', convOnlyModel(3, 1), null), ModelError, /model\.onnx: the final conv "head" has 1 output channel: the scores need the logits of at least 2 classes/],
    ['a card with the wrong class count', () => modelDir('card-classes', good, card({ classes: card().classes.slice(0, 3) })), ModelCardError, /model\.json: the card contradicts the model: lists 3 classes but the model's final conv "classifier\.4" has 5 output channels/],
    ['a card with the wrong input name', () => modelDir('card-input', good, card({ input: { ...card().input, name: 'image' } })), ModelCardError, /names the input "image" but the model's input is "input"/],
    ['a card that is not JSON', () => { const d = modelDir('card-json', good); fs.writeFileSync(path.join(d, 'model.json'), '{ "name": '); return d; }, ModelCardError, /model\.json: model card is not valid JSON/],
    ['a missing model path', () => path.join(root, 'no-such-model'), ModelCardError, /no-such-model: no such file or directory/],
  ] as [string, () => string, ErrorClass, RegExp][])('%s', async (_title, make, cls, message) => {
    await expectFailure(Scorer.create({ model: make() }), cls, message);
  });
});

// ---------------------------------------------------------------------------------------------------

describe('tensors', () => {
  const [N, C, F, h, w] = [2, 3, 4, 3, 5];
  const logits = () => ({ data: Float32Array.from({ length: N * C * h * w }, (_, i) => Math.sin(i)), dims: [N, C, h, w] });
  const features = () => ({ data: Float32Array.from({ length: N * F * h * w }, (_, i) => Math.cos(i)), dims: [N, F, h, w] });
  const scores = ['pgn-oh:p=0.5', 'entropy'];

  test.each([
    ['NaN in logits', 'logits', 7, NaN],
    ['+Inf in logits', 'logits', 0, Infinity],
    ['-Inf in features', 'features', N * F * h * w - 1, -Infinity],
    ['NaN in features', 'features', 13, NaN],
  ] as const)('%s → RangeError naming the tensor and the flat index', async (_title, tensor, index, value) => {
    const l = logits();
    const f = features();
    (tensor === 'logits' ? l : f).data[index] = value;
    await expectFailure(computeScores(l, f, { scores }), RangeError, new RegExp(`^${tensor} contain a non-finite value \\(NaN or Inf\\) at flat index ${index}$`));
  });

  test.each([
    ['truncated', async (f: string) => fs.writeFileSync(f, (await fs.promises.readFile(f)).subarray(0, 200)), /l\.npy: truncated: shape \(2, 3, 3, 5\) needs 360 bytes, file has \d+/],
    ['not a .npy', async (f: string) => fs.writeFileSync(f, 'hello'), /l\.npy: not a \.npy file \(bad magic\)/],
    ['of the wrong dtype', async (f: string) => writeNpy(f, new Int32Array(90), [2, 3, 3, 5]), /l\.npy: expected a float array, got dtype <i4/],
    ['of rank 3', async (f: string) => writeNpy(f, new Float32Array(90), [6, 3, 5]), /logits .*l\.npy: expected 4 dimensions \[N,C,h,w\], got \[6, 3, 5\]/],
  ] as [string, (f: string) => Promise<void>, RegExp][])('pgn tensors with a logits file %s → TensorFileError, exit code 2', async (title, spoil, message) => {
    const d = path.join(root, `npy-${title.replace(/\W+/g, '-')}`);
    fs.mkdirSync(d, { recursive: true });
    const file = path.join(d, 'l.npy');
    await writeNpy(file, logits().data, [N, C, h, w]);
    await spoil(file);
    const r = await runCli(['tensors', '--logits', file, '--score', 'msp', '--out', path.join(d, 'out')]);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^pgn: PGN_TENSOR_FILE: /);
    expect(r.stderr).toMatch(message);
  });

  test('an unknown score name → RangeError listing the kinds', async () => {
    await expectFailure(computeScores(logits(), features(), { scores: ['gradnorm'] }), RangeError, /unknown score "gradnorm": the kinds are pgn-oh, pgn-uni, entropy/);
  });

  test('C = 1 → RangeError', async () => {
    await expectFailure(computeScores({ data: new Float32Array(N * h * w), dims: [N, 1, h, w] }, features(), { scores }), RangeError, /logitsDims\[1\] \(classes\) must be >= 2, got 1/);
  });

  test('F = 0 → RangeError', async () => {
    await expectFailure(computeScores(logits(), { data: new Float32Array(0), dims: [N, 0, h, w] }, { scores }), RangeError, /featuresDims\[1\] must be a positive integer, got 0/);
  });

  test('mismatched batch sizes → RangeError', async () => {
    const f = { data: new Float32Array(F * h * w), dims: [1, F, h, w] };
    await expectFailure(computeScores(logits(), f, { scores }), RangeError, /featuresDims \[1, 4, 3, 5\] must match logitsDims \[2, 3, 3, 5\] in batch, height and width/);
  });

  test('data that does not fill its dims → RangeError', async () => {
    await expectFailure(computeScores({ data: new Float32Array(5), dims: [N, C, h, w] }, features(), { scores }), RangeError, /logits has 5 elements but its dims call for 90/);
  });

  test('a PGN score without features → TypeError', async () => {
    await expectFailure(computeScores(logits(), undefined, { scores }), TypeError, /features must be \{ data: Float32Array, dims: \[N, F, h, w\] \}/);
  });

  // Under a 3 GB address-space limit the 8 GB result cannot be allocated: napi_create_arraybuffer used
  // to abort the process there (V8 treats that failure as fatal); now it is a RangeError.
  const asan = process.env.PGN_ASAN === '1'; // ASan reserves terabytes of address space: no ulimit -v then
  (asan ? test.skip : test)('a result too large to allocate → RangeError, not an abort', async () => {
    const script = `
      const { upsample } = require('${path.join(__dirname, '..', 'dist', 'scoring', 'scores.js')}');
      upsample({ data: new Float32Array(4), dims: [1, 2, 2] }, [46340, 46340], { threads: 1 })
        .then(() => console.log('allocated'), (e) => console.log(e.name + ': ' + e.message));`;
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
      execFile('bash', ['-c', 'ulimit -v 3000000; exec node -e "$0"', script], { timeout: 60000 }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr })));
    expect(r.stderr).not.toMatch(/FATAL ERROR/);
    expect(r.code).toBe(0);
    // The reason is the mapping's (an output of 2 MiB and more has one of its own: native/binding/args.cc).
    expect(r.stdout.trim()).toBe('RangeError: cannot allocate the upsampled maps: 2147395600 values (8589582400 bytes): Cannot allocate memory');
  });

  test('upsampling to a zero or gigantic size → RangeError', async () => {
    const maps = { data: new Float32Array(4), dims: [1, 2, 2] as [number, number, number] };
    await expectFailure(upsample(maps, [0, 4]), RangeError, /size\[0\] must be a positive integer, got 0/);
    await expectFailure(upsample(maps, [2 ** 20, 2 ** 20]), RangeError, /more than 2\^31 elements/);
  });
});

// ---------------------------------------------------------------------------------------------------

describe('thresholds', () => {
  const map = { data: Float32Array.from({ length: 64 }, (_, i) => (i % 9) / 8), dims: [1, 8, 8] as [number, number, number] };

  test.each([
    ['above the maximum', 2],
    ['+Infinity', Infinity],
    ['exactly the maximum (score > t)', 1],
  ])('a threshold %s → zero segments, not an error', async (_title, threshold) => {
    const r = await findSegments(map, { threshold });
    expect(r.segments).toEqual([[]]);
    expect(r.labels!.data.every((l) => l === 0)).toBe(true);
  });

  test('a threshold below the minimum (or -Infinity) → one segment covering the map', async () => {
    for (const threshold of [-1, -Infinity]) {
      const r = await findSegments(map, { threshold });
      expect(r.segments[0].map((s) => s.area)).toEqual([64]);
    }
  });

  test('NaN threshold → RangeError', async () => {
    await expectFailure(findSegments(map, { threshold: NaN }), RangeError, /threshold must not be NaN/);
  });

  test('a segment threshold above every score in the scorer → no segments', async () => {
    const scorer = await Scorer.create({ model: goodModel, segments: { threshold: 1e30 } });
    try {
      const r = await scorer.score(img('good.png'));
      expect(r.segments).toEqual([]);
      expect(r.segmentLabels!.every((l) => l === 0)).toBe(true);
    } finally {
      await scorer.dispose();
    }
  });

  test('NaN segment threshold in the scorer → RangeError', async () => {
    await expectFailure(Scorer.create({ model: goodModel, segments: { threshold: NaN } }), RangeError, /segments\.threshold must be a number/);
  });
});

// ---------------------------------------------------------------------------------------------------

/** A data set folder: images/<stem>.png for each stem, labels_masks/<stem>.png (all = maskValue) for each mask stem. */
async function dataset(name: string, stems: string[], masks: string[], maskValue = 1): Promise<string> {
  const dir = path.join(root, name);
  fs.mkdirSync(path.join(dir, 'images'), { recursive: true });
  if (masks.length) fs.mkdirSync(path.join(dir, 'labels_masks'), { recursive: true });
  for (const s of stems) fs.copyFileSync(img('good.png'), path.join(dir, 'images', `${s}.png`));
  for (const s of masks) await sharp(Buffer.alloc(24 * 16, maskValue), { raw: { width: 24, height: 16, channels: 1 } }).png().toFile(path.join(dir, 'labels_masks', `${s}.png`));
  return dir;
}

describe('output paths', () => {
  const file = path.join(root, 'a-regular-file');
  beforeAll(() => fs.writeFileSync(file, 'x'));

  test('writeNpy under a regular file → OutputError', async () => {
    await expectFailure(writeNpy(path.join(file, 'out.npy'), new Float32Array(4), [2, 2]), OutputError, /cannot write .*a-regular-file\/out\.npy: ENOTDIR/);
  });

  test('writeFileAtomic onto a directory → OutputError, the directory untouched', async () => {
    const dir = path.join(root, 'a-directory');
    fs.mkdirSync(dir, { recursive: true });
    await expectFailure(writeFileAtomic(dir, 'x'), OutputError, /cannot write .*a-directory: it is a directory/);
    expect(fs.statSync(dir).isDirectory()).toBe(true);
    expect(fs.readdirSync(root).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  test('pgn score --out under a regular file → OutputError, exit code 2', async () => {
    const r = await runCli(['score', img('good.png'), '--model', goodModel, '--out', path.join(file, 'out')]);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^pgn: PGN_OUTPUT: output directory .*a-regular-file\/out cannot be created or written: ENOTDIR/);
  });

  test('pgn score --ndjson under a regular file → OutputError, exit code 2', async () => {
    const r = await runCli(['score', img('good.png'), '--model', goodModel, '--ndjson', path.join(file, 'lines.ndjson')]);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^pgn: PGN_OUTPUT: cannot write .*a-regular-file\/lines\.ndjson: ENOTDIR/);
  });

  test.each([
    ['--json', (f: string) => ['--json', path.join(f, 'figures.json')], /^pgn: PGN_OUTPUT: cannot write .*a-regular-file\/figures\.json: ENOTDIR/],
    ['--report', (f: string) => ['--report', path.join(f, 'report')], /^pgn: PGN_OUTPUT: output directory .*a-regular-file\/report cannot be created or written: ENOTDIR/],
  ])('pgn eval %s under a regular file → OutputError before evaluating, exit code 2', async (_flag, args, message) => {
    const data = await dataset(`eval-out-${_flag.slice(2)}`, ['a'], ['a']);
    const r = await runCli(['eval', data, '--model', goodModel, '--score', 'entropy', ...args(file)]);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/images: 1\/1/); // refused before the first image
    expect(r.stdout).toBe('');
  });

  test('pgn tensors --out under a regular file → OutputError, exit code 2', async () => {
    const l = path.join(root, 'l.npy');
    await writeNpy(l, new Float32Array(8), [1, 2, 2, 2]);
    const r = await runCli(['tensors', '--logits', l, '--score', 'msp', '--out', path.join(file, 'out')]);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^pgn: PGN_OUTPUT: output directory .*a-regular-file\/out cannot be created or written: ENOTDIR/);
  });
});

// ---------------------------------------------------------------------------------------------------

describe('data sets', () => {
  test('no labels_masks folder → DatasetError', async () => {
    const dir = await dataset('no-labels', ['a', 'b'], []);
    await expectFailure(evaluate({ dataset: dir, model: goodModel, scores: ['entropy'] }), DatasetError, /labels_masks folder .*no-labels\/labels_masks cannot be read: ENOENT/);
  });

  test('an image without its mask → DatasetError naming it', async () => {
    const dir = await dataset('missing-mask', ['a', 'b', 'c'], ['a', 'c']);
    await expectFailure(evaluate({ dataset: dir, model: goodModel, scores: ['entropy'] }), DatasetError, /missing-mask: images and labels_masks do not pair up by stem; no mask for b$/);
  });

  test('a mask with values other than 0, 1, 255 → DatasetError', async () => {
    const dir = await dataset('bad-mask', ['a'], ['a'], 7);
    await expectFailure(evaluate({ dataset: dir, model: goodModel, scores: ['entropy'] }), DatasetError, /a\.png: label value 7 at pixel \(0, 0\)/);
  });

  test('pgn eval on a folder with missing labels → exit code 2 with the DatasetError', async () => {
    const dir = await dataset('cli-no-labels', ['a'], []);
    const r = await runCli(['eval', dir, '--model', goodModel, '--score', 'entropy']);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/pgn: PGN_DATASET: labels_masks folder .* cannot be read/);
  });
});
