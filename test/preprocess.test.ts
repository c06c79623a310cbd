import sharp from 'sharp';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ImageError } from '../src/common/errors';
import { ModelCardInput } from '../src/model/model-card';
import { decodeImage, DecodedImage, toTensor } from '../src/image/preprocess';
import { pngClaiming } from './helpers/png';
import { expectThrow } from './helpers/errors';
import { native } from '../src/addon';

/** width × height RGB bytes, each pixel distinct. */
function gradient(width: number, height: number): Buffer {
  return Buffer.from(Array.from({ length: width * height * 3 }, (_, i) => (i * 7) % 256));
}

const raw = (data: Buffer, width: number, height: number, channels: 1 | 2 | 3 | 4) =>
  sharp(data, { raw: { width, height, channels } });

async function expectImageError(promise: Promise<unknown>, message: RegExp): Promise<void> {
  const err = await promise.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(ImageError);
  expect((err as Error).message).toMatch(message);
}

describe('decodeImage', () => {
  const W = 6;
  const H = 4;
  const rgb = gradient(W, H);

  test.each([
    ['PNG', () => raw(rgb, W, H, 3).png().toBuffer()],
    ['lossless WebP', () => raw(rgb, W, H, 3).webp({ lossless: true }).toBuffer()],
  ])('%s decodes to the exact RGB bytes', async (_format, encode) => {
    const image = await decodeImage(await encode());
    expect([image.width, image.height, image.channels]).toEqual([W, H, 3]);
    expect(image.data.equals(rgb)).toBe(true);
  });

  test('JPEG decodes to RGB close to the original', async () => {
    const flat = Buffer.alloc(16 * 16 * 3, 0).fill(Buffer.from([200, 100, 50]));
    const image = await decodeImage(await raw(flat, 16, 16, 3).jpeg({ quality: 95 }).toBuffer());
    expect([image.width, image.height]).toEqual([16, 16]);
    for (let i = 0; i < image.data.length; i++) expect(Math.abs(image.data[i]! - flat[i]!)).toBeLessThanOrEqual(3);
  });

  test('greyscale becomes RGB with equal channels', async () => {
    const grey = Buffer.from(Array.from({ length: W * H }, (_, i) => i * 10));
    const image = await decodeImage(await raw(grey, W, H, 1).png().toBuffer());
    expect(image.channels).toBe(3);
    expect(Array.from(image.data)).toEqual(Array.from(grey).flatMap((v) => [v, v, v]));
  });

  test('alpha is dropped, colours kept', async () => {
    const rgba = Buffer.from(Array.from({ length: W * H * 4 }, (_, i) => (i % 4 === 3 ? 128 : rgb[(i >> 2) * 3 + (i % 4)]!)));
    const image = await decodeImage(await raw(rgba, W, H, 4).png().toBuffer());
    expect(image.data.equals(rgb)).toBe(true);
  });

  test('16-bit PNG is reduced to 8 bits', async () => {
    // raw input given as a Uint16Array is read as 16-bit samples; v·257 is v in 16 bits
    const wide = Uint16Array.from(rgb, (v) => v * 257);
    const png16 = await sharp(wide, { raw: { width: W, height: H, channels: 3 } }).toColourspace('rgb16').png().toBuffer();
    expect((await sharp(png16).metadata()).depth).toBe('ushort');
    const image = await decodeImage(png16);
    expect(image.data.equals(rgb)).toBe(true);
  });

  test('EXIF orientation is applied (orientation 6: rotate 90° clockwise)', async () => {
    // 16 wide × 8 high: left half red, right half blue
    const data = Buffer.alloc(16 * 8 * 3);
    for (let p = 0; p < 16 * 8; p++) data.set(p % 16 < 8 ? [255, 0, 0] : [0, 0, 255], p * 3);
    const jpeg = await raw(data, 16, 8, 3).jpeg({ quality: 100 }).withMetadata({ orientation: 6 }).toBuffer();
    const image = await decodeImage(jpeg);
    expect([image.width, image.height]).toEqual([8, 16]);
    const at = (x: number, y: number) => Array.from(image.data.subarray((y * 8 + x) * 3, (y * 8 + x) * 3 + 3));
    expect(at(4, 2)[0]).toBeGreaterThan(200); // the left (red) half is now on top
    expect(at(4, 13)[2]).toBeGreaterThan(200);
  });

  test('a file path is read, and named in errors', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgn-img-'));
    try {
      const file = path.join(dir, 'a.png');
      await raw(rgb, W, H, 3).png().toFile(file);
      expect((await decodeImage(file)).data.equals(rgb)).toBe(true);
      const broken = path.join(dir, 'broken.png');
      await fs.writeFile(broken, (await fs.readFile(file)).subarray(0, 40));
      await expectImageError(decodeImage(broken), new RegExp(`^${broken.replace(/[.\\]/g, '\\$&')}: cannot decode image \\(`));
      await expectImageError(decodeImage(path.join(dir, 'missing.png')), /missing\.png: cannot decode image \(Input file is missing/);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  test('a header claiming 100000x100000 pixels is refused before decoding', async () => {
    const bomb = pngClaiming(100000, 100000);
    expect((await sharp(bomb, { limitInputPixels: false }).metadata()).width).toBe(100000); // a well-formed header
    await expectImageError(decodeImage(bomb), /^<buffer>: image claims 100000x100000 = 10000000000 pixels, more than the limit of 268402689 \(limitInputPixels; --limit-input-pixels in the CLI\); not decoded$/);
  });

  test('the pixel limit is configurable', async () => {
    const png = await raw(gradient(64, 64), 64, 64, 3).png().toBuffer();
    await expectImageError(decodeImage(png, { limitInputPixels: 1000 }), /64x64 = 4096 pixels, more than the limit of 1000/);
    await expect(decodeImage(png, { limitInputPixels: 0 })).rejects.toThrow(RangeError);
  });

  test('empty, truncated, corrupt and unsupported buffers', async () => {
    const jpeg = await raw(gradient(32, 32), 32, 32, 3).jpeg().toBuffer();
    const png = await raw(gradient(32, 32), 32, 32, 3).png().toBuffer();
    await expectImageError(decodeImage(Buffer.alloc(0)), /^<buffer>: cannot decode image \(Input Buffer is empty\)$/);
    await expectImageError(decodeImage(new Uint8Array(0)), /Input Buffer is empty/);
    await expectImageError(decodeImage(jpeg.subarray(0, jpeg.length >> 1)), /^<buffer>: cannot decode image \(.*premature end of JPEG/);
    await expectImageError(decodeImage(png.subarray(0, png.length - 30)), /^<buffer>: cannot decode image \(/);
    await expectImageError(decodeImage(Buffer.from('just some text, not an image')), /unsupported image format/);
  });
});

describe('decodeImage to the model input size', () => {
  const card = (width: number, height: number): { input: ModelCardInput } => ({
    input: { name: 'input', resize: 'stretch', width, height, channelOrder: 'rgb', scale: 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
  });
  const noisy = (w: number, h: number, channels: 1 | 3 | 4) => {
    const data = Buffer.alloc(w * h * channels);
    for (let i = 0; i < data.length; i++) data[i] = ((i % (w * channels)) * 255 / (w * channels) + ((i * 2654435761) >>> 27)) & 255;
    return data;
  };

  // [image width, height, channels, encoder, model width, height, decoded straight to size?]
  test.each([
    [1024, 512, 3, 'jpeg', 512, 256, true],
    [999, 501, 3, 'jpeg', 512, 256, true],
    [1995, 995, 3, 'jpeg', 512, 256, true],
    [320, 180, 3, 'jpeg', 512, 256, true],
    [640, 360, 3, 'png', 512, 256, true],
    [640, 360, 3, 'webp', 512, 256, true],
    [300, 500, 3, 'jpeg', 64, 48, false], // a 4× reduction or more: the JPEG decoder would shrink on load
    [300, 200, 4, 'png', 128, 96, false], // alpha
    [300, 200, 1, 'png', 128, 96, false], // greyscale
  ] as [number, number, 1 | 3 | 4, 'jpeg' | 'png' | 'webp', number, number, boolean][])('%d×%d, %d channels, %s → %d×%d: the same model input (straight: %s)', async (w, h, channels, format, mw, mh, straight) => {
    const pixels = raw(noisy(w, h, channels), w, h, channels);
    const encoded = await (channels === 1 ? pixels.toColourspace('b-w') : pixels)[format]().toBuffer();
    const full = await decodeImage(encoded);
    const sized = await decodeImage(encoded, { size: { width: mw, height: mh } });
    expect(sized.original).toEqual(straight ? { width: w, height: h } : undefined);
    if (straight) expect([sized.width, sized.height, sized.data.length]).toEqual([mw, mh, mw * mh * 3]);
    const a = await toTensor([full], card(mw, mh));
    const b = await toTensor([sized], card(mw, mh));
    expect(b.sizes).toEqual([{ width: w, height: h }]);
    expect(Buffer.from(b.data.buffer).equals(Buffer.from(a.data.buffer))).toBe(true);
  });

  test('a rotated (EXIF) image is decoded in full, then resized', async () => {
    const encoded = await raw(noisy(60, 40, 3), 60, 40, 3).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    const sized = await decodeImage(encoded, { size: { width: 32, height: 32 } });
    expect(sized.original).toBeUndefined();
    expect([sized.width, sized.height]).toEqual([40, 60]);
  });

  test.each([[{ width: 0, height: 4 }], [{ width: 2.5, height: 4 }], [null], [{ width: 4 }]])('size %j → RangeError', async (size) => {
    await expect(decodeImage(Buffer.alloc(4), { size: size as never })).rejects.toThrow(/size must be \{ width, height \} of positive integers/);
  });
});

describe('toTensor', () => {
  const input = (o: Partial<ModelCardInput>): { input: ModelCardInput } => ({
    input: { name: 'input', resize: 'none', channelOrder: 'rgb', scale: 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], ...o },
  });
  const image = (width: number, height: number, data = gradient(width, height)): DecodedImage => ({ data, width, height, channels: 3 });

  test.each(['rgb', 'bgr'] as const)('resize "none", %s: (v / scale − mean) / std in NCHW', async (order) => {
    const im = image(3, 2);
    const card = input({ channelOrder: order, scale: 1, mean: [123.675, 116.28, 103.53], std: [58.395, 57.12, 57.375] });
    const { data, dims, sizes } = await toTensor([im], card);
    expect(dims).toEqual([1, 3, 2, 3]);
    expect(sizes).toEqual([{ width: 3, height: 2 }]);
    for (let c = 0; c < 3; c++) {
      const source = order === 'rgb' ? c : 2 - c;
      for (let y = 0; y < 2; y++)
        for (let x = 0; x < 3; x++) {
          const v = im.data[(y * 3 + x) * 3 + source]!;
          const expected = (v / 1 - card.input.mean[c]) / card.input.std[c];
          expect(data[(c * 2 + y) * 3 + x]).toBeCloseTo(expected, 5);
        }
    }
  });

  test('batches lay images out one after the other', async () => {
    const a = image(2, 2);
    const b = image(2, 2, Buffer.alloc(12, 255));
    const { data, dims } = await toTensor([a, b], input({}));
    expect(dims).toEqual([2, 3, 2, 2]);
    expect(data[12]).toBeCloseTo((1 - 0.485) / 0.229, 5); // image 1, channel 0, pixel 0
    expect(data[0]).toBeCloseTo((a.data[0]! / 255 - 0.485) / 0.229, 5);
  });

  test('resize "stretch" brings every image to the card size and keeps the original sizes', async () => {
    const flat = (w: number, h: number) => image(w, h, Buffer.alloc(w * h * 3).fill(Buffer.from([10, 128, 250])));
    const { data, dims, sizes } = await toTensor([flat(7, 3), flat(20, 30)], input({ resize: 'stretch', width: 8, height: 6, scale: 255, mean: [0, 0, 0], std: [1, 1, 1] }));
    expect(dims).toEqual([2, 3, 6, 8]);
    expect(sizes).toEqual([{ width: 7, height: 3 }, { width: 20, height: 30 }]);
    // a flat image stays flat under bilinear resampling
    for (let n = 0; n < 2; n++)
      [10, 128, 250].forEach((v, c) => {
        const planeValues = data.subarray((n * 3 + c) * 48, (n * 3 + c + 1) * 48);
        for (const x of planeValues) expect(x).toBeCloseTo(v / 255, 5);
      });
  });

  /** The JavaScript loop toTensor ran before the native pass (issue 18), kept here as the reference. */
  function previousToTensor(pixels: Buffer[], card: { input: ModelCardInput }, plane: number): Float32Array {
    const tables = [0, 1, 2].map((c) => ({
      source: card.input.channelOrder === 'rgb' ? c : 2 - c,
      table: Float32Array.from({ length: 256 }, (_, v) => (v / card.input.scale - card.input.mean[c]!) / card.input.std[c]!),
    }));
    const data = new Float32Array(pixels.length * 3 * plane);
    pixels.forEach((px, n) => tables.forEach(({ source, table }, c) => {
      for (let p = 0; p < plane; p++) data[(n * 3 + c) * plane + p] = table[px[p * 3 + source]!]!;
    }));
    return data;
  }

  test.each(['rgb', 'bgr'] as const)('bit for bit what the previous JavaScript loop gave (%s, a batch of 3, 100×70, with and without resize)', async (order) => {
    const noisy = (w: number, h: number, seed: number) => image(w, h, Buffer.from(Array.from({ length: w * h * 3 }, (_, i) => (i * 2654435761 + seed * 97) % 251)));
    const same = input({ channelOrder: order });
    const images = [noisy(100, 70, 1), noisy(100, 70, 2), noisy(100, 70, 3)];
    expect(Buffer.from((await toTensor(images, same)).data.buffer)).toEqual(Buffer.from(previousToTensor(images.map((im) => im.data), same, 7000).buffer));
    const stretch = input({ channelOrder: order, resize: 'stretch', width: 64, height: 48 });
    const sized = [noisy(100, 70, 4), noisy(33, 20, 5)];
    const resized = await Promise.all(sized.map((im) => sharp(im.data, { raw: { width: im.width, height: im.height, channels: 3 } }).resize(64, 48, { fit: 'fill', kernel: 'linear' }).raw().toBuffer()));
    expect(Buffer.from((await toTensor(sized, stretch)).data.buffer)).toEqual(Buffer.from(previousToTensor(resized, stretch, 64 * 48).buffer));
  });

  test('resize "none" refuses images of different sizes, and an empty batch', async () => {
    await expect(toTensor([image(4, 4), image(4, 5)], input({}))).rejects.toThrow(/image 0 is 4x4, image 1 is 4x5/);
    await expect(toTensor([image(4, 4), image(4, 5)], input({}))).rejects.toBeInstanceOf(RangeError);
    await expect(toTensor([], input({}))).rejects.toBeInstanceOf(RangeError);
  });
});

describe('native normalizeImages: bad arguments are TypeError/RangeError naming the argument, never a crash', () => {
  const ok = () => ({ images: [new Uint8Array(12)], plane: 4, tables: new Float32Array(768), source: [0, 1, 2] });
  test.each([
    ['no options', undefined, 'TypeError', /normalizeImages options must be an options object/],
    ['images not an array', { images: new Uint8Array(12) }, 'TypeError', /images must be an array of Uint8Array/],
    ['no images', { images: [] }, 'RangeError', /images must not be empty/],
    ['a Float32Array image', { images: [new Float32Array(12)] }, 'TypeError', /images\[0\] must be a Uint8Array/],
    ['an image of the wrong length', { images: [new Uint8Array(12), new Uint8Array(11)] }, 'RangeError', /images\[1\] has 11 bytes but should have 12/],
    ['plane NaN', { plane: NaN }, 'RangeError', /plane must be an integer/],
    ['plane 0', { plane: 0 }, 'RangeError', /plane must be an integer/],
    ['plane huge', { plane: 2 ** 40 }, 'RangeError', /plane must be an integer/],
    ['tables too short', { tables: new Float32Array(767) }, 'RangeError', /tables has 767 elements/],
    ['tables of the wrong type', { tables: new Float64Array(768) }, 'TypeError', /tables must be a Float32Array/],
    ['source of 2', { source: [0, 1] }, 'TypeError', /source must be an array of 3/],
    ['source out of range', { source: [0, 3, 1] }, 'RangeError', /source\[1\] must be an integer in \[0, 2\]/],
    ['source NaN', { source: [0, 1, NaN] }, 'RangeError', /source\[2\] must be an integer/],
    ['threads negative', { threads: -1 }, 'RangeError', /threads must be an integer/],
  ])('%s', async (_name, change, type, message) => {
    const args = change === undefined ? undefined : { ...ok(), ...change };
    expectThrow(() => native.normalizeImages(args as never), type, message);
  });

  test('a detached image buffer is refused, not read', () => {
    const pixels = new Uint8Array(12);
    structuredClone(pixels.buffer, { transfer: [pixels.buffer] });
    expectThrow(() => native.normalizeImages({ ...ok(), images: [pixels] }), 'TypeError', /images\[0\] is empty or its buffer was detached/);
  });

  test('NaN and infinite table entries pass through as values', async () => {
    const tables = new Float32Array(768);
    tables[0] = NaN;
    tables[256 + 1] = Infinity;
    const out = await native.normalizeImages({ images: [Uint8Array.from([0, 1, 2, 0, 1, 2])], plane: 2, tables, source: [0, 1, 2] });
    expect(Array.from(out)).toEqual([NaN, NaN, Infinity, Infinity, 0, 0]);
  });
});
