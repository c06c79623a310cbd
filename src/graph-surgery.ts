/**
 * ONNX graph surgery: find the final 1x1 convolution z = K·φ + β that produces a segmentation
 * model's logits, read K and β, and expose φ (the conv's input) and z at feature resolution
 * (the conv's output, before any upsampling) as extra graph outputs.
 */
import { ModelError } from './errors';
import {
  attribute,
  decodeModel,
  intAttribute,
  intsAttribute,
  onnx,
  tensorDims,
  tensorToFloat32,
  toNumber,
} from './onnx';

/** A tensor dimension: a size, a symbolic name (dim_param), or -1 when the model says nothing. */
export type Dim = number | string;

export interface AnalyzeOptions {
  /** Graph output holding the logits; needed only when several outputs end in a 1x1 conv. */
  logitsOutput?: string;
  /** Graph output the model already provides with the penultimate features (no surgery then). */
  featuresOutput?: string;
  /** Name of the model in error messages (e.g. its path). */
  source?: string;
}

export interface FinalConv {
  name: string;
  /** Index of the node in graph.node. */
  index: number;
  /** The conv's data input: the penultimate features φ [N,F,h,w]. */
  input: string;
  /** The conv's output: the logits at feature resolution [N,C,h,w]. */
  output: string;
  weight: string;
  bias: string | null;
}

export interface ModelAnalysis {
  input: { name: string; shape: Dim[]; elemType: number };
  /** All graph outputs, in order. */
  outputs: string[];
  /** The graph output the logits come out of. */
  logitsOutput: string;
  conv: FinalConv;
  /** Op types between the conv and the logits output, conv side first (e.g. ['Resize']). */
  chain: string[];
  numClasses: number;
  featureChannels: number;
  /** K as [C,F] row-major. */
  kernel: Float32Array;
  bias: Float32Array | null;
  /** ONNX element type of the conv's tensors (float, or float16 in half-precision models). */
  elemType: number;
  /** Tensor to fetch for φ: the conv's input, or the model's own features output (opts.featuresOutput). */
  featuresTensor: string;
  featuresAlreadyOutput: boolean;
  convOutputIsOutput: boolean;
}

/** Ops that move or resample the logits without changing what they are; walked back through. */
const PASS_THROUGH = new Set(['Resize', 'Upsample', 'Transpose', 'Reshape', 'Identity', 'Cast']);

const NEED = 'pgn-ood needs a 1x1 Conv with group 1 producing the logits';

const HINTS: Record<string, string> = {
  Softmax: 'the model outputs probabilities, but pgn-ood needs the logits: re-export it without the final Softmax',
  LogSoftmax: 'the model outputs log-probabilities, but pgn-ood needs the logits: re-export it without the final LogSoftmax',
  ArgMax: 'the model outputs the predicted class (argmax), not the logits: re-export it so that it outputs the logits',
};

interface ConstTensor {
  tensor: onnx.ITensorProto;
  /** Target type of the Cast closest to the consumer, when the constant goes through one. */
  castTo?: number;
}

type ConvCheck = { ok: true; weight: ConstTensor } | { ok: false; detail: string };

type Trace = { ok: true; conv: number; weight: ConstTensor; via: number[] } | { ok: false; reason: string };

/** Index of one graph: who produces each tensor, and the constants. */
class ModelGraph {
  readonly nodes: onnx.INodeProto[];
  readonly outputs: string[];
  private readonly producers = new Map<string, number>();
  private readonly initializers = new Map<string, onnx.ITensorProto>();

  constructor(
    readonly graph: onnx.IGraphProto,
    readonly source: string,
  ) {
    this.nodes = graph.node ?? [];
    this.outputs = (graph.output ?? []).map((o) => o.name ?? '');
    this.nodes.forEach((n, i) => (n.output ?? []).forEach((t) => t && this.producers.set(t, i)));
    for (const t of graph.initializer ?? []) this.initializers.set(t.name ?? '', t);
  }

  error(message: string): ModelError {
    return new ModelError(`${this.source}: ${message}`);
  }

  /** `Resize "resize_1"`, or `Resize #3 (unnamed)`; with `node`: `Resize node "resize_1"`. */
  label(index: number, node = false): string {
    const n = this.nodes[index]!;
    const op = node ? `${n.opType} node` : n.opType;
    return n.name ? `${op} "${n.name}"` : `${op} #${index} (unnamed)`;
  }

  /** The image input: graph inputs that are not initializers (old exporters list weights as inputs too). */
  input(): onnx.IValueInfoProto {
    const inputs = (this.graph.input ?? []).filter((i) => !this.initializers.has(i.name ?? ''));
    if (inputs.length !== 1) {
      const names = inputs.map((i) => `"${i.name}"`).join(', ') || 'none';
      throw this.error(`the model must have exactly one input (the image batch); it has ${inputs.length}: ${names}`);
    }
    return inputs[0]!;
  }

  /** A constant tensor by name: an initializer or a Constant node, possibly behind Identity or Cast. */
  constant(name: string, depth = 0): ConstTensor | null {
    const init = this.initializers.get(name);
    if (init) return { tensor: init };
    const index = this.producers.get(name);
    if (index === undefined || depth > this.nodes.length) return null;
    const node = this.nodes[index]!;
    if (node.opType === 'Constant') {
      const t = attribute(node, 'value')?.t;
      return t ? { tensor: t } : null;
    }
    if (node.opType !== 'Identity' && node.opType !== 'Cast') return null;
    const inner = this.constant(node.input?.[0] ?? '', depth + 1);
    if (!inner || node.opType === 'Identity') return inner;
    return { tensor: inner.tensor, castTo: intAttribute(node, 'to') };
  }

  /** Walks back from a graph output to the node computing the logits; says why when it is unusable. */
  trace(output: string): Trace {
    const via: number[] = [];
    let tensor = output;
    for (;;) {
      const index = this.producers.get(tensor);
      const reached = via.length ? ` (reached via ${via.map((i) => this.label(i)).join(' ← ')})` : '';
      if (index === undefined) {
        const what = this.initializers.has(tensor) ? 'a constant' : 'not computed by any node';
        return { ok: false, reason: `output "${output}" traces back to tensor "${tensor}", which is ${what}${reached}: ${NEED}` };
      }
      const node = this.nodes[index]!;
      if (PASS_THROUGH.has(node.opType ?? '') && !via.includes(index)) {
        via.push(index);
        tensor = node.input?.[0] ?? '';
        continue;
      }
      const check = this.checkConv(node);
      if (check.ok) return { ok: true, conv: index, weight: check.weight, via: via.reverse() };
      const hint = HINTS[node.opType ?? ''] ?? NEED;
      return { ok: false, reason: `final layer of output "${output}" is ${this.label(index, true)}${check.detail}${reached}: ${hint}` };
    }
  }

  /** Is this node a usable final conv: 1x1 kernel, group 1, stride 1, no padding, constant weight? */
  private checkConv(node: onnx.INodeProto): ConvCheck {
    if (node.opType !== 'Conv') return { ok: false, detail: '' };
    const weightName = node.input?.[1] ?? '';
    const weight = this.constant(weightName);
    if (!weight) return { ok: false, detail: ` whose weight "${weightName}" is not a constant` };
    const dims = tensorDims(weight.tensor);
    if (dims.length !== 4) return { ok: false, detail: ` with a ${dims.length - 2}-D kernel (a 2-D 1x1 conv is needed)` };
    const kernel = intsAttribute(node, 'kernel_shape') ?? dims.slice(2);
    if (kernel.some((k) => k !== 1) || dims[2] !== 1 || dims[3] !== 1) {
      return { ok: false, detail: ` with a ${dims[2]}x${dims[3]} kernel` };
    }
    const group = intAttribute(node, 'group') ?? 1;
    if (group !== 1) return { ok: false, detail: ` with group ${group}` };
    const strides = intsAttribute(node, 'strides') ?? [];
    if (strides.some((s) => s !== 1)) return { ok: false, detail: ` with strides [${strides.join(',')}]` };
    // SAME_* auto_pad adds no padding to a 1x1 kernel with stride 1, so only explicit pads matter.
    const pads = intsAttribute(node, 'pads') ?? [];
    if (pads.some((p) => p !== 0)) return { ok: false, detail: ` with pads [${pads.join(',')}]` };
    return { ok: true, weight };
  }
}

function dimsOf(vi: onnx.IValueInfoProto): Dim[] {
  return (vi.type?.tensorType?.shape?.dim ?? []).map((d) => {
    if (d.dimParam) return d.dimParam;
    return d.dimValue !== null && d.dimValue !== undefined ? toNumber(d.dimValue) : -1;
  });
}

/** The logits output: the named one, the only one, or the first whose chain ends in a usable conv. */
function pickLogitsOutput(g: ModelGraph, wanted: string | undefined): { output: string; trace: Trace & { ok: true } } {
  const list = g.outputs.map((o) => `"${o}"`).join(', ');
  if (wanted !== undefined && !g.outputs.includes(wanted)) {
    throw g.error(`the model has no output "${wanted}"; its outputs are ${list}`);
  }
  const candidates = wanted !== undefined ? [wanted] : g.outputs;
  const reasons: string[] = [];
  for (const output of candidates) {
    const trace = g.trace(output);
    if (trace.ok) return { output, trace };
    reasons.push(trace.reason);
  }
  if (candidates.length === 1) throw g.error(reasons[0]!);
  throw g.error(`none of the outputs ${list} is produced by a usable final conv (${reasons.join('; ')})`);
}

/** Reads the model and describes its final 1x1 conv. Throws ModelError when it has none usable. */
export function analyzeModel(bytes: Uint8Array, opts: AnalyzeOptions = {}): ModelAnalysis {
  const source = opts.source ?? 'model';
  const g = new ModelGraph(decodeModel(bytes, source).graph!, source);
  const input = g.input();
  const { output, trace } = pickLogitsOutput(g, opts.logitsOutput);
  const node = g.nodes[trace.conv]!;
  const weightName = node.input![1]!;
  const biasName = node.input?.[2] || null;
  const [numClasses, featureChannels] = tensorDims(trace.weight.tensor) as [number, number];
  const kernel = tensorToFloat32(trace.weight.tensor, `${source}: weight "${weightName}" of the final conv`);
  const conv: FinalConv = {
    name: node.name ?? '',
    index: trace.conv,
    input: node.input![0]!,
    output: node.output![0]!,
    weight: weightName,
    bias: biasName,
  };
  if (opts.featuresOutput !== undefined && !g.outputs.includes(opts.featuresOutput)) {
    throw g.error(`the model has no output "${opts.featuresOutput}" (named as the features output); its outputs are ${g.outputs.map((o) => `"${o}"`).join(', ')}`);
  }
  const featuresTensor = opts.featuresOutput ?? conv.input;
  return {
    input: { name: input.name ?? '', shape: dimsOf(input), elemType: input.type?.tensorType?.elemType ?? 0 },
    outputs: g.outputs,
    logitsOutput: output,
    conv,
    chain: trace.via.map((i) => g.nodes[i]!.opType ?? ''),
    numClasses,
    featureChannels,
    kernel,
    bias: biasName ? readBias(g, biasName, numClasses) : null,
    elemType: trace.weight.castTo ?? trace.weight.tensor.dataType ?? onnx.TensorProto.DataType.FLOAT,
    featuresTensor,
    featuresAlreadyOutput: g.outputs.includes(featuresTensor),
    convOutputIsOutput: g.outputs.includes(conv.output),
  };
}

function readBias(g: ModelGraph, name: string, numClasses: number): Float32Array {
  const bias = g.constant(name);
  if (!bias) throw g.error(`the bias "${name}" of the final conv is not a constant`);
  const values = tensorToFloat32(bias.tensor, `${g.source}: bias "${name}" of the final conv`);
  if (values.length !== numClasses) {
    throw g.error(`the bias "${name}" of the final conv has ${values.length} values for ${numClasses} classes`);
  }
  return values;
}

/**
 * Returns the model with the features φ and the conv output z (feature resolution) added as graph
 * outputs, unless they already are outputs (then the bytes are returned as they are).
 *
 * The new outputs are spliced into the serialized graph instead of re-encoding the decoded model:
 * the weights are copied verbatim and fields newer than onnx-proto's ONNX 1.10 schema survive
 * (protobufjs drops unknown fields when it re-encodes). Repeated protobuf fields may appear in
 * several runs, so appending output entries to the graph message is a well-formed edit.
 */
export function exposeFeatures(bytes: Uint8Array, analysis: ModelAnalysis): Uint8Array {
  const graph = decodeModel(bytes).graph!;
  const wanted: [string, number][] = [];
  if (!analysis.featuresAlreadyOutput) wanted.push([analysis.conv.input, analysis.featureChannels]);
  if (!analysis.convOutputIsOutput) wanted.push([analysis.conv.output, analysis.numClasses]);
  if (wanted.length === 0) return bytes;
  const outputs = wanted.map(([name, channels]) => outputInfo(graph, analysis, name, channels));
  return appendToGraph(bytes, onnx.GraphProto.encode({ output: outputs }).finish());
}

/** The tensor's value_info when the exporter recorded one, else [N, channels, h, w] with symbolic h, w. */
function outputInfo(graph: onnx.IGraphProto, analysis: ModelAnalysis, name: string, channels: number): onnx.IValueInfoProto {
  const known = (graph.valueInfo ?? []).find((v) => v.name === name && v.type?.tensorType?.shape);
  if (known) return { name, type: known.type };
  const batch = analysis.input.shape[0] ?? -1;
  const dim = (d: Dim): onnx.TensorShapeProto.IDimension =>
    typeof d === 'string' ? { dimParam: d } : d >= 0 ? { dimValue: d } : {};
  const shape = [dim(batch), dim(channels), dim('pgn_feature_h'), dim('pgn_feature_w')];
  return { name, type: { tensorType: { elemType: analysis.elemType, shape: { dim: shape } } } };
}

const GRAPH_FIELD = 7; // ModelProto.graph

/** Appends serialized GraphProto fields to the model's graph message, fixing its length prefix. */
function appendToGraph(model: Uint8Array, extra: Uint8Array): Uint8Array {
  let pos = 0;
  let found: { start: number; payload: number; end: number } | null = null;
  while (pos < model.length) {
    const start = pos;
    const [tag, afterTag] = readVarint(model, pos);
    pos = afterTag;
    const wire = tag % 8;
    if (wire === 0) pos = readVarint(model, pos)[1];
    else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else if (wire === 2) {
      const [len, payload] = readVarint(model, pos);
      pos = payload + len;
      if (Math.floor(tag / 8) === GRAPH_FIELD) found = { start, payload, end: pos };
    } else throw new ModelError(`unexpected protobuf wire type ${wire} in the model`);
  }
  if (!found) throw new ModelError('ONNX model has no graph');
  const header = [...writeVarint(GRAPH_FIELD * 8 + 2), ...writeVarint(found.end - found.payload + extra.length)];
  const out = new Uint8Array(model.length - (found.payload - found.start) + header.length + extra.length);
  out.set(model.subarray(0, found.start), 0);
  out.set(header, found.start);
  out.set(model.subarray(found.payload, found.end), found.start + header.length);
  out.set(extra, found.start + header.length + (found.end - found.payload));
  out.set(model.subarray(found.end), found.start + header.length + (found.end - found.payload) + extra.length);
  return out;
}

function readVarint(bytes: Uint8Array, pos: number): [number, number] {
  let value = 0;
  for (let shift = 1; pos < bytes.length; shift *= 128) {
    const b = bytes[pos++]!;
    value += (b & 0x7f) * shift;
    if (b < 0x80) return [value, pos];
  }
  throw new ModelError('truncated protobuf varint in the model');
}

function writeVarint(value: number): number[] {
  const out: number[] = [];
  while (value >= 0x80) {
    out.push((value % 128) | 0x80);
    value = Math.floor(value / 128);
  }
  out.push(value);
  return out;
}
