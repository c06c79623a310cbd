/**
 * Data sets in the SegmentMeIfYouCan layout: DIR/images/<stem>.<ext> and DIR/labels_masks/<stem>.png,
 * masks with 0 = in-distribution, 1 = OoD, 255 = void.
 */
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { DatasetError } from '../common/errors';
import { notRegular } from '../common/read-file';
import { IMAGE_EXTENSIONS } from '../run/inputs';

export interface DatasetItem {
  stem: string;
  image: string;
  label: string;
}

export interface LabelMask {
  data: Uint8Array;
  width: number;
  height: number;
}

function listDir(dir: string, what: string): string[] {
  try {
    return fs.readdirSync(dir).filter((f) => !f.startsWith('.')).sort();
  } catch (err) {
    throw new DatasetError(`${what} folder ${dir} cannot be read: ${(err as Error).message}`, { cause: err });
  }
}

const list = (a: string[]) => a.slice(0, 5).join(', ') + (a.length > 5 ? `, … (${a.length})` : '');

/**
 * The files of a folder with these extensions, by stem. Two files with one stem (x.jpg beside x.png)
 * are a DatasetError naming them: keeping either would pair a mask with an image it may not belong to.
 */
function byStem(root: string, folder: string, files: string[], exts: string[]): Map<string, string> {
  const map = new Map<string, string[]>();
  for (const f of files.filter((f) => exts.includes(path.extname(f).slice(1).toLowerCase()))) {
    const stem = path.parse(f).name;
    map.set(stem, [...(map.get(stem) ?? []), f]);
  }
  const shared = [...map].filter(([, group]) => group.length > 1).map(([stem, group]) => `${stem} (${group.join(', ')})`);
  if (shared.length > 0) throw new DatasetError(`${root}: files in ${folder} share a stem, so which one pairs with its ${folder === 'images' ? 'mask' : 'image'} is ambiguous: ${list(shared)}`);
  return new Map([...map].map(([stem, [f]]) => [stem, f]));
}

/**
 * The pairs of a data set folder, by stem; unmatched images or masks, and stems shared by two
 * images (or masks), are a DatasetError listing them.
 */
export function readDataset(root: string): DatasetItem[] {
  const images = listDir(path.join(root, 'images'), 'images');
  const labels = listDir(path.join(root, 'labels_masks'), 'labels_masks');
  const imageMap = byStem(root, 'images', images, IMAGE_EXTENSIONS);
  const labelMap = byStem(root, 'labels_masks', labels, ['png']);
  const noLabel = [...imageMap.keys()].filter((s) => !labelMap.has(s));
  const noImage = [...labelMap.keys()].filter((s) => !imageMap.has(s));
  if (noLabel.length > 0 || noImage.length > 0) {
    throw new DatasetError(`${root}: images and labels_masks do not pair up by stem` +
      (noLabel.length ? `; no mask for ${list(noLabel)}` : '') + (noImage.length ? `; no image for ${list(noImage)}` : ''));
  }
  if (imageMap.size === 0) throw new DatasetError(`${root}: no images in ${path.join(root, 'images')}`);
  return [...imageMap.keys()].map((stem) => ({ stem, image: path.join(root, 'images', imageMap.get(stem)!), label: path.join(root, 'labels_masks', labelMap.get(stem)!) }));
}

/** Reads a mask as 8-bit single channel; values other than 0, 1, 255 are a DatasetError. */
export async function readLabelMask(file: string): Promise<LabelMask> {
  let out: { data: Buffer; info: { width: number; height: number } };
  try {
    const problem = notRegular(await fs.promises.stat(file)); // a device is read without end, a FIFO blocks
    if (problem) throw new Error(problem);
    out = await sharp(file).extractChannel(0).raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw new DatasetError(`${file}: cannot read the label mask (${(err as Error).message})`, { cause: err });
  }
  const data = new Uint8Array(out.data.buffer, out.data.byteOffset, out.data.length);
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v !== 0 && v !== 1 && v !== 255)
      throw new DatasetError(`${file}: label value ${v} at pixel (${i % out.info.width}, ${Math.floor(i / out.info.width)}); masks hold 0 (in-distribution), 1 (OoD) and 255 (void)`);
  }
  return { data, width: out.info.width, height: out.info.height };
}
