/**
 * Builds small ONNX models in TypeScript for the tests, with seeded random float weights so that
 * two builds with the same options hold the same weights (used to check surgery independently).
 */
import { onnx } from 'onnx-proto';

export type Dim = number | string;
export type AttrValue = number | number[] | string | { f: number } | onnx.ITensorProto;

const DT = onnx.TensorProto.DataType;

/** mulberry32: a tiny deterministic PRNG, uniform in [-1, 1). */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  };
}

export function valueInfo(name: string, shape?: Dim[], elemType: number = DT.FLOAT): onnx.IValueInfoProto {
  const dim = shape?.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d }));
  return { name, type: { tensorType: { elemType, shape: dim ? { dim } : null } } };
}

function floatToHalf(x: number): number {
  const f32 = new Float32Array([x]);
  const bits = new Uint32Array(f32.buffer)[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exp = ((bits >>> 23) & 0xff) - 127 + 15;
  const frac = bits & 0x7fffff;
  if (exp <= 0) return sign | Math.round((frac | 0x800000) / 2 ** (14 - exp)); // subnormal
  return sign | (exp << 10) | Math.round(frac / 8192); // no overflow for the small weights used here
}

/** Float tensor stored as raw_data (default, what exporters write), float_data, or float16 raw_data. */
export function floatTensor(
  name: string,
  dims: number[],
  values: ArrayLike<number>,
  storage: 'raw' | 'typed' | 'fp16' = 'raw',
): onnx.ITensorProto {
  if (storage === 'typed') return { name, dims, dataType: DT.FLOAT, floatData: Array.from(values) };
  if (storage === 'fp16') {
    const halves = Uint16Array.from(Array.from(values, floatToHalf));
    return { name, dims, dataType: DT.FLOAT16, rawData: new Uint8Array(halves.buffer) };
  }
  return { name, dims, dataType: DT.FLOAT, rawData: new Uint8Array(Float32Array.from(values).buffer) };
}

export function int64Tensor(name: string, values: number[]): onnx.ITensorProto {
  return { name, dims: [values.length], dataType: DT.INT64, int64Data: values };
}

function toAttribute(name: string, v: AttrValue): onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'number') return { name, type: T.INT, i: v };
  if (typeof v === 'string') return { name, type: T.STRING, s: Buffer.from(v) };
  if (Array.isArray(v)) return { name, type: T.INTS, ints: v };
  if ('f' in v && typeof v.f === 'number') return { name, type: T.FLOAT, f: v.f };
  return { name, type: T.TENSOR, t: v as onnx.ITensorProto };
}

export class GraphBuilder {
  private readonly nodes: onnx.INodeProto[] = [];
  private readonly initializers: onnx.ITensorProto[] = [];
  private readonly inputs: onnx.IValueInfoProto[] = [];
  private readonly outputs: onnx.IValueInfoProto[] = [];
  private readonly valueInfos: onnx.IValueInfoProto[] = [];
  private readonly rand: () => number;

  constructor(seed = 1) {
    this.rand = random(seed);
  }

  input(name: string, shape: Dim[], elemType: number = DT.FLOAT): this {
    this.inputs.push(valueInfo(name, shape, elemType));
    return this;
  }

  output(name: string, shape?: Dim[], elemType: number = DT.FLOAT): this {
    this.outputs.push(valueInfo(name, shape, elemType));
    return this;
  }

  valueInfo(name: string, shape: Dim[]): this {
    this.valueInfos.push(valueInfo(name, shape));
    return this;
  }

  initializer(t: onnx.ITensorProto): this {
    this.initializers.push(t);
    return this;
  }

  /** Random values of the given size (scaled to keep activations moderate). */
  randomValues(dims: number[], scale = 0.5): Float32Array {
    const n = dims.reduce((a, b) => a * b, 1);
    return Float32Array.from({ length: n }, () => this.rand() * scale);
  }

  /** Adds a random float initializer and returns its values. */
  randomInit(name: string, dims: number[], storage: 'raw' | 'typed' | 'fp16' = 'raw'): Float32Array {
    const values = this.randomValues(dims);
    this.initializer(floatTensor(name, dims, values, storage));
    return values;
  }

  node(opType: string, inputs: string[], outputs: string[], attrs: Record<string, AttrValue> = {}, name = ''): this {
    const attribute = Object.entries(attrs).map(([k, v]) => toAttribute(k, v));
    this.nodes.push({ opType, input: inputs, output: outputs, attribute, name });
    return this;
  }

  build(opset = 13): Uint8Array {
    const graph: onnx.IGraphProto = {
      name: 'test',
      node: this.nodes,
      initializer: this.initializers,
      input: this.inputs,
      output: this.outputs,
      valueInfo: this.valueInfos,
    };
    return onnx.ModelProto.encode({
      irVersion: 8,
      producerName: 'pgn-ood tests',
      opsetImport: [{ domain: '', version: opset }],
      graph,
    }).finish();
  }
}

export interface SegModelOptions {
  /** What follows the final conv before the logits output. */
  head?: 'resize-scales' | 'resize-sizes' | 'none' | 'transpose' | 'cast' | 'reshape-identity';
  /** Symbolic N, H, W in the input (else 1x3x16x16). */
  dynamic?: boolean;
  bias?: boolean;
  /** How the final conv's weight and bias reach it. */
  weightVia?: 'initializer' | 'constant' | 'identity';
  /** Storage of the final conv's weight; 'fp16' also runs that conv in half precision. */
  weightStorage?: 'raw' | 'typed' | 'fp16';
  /** Dropout + Identity between the backbone and the final conv (mmsegmentation style). */
  dropout?: boolean;
  finalConvName?: string;
  /** Graph outputs (default ['logits']); e.g. ['feat'] for a reference model that outputs φ directly. */
  outputs?: string[];
  /** Record shapes of intermediate tensors in value_info, as some exporters do. */
  withValueInfo?: boolean;
  /** The model's opset (default 13). */
  opset?: number;
  classes?: number;
  features?: number;
}

/**
 * A segmentation network in miniature: Conv3x3 stride 2 → Relu [→ Dropout → Identity] → "feat" →
 * final Conv1x1 → "conv_out" → head → "logits" (with fp16 weights: "feat" → Cast → "feat_h" →
 * Conv1x1 → "conv_out_h" → Cast → "conv_out"). Feature resolution is half the input's.
 */
export function buildSegModel(o: SegModelOptions = {}): { bytes: Uint8Array; kernel: Float32Array; bias: Float32Array | null } {
  const C = o.classes ?? 5;
  const F = o.features ?? 8;
  const g = new GraphBuilder(42);
  const shape: Dim[] = o.dynamic ? ['N', 3, 'H', 'W'] : [1, 3, 16, 16];
  g.input('input', shape);
  g.randomInit('backbone.w', [F, 3, 3, 3]);
  g.randomInit('backbone.b', [F]);
  g.node('Conv', ['input', 'backbone.w', 'backbone.b'], ['h'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [2, 2] }, 'backbone.conv');
  g.node('Relu', ['h'], [o.dropout ? 'h_relu' : 'feat'], {}, 'backbone.relu');
  if (o.dropout) {
    g.node('Dropout', ['h_relu'], ['h_drop'], {}, 'decode_head.dropout');
    g.node('Identity', ['h_drop'], ['feat'], {}, 'decode_head.identity');
  }
  const { kernel, bias, inputs } = finalConvWeights(g, C, F, o);
  const head = o.head ?? 'resize-scales';
  // Without a head the conv writes the logits output itself (mmsegmentation's conv_seg).
  const convOut = head === 'none' ? 'logits' : 'conv_out';
  // float16 weights: the final conv runs in half precision between two Casts
  const half = o.weightStorage === 'fp16';
  if (half) g.node('Cast', ['feat'], ['feat_h'], { to: DT.FLOAT16 }, 'to_half');
  g.node('Conv', [half ? 'feat_h' : 'feat', ...inputs], [half ? 'conv_out_h' : convOut], { kernel_shape: [1, 1] }, o.finalConvName ?? 'classifier.4');
  if (half) g.node('Cast', ['conv_out_h'], [convOut], { to: DT.FLOAT }, 'to_float');
  addHead(g, head, C, o.opset ?? 13);
  if (o.withValueInfo) g.valueInfo('feat', ['N', F, 'h', 'w']).valueInfo(convOut, ['N', C, 'h', 'w']);
  const outShape = o.dynamic || head !== 'resize-scales' ? undefined : [1, C, 16, 16];
  for (const name of o.outputs ?? ['logits']) g.output(name, name === 'logits' ? outShape : undefined);
  return { bytes: g.build(o.opset), kernel, bias };
}

function finalConvWeights(g: GraphBuilder, C: number, F: number, o: SegModelOptions) {
  const kernel = g.randomValues([C, F, 1, 1]);
  const bias = o.bias === false ? null : g.randomValues([C]);
  const storage = o.weightStorage ?? 'raw';
  const w = floatTensor('head.w', [C, F, 1, 1], kernel, storage);
  const b = bias && floatTensor('head.b', [C], bias, storage);
  if (o.weightVia === 'constant') {
    g.node('Constant', [], ['head.w'], { value: w }, 'const_w');
    if (b) g.node('Constant', [], ['head.b'], { value: b }, 'const_b');
  } else {
    g.initializer(w);
    if (b) g.initializer(b);
  }
  const inputs = b ? ['head.w', 'head.b'] : ['head.w'];
  if (o.weightVia === 'identity') {
    inputs.forEach((name) => g.node('Identity', [name], [`${name}.id`]));
    return { kernel, bias, inputs: inputs.map((n) => `${n}.id`) };
  }
  return { kernel, bias, inputs };
}

function addHead(g: GraphBuilder, head: NonNullable<SegModelOptions['head']>, C: number, opset: number): void {
  // Resize's roi became optional in opset 13; before, exporters pass an empty tensor
  const roi = opset < 13 ? 'roi' : '';
  if (opset < 13 && head.startsWith('resize')) g.initializer(floatTensor('roi', [0], []));
  switch (head) {
    case 'resize-scales':
      g.initializer(floatTensor('scales', [4], [1, 1, 2, 2]));
      g.node('Resize', ['conv_out', roi, 'scales'], ['logits'], { mode: 'linear' }, 'resize_1');
      return;
    case 'resize-sizes':
      g.initializer(int64Tensor('sizes', [1, C, 16, 16]));
      g.node('Resize', ['conv_out', roi, opset < 13 ? 'scales_empty' : '', 'sizes'], ['logits'], { mode: 'linear' }, 'resize_1');
      if (opset < 13) g.initializer(floatTensor('scales_empty', [0], []));
      return;
    case 'transpose':
      g.node('Transpose', ['conv_out'], ['logits'], { perm: [0, 2, 3, 1] }, 'to_nhwc');
      return;
    case 'cast':
      g.node('Cast', ['conv_out'], ['logits'], { to: DT.FLOAT }, 'cast');
      return;
    case 'reshape-identity':
      g.initializer(int64Tensor('flat', [0, C, -1]));
      g.node('Reshape', ['conv_out', 'flat'], ['flat_out'], {}, 'flatten_hw');
      g.node('Identity', ['flat_out'], ['logits'], {}, 'out_id');
      return;
    case 'none':
      return;
  }
}

/** z = K·φ + β at every pixel of φ [N,F,h,w], K [C,F] row-major: the reference for the exposed conv output. */
export function conv1x1(kernel: Float32Array, bias: Float32Array | null, phi: Float32Array, dims: readonly number[]): Float32Array {
  const [N, F, h, w] = dims as [number, number, number, number];
  const C = kernel.length / F;
  const hw = h * w;
  const z = new Float32Array(N * C * hw);
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++)
      for (let p = 0; p < hw; p++) {
        let s = bias ? bias[c]! : 0;
        for (let f = 0; f < F; f++) s += kernel[c * F + f]! * phi[(n * F + f) * hw + p]!;
        z[(n * C + c) * hw + p] = s;
      }
  return z;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`lengths differ: ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
