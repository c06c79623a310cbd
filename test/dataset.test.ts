/**
 * Data set folders and label masks read exactly or refused (issue 20): stems shared by two files,
 * masks of every PNG colour type and bit depth, masks whose size differs from their image.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatasetError } from '../src/common/errors';
import { readDataset, readLabelMask } from '../src/eval/dataset';
import { encodePng, PNG_CHANNELS } from './helpers/png';

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
    const err = await readLabelMask(file).catch((e: unknown) => e as Error);
    expect(err).toBeInstanceOf(DatasetError);
    expect(err.message).toBe(`${file}: cannot read the label mask (a palette PNG: its pixels are palette indices, which are not read exactly; save the mask as greyscale)`);
  });

  test('an RGB mask that is not grey: refused, naming the pixel', async () => {
    const file = path.join(root, 'colour.png');
    fs.writeFileSync(file, encodePng({ width: 2, height: 1, colourType: 2, bitDepth: 8, samples: [1, 1, 1, 1, 0, 1] }));
    const err = await readLabelMask(file).catch((e: unknown) => e as Error);
    expect(err).toBeInstanceOf(DatasetError);
    expect(err.message).toBe(`${file}: cannot read the label mask (a colour image: pixel (1, 0) has R, G, B = 1, 0, 1; masks are greyscale)`);
  });
});
