/**
 * Hand-made PNG bytes for the image tests: headers that claim sizes the pixel data never has, and
 * PNGs of any colour type and bit depth holding exactly the sample values given.
 */
import { deflateSync } from 'node:zlib';

function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, body: Buffer): Buffer {
  const typed = Buffer.concat([Buffer.from(type, 'ascii'), body]);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(typed));
  return Buffer.concat([len, typed, crc]);
}

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function ihdr(width: number, height: number, bitDepth: number, colourType: number): Buffer {
  const body = Buffer.alloc(13);
  body.writeUInt32BE(width, 0);
  body.writeUInt32BE(height, 4);
  body.set([bitDepth, colourType, 0, 0, 0], 8); // deflate, filter method 0, no interlace
  return pngChunk('IHDR', body);
}

/** A well-formed PNG (valid CRCs) whose header claims width × height RGB pixels, with a few bytes of data. */
export function pngClaiming(width: number, height: number): Buffer {
  const idat = pngChunk('IDAT', deflateSync(Buffer.alloc(16)));
  return Buffer.concat([SIGNATURE, ihdr(width, height, 8, 2), idat, pngChunk('IEND', Buffer.alloc(0))]);
}

/** Samples per pixel of each PNG colour type: grey, RGB, palette index, grey + alpha, RGBA. */
export const PNG_CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

/**
 * A PNG storing exactly `samples` (row-major, PNG_CHANNELS[colourType] per pixel) at this bit depth,
 * each row with filter type 0; `palette` (RGB triples) for colour type 3.
 */
export function encodePng(o: { width: number; height: number; colourType: number; bitDepth: number; samples: ArrayLike<number>; palette?: number[][] }): Buffer {
  const perRow = o.width * PNG_CHANNELS[o.colourType];
  const rowBytes = Math.ceil((perRow * o.bitDepth) / 8);
  const raw = Buffer.alloc(o.height * (rowBytes + 1));
  for (let y = 0; y < o.height; y++) {
    const row = raw.subarray(y * (rowBytes + 1) + 1);
    for (let i = 0; i < perRow; i++) {
      const v = o.samples[y * perRow + i];
      if (o.bitDepth === 16) row.writeUInt16BE(v, 2 * i);
      else if (o.bitDepth === 8) row[i] = v;
      else {
        const bit = i * o.bitDepth; // most significant bits first
        row[bit >> 3] |= v << (8 - o.bitDepth - (bit & 7));
      }
    }
  }
  const plte = o.palette ? [pngChunk('PLTE', Buffer.from(o.palette.flat()))] : [];
  return Buffer.concat([SIGNATURE, ihdr(o.width, o.height, o.bitDepth, o.colourType), ...plte, pngChunk('IDAT', deflateSync(raw)), pngChunk('IEND', Buffer.alloc(0))]);
}
