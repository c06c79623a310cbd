/**
 * Data set folders and label masks read exactly or refused (issue 20): stems shared by two files,
 * masks of every PNG colour type and bit depth, masks whose size differs from their image.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatasetError } from '../src/common/errors';
import { readDataset } from '../src/eval/dataset';

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
