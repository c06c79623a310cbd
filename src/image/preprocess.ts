/**
 * Images in, model input out: decode with sharp (EXIF orientation applied, greyscale and 16-bit
 * reduced to 8-bit RGB, alpha dropped), then resize and normalize into an NCHW float batch as the
 * model card says.
 */
import fs from 'node:fs';
import { types } from 'node:util';
import sharp, { type Metadata } from 'sharp';
import { ImageError } from '../common/errors';
import { notRegular } from '../common/read-file';
import { native } from '../addon';
import type { ModelCardInput } from '../model/model-card';

/** sharp's own default limit (0x3FFF × 0x3FFF pixels). */
export const DEFAULT_PIXEL_LIMIT = 268402689;

export interface DecodedImage {
  /** 8-bit RGB, interleaved, row-major: width × height × 3 bytes. */
  data: Buffer;
  width: number;
  height: number;
  channels: 3;
  /** The image's own size, when `data` was decoded straight to DecodeOptions.size. */
  original?: { width: number; height: number };
}

export interface DecodeOptions {
  /** Refuse images with more pixels than this, before decoding them. */
  limitInputPixels?: number;
  /**
   * The model input size (a card with resize "stretch"): where the bytes come out the same, the
   * image is decoded and resized in one libvips pipeline (no full-size copy); see resizesOnLoad.
   */
  size?: { width: number; height: number };
}

export interface ImageBatch {
  /** NCHW float32 [N,3,H,W], normalized. */
  data: Float32Array;
  dims: [number, 3, number, number];
  /** Each image's size before resizing, to bring results back to it. */
  sizes: { width: number; height: number }[];
}

/** sharp repeats libvips' messages line by line; keep each once. */
function reason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return [...new Set(message.split('\n').map((l) => l.trim()).filter(Boolean))].join('; ');
}

/** libvips calls an empty file or a folder an "unsupported image format": say what it is instead. */
async function checkImageFile(file: string): Promise<void> {
  const stat = await fs.promises.stat(file).catch(() => null); // a missing file: sharp's message names it
  if (stat?.isDirectory()) throw new ImageError(`${file}: is a directory, not an image file`);
  const problem = stat && notRegular(stat); // a device is read without end, a FIFO blocks
  if (problem) throw new ImageError(`${file}: ${problem}`);
  if (stat?.isFile() && stat.size === 0) throw new ImageError(`${file}: empty file (0 bytes), not an image`);
}

export async function decodeImage(input: string | Buffer | Uint8Array, opts: DecodeOptions = {}): Promise<DecodedImage> {
  const label = typeof input === 'string' ? input : '<buffer>';
  const limit = opts.limitInputPixels ?? DEFAULT_PIXEL_LIMIT;
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`limitInputPixels must be a positive integer, got ${limit}`);
  const size = opts.size;
  if (size !== undefined && (size === null || typeof size !== 'object' || ![size.width, size.height].every((v) => Number.isInteger(v) && v >= 1)))
    throw new RangeError(`size must be { width, height } of positive integers, got ${JSON.stringify(size)}`);
  if (typeof input !== 'string' && !types.isUint8Array(input))
    throw new TypeError(`an image must be a file path, a Buffer or a Uint8Array of encoded bytes, got ${input === null ? 'null' : typeof input}`);
  const source = typeof input === 'string' || Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  if (typeof input === 'string') await checkImageFile(input);
  try {
    // The header alone tells the size: refuse decompression bombs before any pixel is allocated.
    // sharp would refuse them too (limitInputPixels, below), but without saying the size claimed.
    const metadata = await sharp(source, { limitInputPixels: false }).metadata();
    const { width, height } = metadata;
    if (!width || !height) throw new ImageError(`${label}: image has no dimensions`);
    if (width * height > limit) {
      throw new ImageError(`${label}: image claims ${width}x${height} = ${width * height} pixels, more than the limit of ${limit} (limitInputPixels; --limit-input-pixels in the CLI); not decoded`);
    }
    const target = size && resizesOnLoad(metadata, size) ? size : undefined;
    let pipeline = sharp(source, { limitInputPixels: limit, autoOrient: true })
      .removeAlpha()
      .toColourspace('srgb'); // greyscale → 3 channels, 16-bit → 8-bit
    if (target) pipeline = pipeline.resize(target.width, target.height, { ...RESIZE, fastShrinkOnLoad: false });
    const { data, info } = await pipeline.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    return { data, width: info.width, height: info.height, channels: 3, ...(target ? { original: { width, height } } : {}) };
  } catch (err) {
    if (err instanceof ImageError) throw err;
    throw new ImageError(`${label}: cannot decode image (${reason(err)})`, { cause: err });
  }
}

/**
 * Whether decoding straight to `size` gives the bytes of decoding and then resizing (toTensor):
 * for 8-bit RGB without alpha, colour profile or rotation, at most 3× larger than `size` each way.
 * Then libvips decodes and resizes in one pass, the same arithmetic; from a 4× reduction on, it would
 * let the JPEG decoder shrink on load (different bytes), and the other cases convert at another
 * point of its pipeline. Checked byte for byte in test/preprocess.test.ts.
 */
export function resizesOnLoad(m: Metadata, size: { width: number; height: number }): boolean {
  return m.depth === 'uchar' && m.channels === 3 && !m.hasAlpha && !m.hasProfile && m.space === 'srgb' && (m.orientation ?? 1) === 1
    && m.width < 4 * size.width && m.height < 4 * size.height;
}

/** sharp's linear kernel, which also averages when shrinking. */
const RESIZE = { fit: 'fill', kernel: 'linear' } as const;

/**
 * Builds the model's input batch. With resize "stretch" every image is resized (bilinear, sharp's
 * linear kernel, which also averages when shrinking) to the card's height × width; with "none"
 * the images are used as they are and must all have the same size (else RangeError).
 */
export async function toTensor(images: DecodedImage[], card: { input: ModelCardInput }): Promise<ImageBatch> {
  if (images.length === 0) throw new RangeError('toTensor needs at least one image');
  for (const [i, im] of images.entries()) {
    if (im.data.length !== im.width * im.height * 3) {
      throw new RangeError(`image ${i}: ${im.data.length} bytes for ${im.width}x${im.height} RGB`);
    }
  }
  const { width, height } = targetSize(images, card.input);
  const pixels = await Promise.all(images.map((im) => (im.width === width && im.height === height ? im.data : resize(im, width, height))));
  // The per-pixel normalize and HWC → NCHW run natively, off the JavaScript thread.
  const data = await native.normalizeImages({ images: pixels, plane: width * height, ...channelTables(card.input) });
  return { data, dims: [images.length, 3, height, width], sizes: images.map(imageSize) };
}

/** An image's own size, also when it was decoded straight to the model input size. */
export function imageSize(image: DecodedImage): { width: number; height: number } {
  return image.original ?? { width: image.width, height: image.height };
}

function targetSize(images: DecodedImage[], input: ModelCardInput): { width: number; height: number } {
  if (input.resize === 'stretch') {
    if (!input.width || !input.height) throw new RangeError('resize "stretch" needs input.height and input.width');
    return { width: input.width, height: input.height };
  }
  const { width, height } = images[0]!;
  const other = images.findIndex((im) => im.width !== width || im.height !== height);
  if (other >= 0) {
    const o = images[other]!;
    throw new RangeError(`with resize "none" the images of a batch must share a size: image 0 is ${width}x${height}, image ${other} is ${o.width}x${o.height}`);
  }
  return { width, height };
}

/** Per model channel: which RGB byte feeds it, and (v / scale − mean) / std for all 256 values. */
function channelTables(input: ModelCardInput): { source: number[]; tables: Float32Array } {
  return {
    source: [0, 1, 2].map((c) => (input.channelOrder === 'rgb' ? c : 2 - c)),
    tables: Float32Array.from({ length: 3 * 256 }, (_, i) => {
      const [c, v] = [Math.floor(i / 256), i % 256];
      return (v / input.scale - input.mean[c]!) / input.std[c]!;
    }),
  };
}

function resize(im: DecodedImage, width: number, height: number): Promise<Buffer> {
  return sharp(im.data, { raw: { width: im.width, height: im.height, channels: 3 } })
    .resize(width, height, RESIZE)
    .raw()
    .toBuffer();
}
