/**
 * NumPy .npy files (format versions 1–3, C order): read float16/float32/float64/uint8/int32/uint32
 * (float16 and float64 widened or narrowed to float32), write float32/uint8/int32/uint32.
 */
import { types } from 'node:util';
import { TensorFileError } from './errors';
import { writeFileAtomic } from './files';
import { readRegularFile } from './read-file';

export type NpyArray = Float32Array | Uint8Array | Int32Array | Uint32Array;

export interface Npy<T extends NpyArray = NpyArray> {
  data: T;
  dims: number[];
  /** The dtype stored in the file, e.g. '<f2'. */
  dtype: string;
}

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY

// float16 bits → float32 value, for all 65536 patterns (subnormals, inf and NaN included).
let halfTable: Float32Array | undefined;
function halfToFloat(): Float32Array {
  if (halfTable) return halfTable;
  halfTable = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    halfTable[h] = exp === 0 ? sign * frac * 2 ** -24 : exp === 31 ? (frac ? NaN : sign * Infinity) : sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return halfTable;
}

function parseHeader(buf: Buffer, where: string): { descr: string; fortran: boolean; shape: number[]; offset: number } {
  if (buf.length < 10 || !buf.subarray(0, 6).equals(MAGIC)) throw new TensorFileError(`${where}: not a .npy file (bad magic)`);
  const major = buf[6];
  const wide = major >= 2;
  if (major < 1 || major > 3) throw new TensorFileError(`${where}: unsupported .npy version ${major}`);
  const headerLen = wide ? buf.readUInt32LE(8) : buf.readUInt16LE(8);
  const start = wide ? 12 : 10;
  if (start + headerLen > buf.length) throw new TensorFileError(`${where}: truncated .npy header`);
  const header = buf.toString(major === 3 ? 'utf8' : 'latin1', start, start + headerLen);
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shape === undefined) throw new TensorFileError(`${where}: malformed .npy header ${JSON.stringify(header.trim())}`);
  const dims = shape.split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
  if (dims.some((d) => !Number.isSafeInteger(d) || d < 0)) throw new TensorFileError(`${where}: bad shape (${shape})`);
  return { descr, fortran: fortran === 'True', shape: dims, offset: start + headerLen };
}

const READERS: Record<string, { bytes: number; read: (b: Buffer, n: number) => NpyArray }> = {
  '<f4': { bytes: 4, read: (b, n) => copyAligned(b, n, 4, Float32Array) },
  '<f2': {
    bytes: 2,
    read: (b, n) => {
      const bits = copyAligned(b, n, 2, Uint16Array);
      const table = halfToFloat();
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = table[bits[i]];
      return out;
    },
  },
  '<f8': { bytes: 8, read: (b, n) => Float32Array.from(copyAligned(b, n, 8, Float64Array)) },
  '|u1': { bytes: 1, read: (b, n) => copyAligned(b, n, 1, Uint8Array) },
  '<i4': { bytes: 4, read: (b, n) => copyAligned(b, n, 4, Int32Array) },
  '<u4': { bytes: 4, read: (b, n) => copyAligned(b, n, 4, Uint32Array) },
};

type TypedCtor<T> = { new (buffer: ArrayBufferLike, byteOffset: number, length: number): T; new (length: number): T };

// Typed arrays need an aligned offset: copy the payload into a fresh buffer.
function copyAligned<T extends { buffer: ArrayBufferLike }>(b: Buffer, n: number, bytes: number, Ctor: TypedCtor<T>): T {
  const out = new Ctor(n);
  new Uint8Array(out.buffer).set(b.subarray(0, n * bytes));
  return out;
}

export function parseNpy(buf: Buffer, where = '<buffer>'): Npy {
  const h = parseHeader(buf, where);
  if (h.fortran) throw new TensorFileError(`${where}: Fortran-order arrays are not supported (save with np.ascontiguousarray)`);
  const reader = READERS[h.descr.replace('=', '<')];
  if (!reader) throw new TensorFileError(`${where}: unsupported dtype ${h.descr} (supported: ${Object.keys(READERS).join(', ')})`);
  const count = h.shape.reduce((a, b) => a * b, 1);
  const payload = buf.subarray(h.offset);
  if (payload.length < count * reader.bytes)
    throw new TensorFileError(`${where}: truncated: shape (${h.shape.join(', ')}) needs ${count * reader.bytes} bytes, file has ${payload.length}`);
  return { data: reader.read(payload, count), dims: h.shape, dtype: h.descr };
}

export async function readNpy(file: string): Promise<Npy> {
  let buf: Buffer;
  try {
    buf = await readRegularFile(file);
  } catch (err) {
    throw new TensorFileError(`cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  return parseNpy(buf, file);
}

/** Reads a float tensor (float16/32/64 on disk) as Float32Array. */
export async function readFloatNpy(file: string): Promise<Npy<Float32Array>> {
  const npy = await readNpy(file);
  if (!(types.isFloat32Array(npy.data))) throw new TensorFileError(`${file}: expected a float array, got dtype ${npy.dtype}`);
  return npy as Npy<Float32Array>;
}

function descrOf(data: NpyArray): string {
  if (types.isFloat32Array(data)) return '<f4';
  if (types.isUint8Array(data)) return '|u1';
  if (types.isInt32Array(data)) return '<i4';
  return '<u4';
}

export function encodeNpy(data: NpyArray, dims: number[]): Buffer {
  const count = dims.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new RangeError(`npy: dims [${dims.join(', ')}] call for ${count} elements, data has ${data.length}`);
  const shape = dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
  let header = `{'descr': '${descrOf(data)}', 'fortran_order': False, 'shape': ${shape}, }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n'; // pad so the payload starts 64-aligned
  const head = Buffer.alloc(10);
  MAGIC.copy(head);
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}

export async function writeNpy(file: string, data: NpyArray, dims: number[]): Promise<void> {
  await writeFileAtomic(file, encodeNpy(data, dims));
}
