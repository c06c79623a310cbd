/**
 * Data set folders and label masks read exactly or refused (issue 20): stems shared by two files,
 * masks of every PNG colour type and bit depth, masks whose size differs from their image.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatasetError } from '../src/common/errors';
import sharp from 'sharp';
import { readDataset, readItemMask, readLabelMask } from '../src/eval/dataset';
import { evaluate } from '../src/eval/evaluate';
import { DEMO_MODEL } from '../src/run/scorer';
import { encodePng, pngClaiming, PNG_CHANNELS } from './helpers/png';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pgn-dataset-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** A data set folder with these files (contents do not matter to readDataset). */
function folder(name: string, images: string[], masks: string[]): string {
  const dir = path.join(root, name);
  for (const [sub, files] of [['images', images], ['labels_masks', masks]] as const) {
    fs.mkdirSync(path.join(dir, sub), { recursive: true });
    for (const f of files) fs.writeFileSync(path.join(dir, sub, f), '');
  }
  return dir;
}

function datasetError(fn: () => unknown): DatasetError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DatasetError);
    return err as DatasetError;
  }
  throw new Error('expected a DatasetError');
}

describe('stems', () => {
  test('two images with one stem (x.jpg beside x.png) → DatasetError naming the stems and files', () => {
    const dir = folder('dup-images', ['a.png', 'x.jpg', 'x.png', 'y.JPEG', 'y.webp'], ['a.png', 'x.png', 'y.png']);
    expect(datasetError(() => readDataset(dir)).message).toBe(
      `${dir}: files in images share a stem, so which one pairs with its mask is ambiguous: x (x.jpg, x.png), y (y.JPEG, y.webp)`,
    );
  });

  test('two masks with one stem (x.png beside x.PNG) → DatasetError', () => {
    const dir = folder('dup-masks', ['x.jpg'], ['x.PNG', 'x.png']);
    expect(datasetError(() => readDataset(dir)).message).toBe(`${dir}: files in labels_masks share a stem, so which one pairs with its image is ambiguous: x (x.PNG, x.png)`);
  });

  test('distinct stems pair up; files of other kinds are ignored', () => {
    const dir = folder('fine', ['a.jpg', 'b.png', 'a.txt'], ['a.png', 'b.png', 'a.json']);
    expect(readDataset(dir)).toEqual([
      { stem: 'a', image: path.join(dir, 'images', 'a.jpg'), label: path.join(dir, 'labels_masks', 'a.png') },
      { stem: 'b', image: path.join(dir, 'images', 'b.png'), label: path.join(dir, 'labels_masks', 'b.png') },
    ]);
  });
});

describe('label masks are read as stored, for every PNG colour type and bit depth', () => {
  const W = 3;
  const H = 2;
  /** A mask file whose pixels store these values (colour channels equal, alpha opaque). */
  function mask(name: string, colourType: number, bitDepth: number, values: number[]): string {
    const channels = PNG_CHANNELS[colourType];
    const max = 2 ** bitDepth - 1;
    const samples = values.flatMap((v) => Array.from({ length: channels }, (_, c) => ((colourType === 4 || colourType === 6) && c === channels - 1 ? max : v)));
    const file = path.join(root, `${name}.png`);
    fs.writeFileSync(file, encodePng({ width: W, height: H, colourType, bitDepth, samples }));
    return file;
  }

  const kinds: [string, number, number][] = [
    ['grey', 0, 1], ['grey', 0, 2], ['grey', 0, 4], ['grey', 0, 8], ['grey', 0, 16],
    ['RGB', 2, 8], ['RGB', 2, 16], ['grey + alpha', 4, 8], ['grey + alpha', 4, 16], ['RGBA', 6, 8], ['RGBA', 6, 16],
  ];
  test.each(kinds)('%s (colour type %i), %i-bit: 0/1/255 read exactly, any other value refused', async (_kind, colourType, bitDepth) => {
    const max = 2 ** bitDepth - 1;
    const values = max >= 255 ? [0, 1, 255, 1, 0, 255] : [0, 1, 1, 0, 1, 0];
    const read = await readLabelMask(mask(`ok-${colourType}-${bitDepth}`, colourType, bitDepth, values));
    expect({ width: read.width, height: read.height, data: [...read.data] }).toEqual({ width: W, height: H, data: values });
    if (max < 2) return; // 1 bit holds only 0 and 1
    const other = max > 255 ? 256 : Math.min(max, 2); // 256 would read as 1 if 16 bits were cut to 8
    const bad = mask(`bad-${colourType}-${bitDepth}`, colourType, bitDepth, [0, 1, 0, 0, other, 1]);
    await expect(readLabelMask(bad)).rejects.toThrow(new DatasetError(`${bad}: label value ${other} at pixel (1, 1); masks hold 0 (in-distribution), 1 (OoD) and 255 (void)`));
  });

  test.each([1, 2, 4, 8])('palette, %i-bit: refused (its indices cannot be read exactly)', async (bitDepth) => {
    const file = path.join(root, `palette-${bitDepth}.png`);
    const palette = Array.from({ length: 2 ** bitDepth }, (_, i) => [i, 0, 255 - i]);
    fs.writeFileSync(file, encodePng({ width: W, height: H, colourType: 3, bitDepth, samples: [0, 1, 0, 1, 0, 1], palette }));
    const err = (await readLabelMask(file).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(DatasetError);
    expect(err.message).toBe(`${file}: cannot read the label mask (a palette PNG: its pixels are palette indices, which are not read exactly; save the mask as greyscale)`);
  });

  test('an RGB mask that is not grey: refused, naming the pixel', async () => {
    const file = path.join(root, 'colour.png');
    fs.writeFileSync(file, encodePng({ width: 2, height: 1, colourType: 2, bitDepth: 8, samples: [1, 1, 1, 1, 0, 1] }));
    const err = (await readLabelMask(file).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(DatasetError);
    expect(err.message).toBe(`${file}: cannot read the label mask (a colour image: pixel (1, 0) has R, G, B = 1, 0, 1; masks are greyscale)`);
  });
});

describe('a mask must have its image\'s size', () => {
  const dir = path.join(root, 'sizes');
  const file = (sub: string, name: string) => path.join(dir, sub, name);
  const item = (image: string, label: string) => ({ stem: 'x', image: file('images', image), label: file('labels_masks', label) });
  const zeros = (width: number, height: number) => encodePng({ width, height, colourType: 0, bitDepth: 8, samples: new Uint8Array(width * height) });
  beforeAll(async () => {
    fs.mkdirSync(path.join(dir, 'images'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'labels_masks'), { recursive: true });
    const rgb = sharp(Buffer.alloc(24 * 16 * 3, 90), { raw: { width: 24, height: 16, channels: 3 } });
    await rgb.clone().png().toFile(file('images', 'plain.png'));
    await rgb.clone().jpeg().withMetadata({ orientation: 6 }).toFile(file('images', 'rotated.jpg')); // upright 16x24
    fs.writeFileSync(file('labels_masks', '24x16.png'), zeros(24, 16));
    fs.writeFileSync(file('labels_masks', '16x24.png'), zeros(16, 24));
    fs.writeFileSync(file('labels_masks', 'huge.png'), pngClaiming(12000, 12000)); // its pixels are never decoded
  });

  test.each([
    ['plain.png', '16x24.png', '16x24', '24x16'],
    ['plain.png', 'huge.png', '12000x12000', '24x16'],
    ['rotated.jpg', '24x16.png', '24x16', '16x24'], // EXIF orientation 6: the image is upright 16x24
  ])('%s with mask %s → DatasetError with both sizes, from the headers', async (image, label, maskSize, imageSize) => {
    const err = (await readItemMask(item(image, label)).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(DatasetError);
    expect(err.message).toBe(`${file('labels_masks', label)}: the mask is ${maskSize} but its image ${file('images', image)} is ${imageSize}; a mask must have its image's size`);
  });

  test('matching sizes (the rotated JPEG\'s upright size) are read', async () => {
    expect((await readItemMask(item('plain.png', '24x16.png'))).width).toBe(24);
    expect((await readItemMask(item('rotated.jpg', '16x24.png'))).width).toBe(16);
  });

  test('evaluate() refuses a data set with a mismatched mask', async () => {
    const set = folder('mismatch', [], []);
    fs.copyFileSync(file('images', 'plain.png'), path.join(set, 'images', 'a.png'));
    fs.copyFileSync(file('labels_masks', '16x24.png'), path.join(set, 'labels_masks', 'a.png'));
    const err = (await evaluate({ dataset: set, model: DEMO_MODEL, scores: ['msp'], executionProviders: ['cpu'] }).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(DatasetError);
    expect(err.message).toMatch(/a\.png: the mask is 16x24 but its image .*a\.png is 24x16/);
  });
});
