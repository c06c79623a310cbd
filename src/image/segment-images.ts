/**
 * PNG files of segment results: the label image as a 16-bit grey PNG, and an overlay of the input
 * image with the score as a heatmap and the segments' outlines. Written atomically (files.ts).
 */
import { types } from 'node:util';
import sharp, { type Sharp } from 'sharp';
import { ImageError } from '../common/errors';
import { writeFileAtomic } from '../common/files';
import type { MapStack } from '../scoring/scores';
import type { LabelStack } from '../scoring/segments';

export type Rgb = [number, number, number];

/** Raw 8-bit pixels, interleaved, row-major. */
export interface RawImage {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 1 | 3 | 4;
}

export interface OverlayOptions {
  /** Which map of the stacks. Default 0. */
  index?: number;
  /** Weight of the heatmap in the blend, in [0, 1]. Default 0.5. */
  alpha?: number;
  /** Scores mapped to the ends of the colour map. Default: the finite min and max of the map. */
  range?: [number, number];
  /** Colour of the segments' outlines. Default cyan. */
  outlineColor?: Rgb;
}

function checkIndex(dims: readonly number[], index: number, what: string): void {
  if (!Number.isInteger(index) || index < 0 || index >= dims[0])
    throw new RangeError(`index ${String(index)} is not an image of the ${what} (N = ${dims[0]})`);
}

function checkLabels(labels: LabelStack): void {
  if (labels === null || typeof labels !== 'object' || !types.isUint32Array(labels.data) || !Array.isArray(labels.dims) || labels.dims.length !== 3)
    throw new TypeError('labels must be { data: Uint32Array, dims: [N, h, w] }');
  const [n, h, w] = labels.dims;
  if (labels.data.length !== n * h * w) throw new RangeError(`labels has ${labels.data.length} elements but dims [${labels.dims.join(', ')}] call for ${n * h * w}`);
}

/** Label image `index` as 16-bit values; more than 65535 labels do not fit (RangeError). */
export function labelsToUint16(labels: LabelStack, index = 0): Uint16Array {
  checkLabels(labels);
  checkIndex(labels.dims, index, 'labels');
  const plane = labels.dims[1] * labels.dims[2];
  const src = labels.data.subarray(index * plane, (index + 1) * plane);
  const out = new Uint16Array(plane);
  let max = 0;
  for (let i = 0; i < plane; i++) {
    const v = src[i];
    if (v > max) max = v;
    out[i] = v;
  }
  if (max > 65535)
    throw new RangeError(`label image ${index} has labels up to ${max}, more than a 16-bit PNG holds (65535): write the labels as a 32-bit .npy instead (writeNpy)`);
  return out;
}

/** Writes label image `index` as a 16-bit greyscale PNG (value = segment id, 0 = background). */
export async function writeLabelPng(file: string, labels: LabelStack, index = 0): Promise<void> {
  const values = labelsToUint16(labels, index);
  const [, height, width] = labels.dims;
  const png = await sharp(values, { raw: { width, height, channels: 1 } }).toColourspace('grey16').png().toBuffer();
  await writeFileAtomic(file, png);
}

/**
 * Outline of every segment: the pixels with a label whose 4-neighbourhood leaves the segment (another
 * label, background, or the image border). 1 = outline.
 */
export function outlineMask(labels: Uint32Array, height: number, width: number): Uint8Array {
  const out = new Uint8Array(height * width);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      const l = labels[i];
      if (l === 0) continue;
      if (x === 0 || x === width - 1 || y === 0 || y === height - 1 || labels[i - 1] !== l || labels[i + 1] !== l || labels[i - width] !== l || labels[i + width] !== l)
        out[i] = 1;
    }
  }
  return out;
}

// matplotlib's inferno at nine evenly spaced points, interpolated linearly.
const INFERNO: Rgb[] = [
  [0, 0, 4], [31, 12, 72], [85, 15, 109], [136, 34, 106], [186, 54, 85],
  [227, 89, 51], [249, 140, 10], [249, 201, 50], [252, 255, 164],
];

/** Colour of t in [0, 1] (clamped) on the heat map. */
export function heatColor(t: number): Rgb {
  const u = Math.min(1, Math.max(0, Number.isNaN(t) ? 0 : t)) * (INFERNO.length - 1);
  const k = Math.min(INFERNO.length - 2, Math.floor(u));
  const f = u - k;
  const a = INFERNO[k], b = INFERNO[k + 1];
  return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
}

/**
 * The overlay as raw RGB at the map's size: (1 − alpha)·image + alpha·heat(score), then the
 * outlines of the labelled segments (if labels are given) in outlineColor. The image must have the
 * map's size (writeOverlayPng resizes).
 */
export function renderOverlay(image: RawImage, scores: MapStack, labels: LabelStack | null, options: OverlayOptions = {}): Uint8Array {
  if (scores === null || typeof scores !== 'object' || !types.isFloat32Array(scores.data) || !Array.isArray(scores.dims) || scores.dims.length !== 3)
    throw new TypeError('scores must be { data: Float32Array, dims: [N, h, w] }');
  const index = options.index ?? 0;
  checkIndex(scores.dims, index, 'score maps');
  const [, height, width] = scores.dims;
  const plane = height * width;
  if (image.width !== width || image.height !== height)
    throw new RangeError(`image is ${image.width}×${image.height} but the score map is ${width}×${height}`);
  if (![1, 3, 4].includes(image.channels) || image.data.length !== plane * image.channels)
    throw new RangeError(`image data has ${image.data.length} bytes, not ${width}×${height}×${image.channels}`);
  const alpha = options.alpha ?? 0.5;
  if (typeof alpha !== 'number' || !(alpha >= 0 && alpha <= 1)) throw new RangeError(`alpha must be in [0, 1], got ${String(alpha)}`);
  const s = scores.data.subarray(index * plane, (index + 1) * plane);
  let [lo, hi] = options.range ?? [Infinity, -Infinity];
  if (!options.range) {
    for (let i = 0; i < plane; i++) {
      const v = s[i];
      if (!Number.isFinite(v)) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  const span = hi > lo ? hi - lo : 1;
  let outline: Uint8Array | null = null;
  if (labels) {
    checkLabels(labels);
    checkIndex(labels.dims, index, 'labels');
    if (labels.dims[1] !== height || labels.dims[2] !== width)
      throw new RangeError(`labels are ${labels.dims[2]}×${labels.dims[1]} but the score map is ${width}×${height}`);
    outline = outlineMask(labels.data.subarray(index * plane, (index + 1) * plane), height, width);
  }
  const color = options.outlineColor ?? [0, 255, 255];
  const out = new Uint8Array(plane * 3);
  const c = image.channels;
  for (let i = 0; i < plane; i++) {
    const o = 3 * i;
    if (outline && outline[i]) {
      out[o] = color[0];
      out[o + 1] = color[1];
      out[o + 2] = color[2];
      continue;
    }
    const v = s[i];
    const heat = heatColor(v === Infinity ? 1 : (v - lo) / span);
    for (let k = 0; k < 3; k++) {
      const base = image.data[c * i + (c === 1 ? 0 : k)];
      out[o + k] = Math.round((1 - alpha) * base + alpha * heat[k]);
    }
  }
  return out;
}

/** Decodes (path or encoded bytes) or takes raw pixels, as RGB at width × height. */
async function rgbAt(image: RawImage | string | Buffer, width: number, height: number): Promise<RawImage> {
  let pipeline: Sharp;
  // upright, as decodeImage gives the image to the model: the maps are upright too
  if (typeof image === 'string' || Buffer.isBuffer(image)) pipeline = sharp(image, { autoOrient: true });
  else if (image !== null && typeof image === 'object' && types.isUint8Array(image.data)) {
    if (image.width === width && image.height === height) return image;
    pipeline = sharp(image.data, { raw: { width: image.width, height: image.height, channels: image.channels } });
  } else throw new TypeError('image must be a file path, encoded image bytes, or { data: Uint8Array, width, height, channels }');
  try {
    const { data, info } = await pipeline.removeAlpha().toColourspace('srgb').resize(width, height, { fit: 'fill' }).raw().toBuffer({ resolveWithObject: true });
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height, channels: info.channels as 3 };
  } catch (err) {
    throw new ImageError(`cannot read the overlay's image: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * The 1st–99th percentile of a map (on a strided sample): PGN maps have rare, very high values at
 * class boundaries that would leave the rest of a min–max heatmap dark.
 */
export function robustRange(data: Float32Array): [number, number] {
  const step = Math.max(1, Math.floor(data.length / 20000));
  const sample = Float32Array.from({ length: Math.floor(data.length / step) }, (_, i) => data[i * step]).sort();
  const lo = sample[Math.floor(0.01 * (sample.length - 1))];
  const hi = sample[Math.floor(0.99 * (sample.length - 1))];
  return hi > lo ? [lo, hi] : [lo, lo + 1];
}

/**
 * The overlay as PNG bytes: the image (resized to the score map if needed) blended with the score's
 * heatmap, the segments of `labels` outlined.
 */
export async function overlayPng(image: RawImage | string | Buffer, scores: MapStack, labels: LabelStack | null, options: OverlayOptions = {}): Promise<Buffer> {
  if (scores === null || typeof scores !== 'object' || !Array.isArray(scores.dims) || scores.dims.length !== 3)
    throw new TypeError('scores must be { data: Float32Array, dims: [N, h, w] }');
  const [, height, width] = scores.dims;
  const rgb = await rgbAt(image, width, height);
  const pixels = renderOverlay(rgb, scores, labels, options);
  return sharp(pixels, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

/** Writes the overlay PNG (overlayPng) to a file, atomically. */
export async function writeOverlayPng(file: string, image: RawImage | string | Buffer, scores: MapStack, labels: LabelStack | null, options: OverlayOptions = {}): Promise<void> {
  await writeFileAtomic(file, await overlayPng(image, scores, labels, options));
}
