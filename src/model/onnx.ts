/**
 * Thin layer over the protobufjs ONNX classes (onnx-proto, ONNX 1.10 schema): decoding with
 * honest errors, int64 and attribute access, and reading float tensors whatever their storage.
 */
import fs from 'node:fs';
import path from 'node:path';
import { onnx } from 'onnx-proto';
import { ModelError } from '../common/errors';

export { onnx };

/** int64 fields decode as Long objects (protobufjs finds the `long` package) or as numbers. */
export type Int64 = number | { toNumber(): number };

export function toNumber(v: Int64 | null | undefined): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

/**
 * Decodes an ONNX ModelProto. protobufjs accepts a lot of garbage without complaint (an empty
 * buffer is a valid, empty message), so the presence of a graph with nodes and outputs is the
 * real test that these bytes are an ONNX model.
 */
export function decodeModel(bytes: Uint8Array, source = 'model'): onnx.ModelProto {
  if (bytes.length === 0) throw new ModelError(`${source}: not an ONNX model (empty file)`);
  let model: onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new ModelError(`${source}: not an ONNX model, or truncated (protobuf decode failed: ${reason})`, {
      cause: err,
    });
  }
  const graph = model.graph;
  if (!graph) throw new ModelError(`${source}: not an ONNX model (ONNX model has no graph)`);
  if (!graph.node?.length || !graph.output?.length) {
    throw new ModelError(`${source}: not a usable ONNX model (its graph has no nodes or no outputs)`);
  }
  return model;
}

export function attribute(node: onnx.INodeProto, name: string): onnx.IAttributeProto | undefined {
  return (node.attribute ?? []).find((a) => a.name === name);
}

export function intsAttribute(node: onnx.INodeProto, name: string): number[] | undefined {
  const a = attribute(node, name);
  return a ? (a.ints ?? []).map(toNumber) : undefined;
}

export function intAttribute(node: onnx.INodeProto, name: string): number | undefined {
  const a = attribute(node, name);
  return a ? toNumber(a.i) : undefined;
}

export function tensorDims(t: onnx.ITensorProto): number[] {
  return (t.dims ?? []).map(toNumber);
}

const DT = onnx.TensorProto.DataType;

/** IEEE 754 binary16 bits to a number (exact: every half is representable as a float32). */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** A number to IEEE 754 binary16 bits, rounded to nearest even (overflow to ±Infinity, NaN kept). */
export function floatToHalf(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const frac = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (frac ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // below half the smallest subnormal: ±0
    const m = frac | 0x800000;
    const shift = 14 - e;
    const half = m >>> shift;
    const rest = m & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (half + (rest > mid || (rest === mid && half & 1) ? 1 : 0));
  }
  const half = (e << 10) | (frac >>> 13);
  const rest = frac & 0x1fff;
  // a carry out of the mantissa correctly bumps the exponent (up to Infinity)
  return sign | (half + (rest > 0x1000 || (rest === 0x1000 && half & 1) ? 1 : 0));
}

function bfloat16ToFloat(b: number): number {
  const view = new DataView(new ArrayBuffer(4));
  view.setUint32(0, b << 16, false);
  return view.getFloat32(0, false);
}

/** The key/value pairs of a tensor stored as external data (location, offset, length, checksum). */
function externalEntries(t: onnx.ITensorProto): Map<string, string> {
  return new Map((t.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
}

/**
 * The file an external tensor's `location` names, resolved against the model's folder; a location
 * that leaves the folder (absolute, `..`, or a symbolic link pointing out) is a ModelError: a model
 * file must not make pgn-ood (or ONNX Runtime) read files elsewhere.
 */
export function externalDataFile(t: onnx.ITensorProto, modelDir: string, what: string): string {
  const location = externalEntries(t).get('location') ?? '';
  if (!location) throw new ModelError(`${what} is stored as external data without a location`);
  const file = path.resolve(modelDir, location);
  const inside = (dir: string, f: string) => {
    const rel = path.relative(dir, f);
    return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
  };
  if (path.isAbsolute(location) || !inside(modelDir, file)) {
    throw new ModelError(`${what} has its external data at "${location}", outside the model's folder ${modelDir}: refused (keep the data file beside the model)`);
  }
  let real: string;
  try {
    real = fs.realpathSync(file);
  } catch (err) {
    throw new ModelError(`${what}: its external data file "${location}" cannot be opened (${(err as Error).message})`, { cause: err });
  }
  if (!inside(fs.realpathSync(modelDir), real)) {
    throw new ModelError(`${what} has its external data at "${location}", a link to ${real} outside the model's folder: refused`);
  }
  // a FIFO or a device would block or never end (for ONNX Runtime too, which reads every location)
  if (!fs.statSync(real).isFile()) throw new ModelError(`${what}: its external data "${location}" is not a regular file`);
  return real;
}

/** Every external data tensor of the model (initializers and Constant values) must stay in its folder. */
export function checkExternalData(graph: onnx.IGraphProto, modelDir: string, source: string): void {
  const EXTERNAL = onnx.TensorProto.DataLocation.EXTERNAL;
  for (const t of graph.initializer ?? []) if (t.dataLocation === EXTERNAL) externalDataFile(t, modelDir, `${source}: tensor "${t.name}"`);
  for (const n of graph.node ?? []) {
    for (const a of n.attribute ?? []) {
      if (a.t?.dataLocation === EXTERNAL) externalDataFile(a.t, modelDir, `${source}: tensor of ${n.opType} "${n.name}"`);
    }
  }
}

/** Reads just this tensor's bytes from its external data file (offset, length), not the rest of the file. */
function readExternal(t: onnx.ITensorProto, modelDir: string | undefined, what: string, bytes: number): Uint8Array {
  if (modelDir === undefined) throw new ModelError(`${what} is stored in an external data file: load the model from its path so that the file can be found`);
  const file = externalDataFile(t, modelDir, what);
  const entries = externalEntries(t);
  const offset = Number(entries.get('offset') ?? 0);
  const length = entries.has('length') ? Number(entries.get('length')) : bytes;
  if (!Number.isSafeInteger(offset) || offset < 0 || length !== bytes) {
    throw new ModelError(`${what}: external data offset ${entries.get('offset')} / length ${entries.get('length')} do not describe its ${bytes} bytes`);
  }
  const out = new Uint8Array(bytes);
  const fd = fs.openSync(file, 'r');
  try {
    const read = fs.readSync(fd, out, 0, bytes, offset);
    if (read !== bytes) throw new ModelError(`${what}: its external data file "${file}" ends before offset ${offset} + ${bytes} bytes`);
  } finally {
    fs.closeSync(fd);
  }
  return out;
}

/**
 * Reads a float32 / float16 / bfloat16 / float64 tensor as Float32Array, from raw_data (little-endian),
 * the typed fields, or its external data file (resolved against `modelDir`).
 */
export function tensorToFloat32(t: onnx.ITensorProto, what: string, modelDir?: string): Float32Array {
  const count = tensorDims(t).reduce((a, b) => a * b, 1);
  const width: Record<number, number> = { [DT.FLOAT]: 4, [DT.FLOAT16]: 2, [DT.BFLOAT16]: 2, [DT.DOUBLE]: 8 };
  const type = t.dataType ?? DT.UNDEFINED;
  const w = width[type];
  if (w === undefined) {
    throw new ModelError(`${what} has ONNX data type ${DT[type] ?? type}; a floating-point tensor is needed`);
  }
  const external = t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL;
  const raw = external ? readExternal(t, modelDir, what, count * w) : t.rawData && t.rawData.length > 0 ? t.rawData : null;
  const view = raw ? new DataView(raw.buffer, raw.byteOffset, raw.byteLength) : null;
  const n = view ? view.byteLength / w : typedLength(t, type);
  if (n !== count) {
    throw new ModelError(`${what} holds ${n} values but its shape [${tensorDims(t).join(',')}] needs ${count}`);
  }
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = view ? readRaw(view, type, i) : readTyped(t, type, i);
  return out;
}

function typedLength(t: onnx.ITensorProto, type: number): number {
  if (type === DT.FLOAT) return t.floatData?.length ?? 0;
  if (type === DT.DOUBLE) return t.doubleData?.length ?? 0;
  return t.int32Data?.length ?? 0; // float16 / bfloat16 bits live in int32_data, one per element
}

function readRaw(view: DataView, type: number, i: number): number {
  if (type === DT.FLOAT) return view.getFloat32(i * 4, true);
  if (type === DT.DOUBLE) return view.getFloat64(i * 8, true);
  const bits = view.getUint16(i * 2, true);
  return type === DT.FLOAT16 ? halfToFloat(bits) : bfloat16ToFloat(bits);
}

function readTyped(t: onnx.ITensorProto, type: number, i: number): number {
  if (type === DT.FLOAT) return t.floatData![i]!;
  if (type === DT.DOUBLE) return t.doubleData![i]!;
  const bits = t.int32Data![i]! & 0xffff;
  return type === DT.FLOAT16 ? halfToFloat(bits) : bfloat16ToFloat(bits);
}
