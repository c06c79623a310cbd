/**
 * NumPy .npy files (format versions 1–3; Fortran-order files are rearranged into C order): read float16/float32/float64/uint8/int32/uint32
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

type HeaderValue = string | boolean | number[];

/**
 * The header's Python dict literal, as numpy reads it (ast.literal_eval): strings in either quotes,
 * True/False, tuples of integers; a key given twice keeps its last value.
 */
function parseHeaderDict(header: string, where: string): Map<string, HeaderValue> {
  let i = 0;
  const fail = (what: string): never => {
    throw new TensorFileError(`${where}: malformed .npy header (${what} at character ${i}): ${JSON.stringify(header.trim())}`);
  };
  const space = () => {
    while (i < header.length && /\s/.test(header[i])) i++;
  };
  const expect = (c: string) => {
    space();
    if (header[i] !== c) fail(`expected "${c}"`);
    i++;
  };
  const string = (): string => {
    space();
    const quote = header[i];
    if (quote !== "'" && quote !== '"') fail('expected a quoted string');
    const end = header.indexOf(quote, i + 1);
    if (end < 0) fail('unterminated string');
    const text = header.slice(i + 1, end);
    i = end + 1;
    return text;
  };
  const value = (): HeaderValue => {
    space();
    if (header.startsWith('True', i)) return (i += 4), true;
    if (header.startsWith('False', i)) return (i += 5), false;
    if (header[i] !== '(') return string();
    i++;
    const dims: number[] = [];
    for (space(); header[i] !== ')'; space()) {
      const digits = /^\d+/.exec(header.slice(i))?.[0] ?? fail('expected a non-negative integer');
      dims.push(Number(digits));
      i += digits.length;
      space();
      if (header[i] === ',') i++;
      else if (header[i] !== ')') fail('expected "," or ")"');
    }
    i++;
    return dims;
  };
  const dict = new Map<string, HeaderValue>();
  expect('{');
  for (space(); header[i] !== '}'; space()) {
    const key = string();
    expect(':');
    dict.set(key, value());
    space();
    if (header[i] === ',') i++;
    else if (header[i] !== '}') fail('expected "," or "}"');
  }
  i++;
  space();
  if (i !== header.length) fail('text after the dict');
  return dict;
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
  const dict = parseHeaderDict(header, where);
  const keys = [...dict.keys()].sort().join(', ');
  if (keys !== 'descr, fortran_order, shape')
    throw new TensorFileError(`${where}: the .npy header must have exactly the keys descr, fortran_order and shape, has ${keys || 'none'}`);
  const descr = dict.get('descr');
  const fortran = dict.get('fortran_order');
  const shape = dict.get('shape');
  if (typeof descr !== 'string') throw new TensorFileError(`${where}: descr must be a dtype string, got ${JSON.stringify(descr)}`);
  if (typeof fortran !== 'boolean') throw new TensorFileError(`${where}: fortran_order must be True or False, got ${JSON.stringify(fortran)}`);
  if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d)))
    throw new TensorFileError(`${where}: bad shape ${JSON.stringify(shape)}`);
  return { descr, fortran, shape, offset: start + headerLen };
}

/** A Fortran-order (first index fastest) array rearranged into C order (last index fastest). */
function fortranToC<T extends NpyArray>(data: T, dims: number[]): T {
  if (dims.filter((d) => d > 1).length < 2) return data; // one varying axis: the same layout
  const out = new (data.constructor as new (n: number) => T)(data.length);
  const rank = dims.length;
  const fStride: number[] = [];
  for (let k = 0, s = 1; k < rank; k++) fStride.push(s), (s *= dims[k]);
  const index = new Array<number>(rank).fill(0);
  let src = 0;
  for (let i = 0; i < out.length; i++) {
    out[i] = data[src];
    for (let k = rank - 1; k >= 0; k--) { // C order: the last index moves first
      index[k]++;
      src += fStride[k];
      if (index[k] < dims[k]) break;
      src -= fStride[k] * dims[k];
      index[k] = 0;
    }
  }
  return out;
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

export function parseNpy(buf: Buffer | Uint8Array, where = '<buffer>'): Npy {
  if (!types.isUint8Array(buf)) throw new TypeError(`parseNpy: buf must be a Buffer or Uint8Array holding a .npy file, got ${describe(buf)}`);
  if (typeof where !== 'string') throw new TypeError(`parseNpy: where must be a string (the name used in errors), got ${describe(where)}`);
  const bytes = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const h = parseHeader(bytes, where);
  const reader = READERS[h.descr.replace('=', '<')];
  if (!reader) throw new TensorFileError(`${where}: unsupported dtype ${h.descr} (supported: ${Object.keys(READERS).join(', ')})`);
  const count = h.shape.reduce((a, b) => a * b, 1);
  const payload = bytes.subarray(h.offset);
  if (payload.length < count * reader.bytes)
    throw new TensorFileError(`${where}: truncated: shape (${h.shape.join(', ')}) needs ${count * reader.bytes} bytes, file has ${payload.length}`);
  const data = reader.read(payload, count);
  return { data: h.fortran ? fortranToC(data, h.shape) : data, dims: h.shape, dtype: h.descr };
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

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return (value as object).constructor?.name ?? 'an object';
  return typeof value;
}

export function encodeNpy(data: NpyArray, dims: number[]): Buffer {
  if (!types.isFloat32Array(data) && !types.isUint8Array(data) && !types.isInt32Array(data) && !types.isUint32Array(data))
    throw new TypeError(`npy: data must be a Float32Array, Uint8Array, Int32Array or Uint32Array, got ${describe(data)}`);
  if (!Array.isArray(dims)) throw new TypeError(`npy: dims must be an array of non-negative integers, got ${describe(dims)}`);
  dims.forEach((d, k) => {
    if (!Number.isSafeInteger(d) || d < 0) throw new RangeError(`npy: dims[${k}] must be a non-negative integer, got ${String(d)}`);
  });
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
