/**
 * Data sets in the SegmentMeIfYouCan layout: DIR/images/<stem>.<ext> and DIR/labels_masks/<stem>.png,
 * masks with 0 = in-distribution, 1 = OoD, 255 = void.
 */
import fs from 'node:fs';
import path from 'node:path';
import sharp, { Metadata, Sharp } from 'sharp';
import { DatasetError, ImageError } from '../common/errors';
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

/** A file's decoder and header; a device (read without end) or a FIFO (blocks) is refused first. */
async function open(file: string): Promise<{ image: Sharp; meta: Metadata }> {
  const problem = notRegular(await fs.promises.stat(file));
  if (problem) throw new Error(problem);
  const image = sharp(file);
  return { image, meta: await image.metadata() };
}

/**
 * The mask's values as stored in the file, one per pixel. PNG greys of 1, 2 or 4 bits come from the
 * decoder scaled to 0..255 and are scaled back; 16-bit samples are read at 16 bits (a 16-bit 255 is
 * 255, not 0); an RGB mask must be grey (R = G = B); alpha is ignored. A palette PNG stores indices
 * that the decoder turns into colours, so it cannot be read exactly and is refused.
 */
async function storedValues(file: string): Promise<{ values: ArrayLike<number>; width: number; height: number }> {
  const { image, meta } = await open(file);
  if (meta.isPalette) throw new Error('a palette PNG: its pixels are palette indices, which are not read exactly; save the mask as greyscale');
  const bits = meta.bitsPerSample ?? (meta.depth === 'ushort' ? 16 : 8);
  // 16 bits stay 16 bits only in a 16-bit colourspace (else sharp goes through 8-bit sRGB)
  const sixteen = bits === 16 ? image.toColourspace((meta.channels ?? 1) >= 3 ? 'rgb16' : 'grey16') : image;
  const { data, info } = await sixteen.raw({ depth: bits === 16 ? 'ushort' : 'uchar' }).toBuffer({ resolveWithObject: true });
  const samples = bits === 16 ? new Uint16Array(data.buffer, data.byteOffset, data.length / 2) : data;
  const channels = info.channels;
  const scale = bits < 8 ? 255 / (2 ** bits - 1) : 1;
  const values = new Uint16Array(info.width * info.height);
  for (let i = 0; i < values.length; i++) {
    const v = samples[i * channels];
    if (channels >= 3 && (samples[i * channels + 1] !== v || samples[i * channels + 2] !== v))
      throw new Error(`a colour image: pixel (${i % info.width}, ${Math.floor(i / info.width)}) has R, G, B = ${v}, ${samples[i * channels + 1]}, ${samples[i * channels + 2]}; masks are greyscale`);
    values[i] = v / scale;
  }
  return { values, width: info.width, height: info.height };
}

/**
 * Reads a mask: 0 (in-distribution), 1 (OoD) or 255 (void) per pixel, read as stored whatever the
 * PNG's colour type and bit depth; other values, or a mask that cannot be read exactly, are a DatasetError.
 */
export async function readLabelMask(file: string): Promise<LabelMask> {
  let stored: Awaited<ReturnType<typeof storedValues>>;
  try {
    stored = await storedValues(file);
  } catch (err) {
    throw new DatasetError(`${file}: cannot read the label mask (${(err as Error).message})`, { cause: err });
  }
  const { values, width, height } = stored;
  const data = new Uint8Array(values.length);
  for (let i = 0; i < data.length; i++) {
    const v = values[i];
    if (v !== 0 && v !== 1 && v !== 255)
      throw new DatasetError(`${file}: label value ${v} at pixel (${i % width}, ${Math.floor(i / width)}); masks hold 0 (in-distribution), 1 (OoD) and 255 (void)`);
    data[i] = v;
  }
  return { data, width, height };
}

/**
 * An item's mask, once its size is known from the headers to be its image's (upright, as decoded):
 * a mask of another size would be scored against a stretched image, and a huge one would be decoded
 * (a 17 KB 12000×12000 mask took 2 GB) only to be wrong.
 */
export async function readItemMask(item: DatasetItem): Promise<LabelMask> {
  const image = await open(item.image).catch((err: Error) => {
    throw new ImageError(`${item.image}: cannot decode image (${err.message})`, { cause: err });
  });
  const mask = await open(item.label).catch((err: Error) => {
    throw new DatasetError(`${item.label}: cannot read the label mask (${err.message})`, { cause: err });
  });
  const { width, height } = image.meta.autoOrient;
  if (mask.meta.width !== width || mask.meta.height !== height)
    throw new DatasetError(`${item.label}: the mask is ${mask.meta.width}x${mask.meta.height} but its image ${item.image} is ${width}x${height}; a mask must have its image's size`);
  return readLabelMask(item.label);
}
