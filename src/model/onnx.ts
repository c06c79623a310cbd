/**
 * Thin layer over the protobufjs ONNX classes (onnx-proto, ONNX 1.10 schema): decoding with
 * honest errors, int64 and attribute access, and reading float tensors whatever their storage.
 */
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

function bfloat16ToFloat(b: number): number {
  const view = new DataView(new ArrayBuffer(4));
  view.setUint32(0, b << 16, false);
  return view.getFloat32(0, false);
}

/** Reads a float32 / float16 / bfloat16 / float64 tensor as Float32Array, from raw_data (little-endian) or the typed fields. */
export function tensorToFloat32(t: onnx.ITensorProto, what: string): Float32Array {
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    throw new ModelError(`${what} is stored in an external data file, which pgn-ood cannot read: save the model with its weights embedded`);
  }
  const count = tensorDims(t).reduce((a, b) => a * b, 1);
  const raw = t.rawData && t.rawData.length > 0 ? t.rawData : null;
  const view = raw ? new DataView(raw.buffer, raw.byteOffset, raw.byteLength) : null;
  const width: Record<number, number> = { [DT.FLOAT]: 4, [DT.FLOAT16]: 2, [DT.BFLOAT16]: 2, [DT.DOUBLE]: 8 };
  const type = t.dataType ?? DT.UNDEFINED;
  const w = width[type];
  if (w === undefined) {
    throw new ModelError(`${what} has ONNX data type ${DT[type] ?? type}; a floating-point tensor is needed`);
  }
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
