/**
 * ONNX graph surgery: find the final 1x1 convolution z = K·φ + β that produces a segmentation
 * model's logits, read K and β, and expose φ (the conv's input) and z at feature resolution
 * (the conv's output, before any upsampling) as extra graph outputs.
 */
import { ModelError } from '../common/errors';
import type { ActivationInfo, SecondLayerInfo } from '../scoring/second-layer';
import {
  attribute,
  checkExternalData,
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
  /**
   * The model's folder: weights stored as external data are read from files there (only the final
   * conv's), and every external location must stay inside it. Without it, external weights are a ModelError.
   */
  modelDir?: string;
  /**
   * Also describe the second-to-last conv for the pgn2-* scores (analysis.secondLayer), and have
   * exposeFeatures expose its input. ModelError when the head is not conv → [BN] → act → final conv.
   */
  secondLayer?: boolean;
}

export interface FinalConv {
  name: string;
  /** Index of the node in graph.node. */
  index: number;
  /** The conv's data input: the penultimate features φ [N,F,h,w]. */
  input: string;
  /** The conv's output: the logits at feature resolution [N,C,h,w] (one term of them in a summed head). */
  output: string;
  weight: string;
  bias: string | null;
  /** F: the conv's input channels. */
  channels: number;
}

export interface ModelAnalysis {
  input: { name: string; shape: Dim[]; elemType: number };
  /** All graph outputs, in order. */
  outputs: string[];
  /** The graph output the logits come out of. */
  logitsOutput: string;
  /** The final conv (the first branch's in a summed head). */
  conv: FinalConv;
  /**
   * Every final conv: [conv], or the branches of a head that sums 1x1 convs at one resolution
   * (torchvision LRASPP). K is their kernels side by side and φ their inputs concatenated over
   * channels, which makes Σ_b ‖φ_b‖_p^p one feature norm (docs/models.md, "Summed heads").
   */
  branches: FinalConv[];
  /** The Add node summing the branches, or null. */
  sum: { name: string; index: number } | null;
  /** Tensor to fetch for the logits at feature resolution: the conv's output, or the sum's. */
  logitsTensor: string;
  /** Op types between the conv and the logits output, conv side first (e.g. ['Resize']). */
  chain: string[];
  numClasses: number;
  featureChannels: number;
  /** K as [C,F] row-major. */
  kernel: Float32Array;
  bias: Float32Array | null;
  /** ONNX element type of the conv's tensors (float, or float16 in half-precision models). */
  elemType: number;
  /** Tensors to fetch for φ, concatenated over channels in this order: the convs' inputs, or the model's own features output (opts.featuresOutput). */
  featureTensors: string[];
  featuresAlreadyOutput: boolean;
  convOutputIsOutput: boolean;
  /** The second-to-last conv, when asked for (opts.secondLayer). */
  secondLayer?: SecondLayerAnalysis;
}

/** Ops that move or resample the logits without changing what they are; walked back through. */
const PASS_THROUGH = new Set(['Resize', 'Upsample', 'Transpose', 'Reshape', 'Identity', 'Cast']);

/** Ops that pass φ on unchanged at inference: between the activation and the final conv, or between φ and a features output. */
const FEATURE_PASS = new Set(['Identity', 'Dropout', 'Cast']);

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

type Head = { conv: number; weight: ConstTensor };

type Trace = { ok: true; heads: Head[]; sum: number | null; via: number[] } | { ok: false; reason: string };

/** Index of one graph: who produces each tensor, and the constants. */
class ModelGraph {
  readonly nodes: onnx.INodeProto[];
  readonly outputs: string[];
  readonly producers = new Map<string, number>();
  readonly initializers = new Map<string, onnx.ITensorProto>();

  constructor(
    readonly graph: onnx.IGraphProto,
    readonly source: string,
    readonly modelDir?: string,
  ) {
    this.nodes = graph.node ?? [];
    this.outputs = (graph.output ?? []).map((o) => o.name ?? '');
    this.nodes.forEach((n, i) => (n.output ?? []).forEach((t) => t && this.producers.set(t, i)));
    for (const t of graph.initializer ?? []) this.initializers.set(t.name ?? '', t);
  }

  /** The tensor a chain of Identity/Dropout/Cast nodes ending in `tensor` starts from (the tensor itself if none). */
  passThroughSource(tensor: string): string {
    const seen = new Set<number>();
    for (;;) {
      const index = this.producers.get(tensor);
      if (index === undefined || seen.has(index) || !FEATURE_PASS.has(this.nodes[index]!.opType ?? '')) return tensor;
      seen.add(index);
      tensor = this.nodes[index]!.input?.[0] ?? '';
    }
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

  /**
   * A constant tensor by name: an initializer or a Constant node, possibly behind Identity or Cast.
   * Iterative (a long Identity chain must not overflow the stack); each node is visited once.
   */
  constant(name: string): ConstTensor | null {
    let castTo: number | undefined;
    const seen = new Set<number>();
    for (let tensor = name; ;) {
      const init = this.initializers.get(tensor);
      if (init) return { tensor: init, castTo };
      const index = this.producers.get(tensor);
      if (index === undefined || seen.has(index)) return null;
      seen.add(index);
      const node = this.nodes[index]!;
      if (node.opType === 'Constant') {
        const t = attribute(node, 'value')?.t;
        return t ? { tensor: t, castTo } : null;
      }
      if (node.opType !== 'Identity' && node.opType !== 'Cast') return null;
      // the Cast closest to the consumer decides the type the conv sees
      if (node.opType === 'Cast' && castTo === undefined) castTo = intAttribute(node, 'to');
      tensor = node.input?.[0] ?? '';
    }
  }

  /** Walks back from a graph output to the node computing the logits; says why when it is unusable. Linear in the chain's length. */
  trace(output: string): Trace {
    const via: number[] = [];
    const seen = new Set<number>();
    // built only for an error message: joining the whole chain at every step would be quadratic
    const reached = (): string => {
      if (!via.length) return '';
      const shown = via.length <= 8 ? via.map((i) => this.label(i)) : [...via.slice(0, 4).map((i) => this.label(i)), `… ${via.length - 8} more …`, ...via.slice(-4).map((i) => this.label(i))];
      return ` (reached via ${shown.join(' ← ')})`;
    };
    for (let tensor = output; ;) {
      const index = this.producers.get(tensor);
      if (index === undefined) {
        const what = this.initializers.has(tensor) ? 'a constant' : 'not computed by any node';
        return { ok: false, reason: `output "${output}" traces back to tensor "${tensor}", which is ${what}${reached()}: ${NEED}` };
      }
      const node = this.nodes[index]!;
      if (PASS_THROUGH.has(node.opType ?? '') && !seen.has(index)) {
        seen.add(index);
        via.push(index);
        tensor = node.input?.[0] ?? '';
        continue;
      }
      const check = this.checkConv(node);
      if (check.ok) return { ok: true, heads: [{ conv: index, weight: check.weight }], sum: null, via: via.reverse() };
      if (node.opType === 'Add') {
        const sum = this.summedHeads(index);
        if (sum.ok) return { ok: true, heads: sum.heads, sum: index, via: via.reverse() };
        return { ok: false, reason: `final layer of output "${output}" is ${this.label(index, true)}${reached()}, ${sum.reason}` };
      }
      const hint = HINTS[node.opType ?? ''] ?? NEED;
      return { ok: false, reason: `final layer of output "${output}" is ${this.label(index, true)}${check.detail}${reached()}: ${hint}` };
    }
  }

  /**
   * A tree of Add nodes whose every leaf is a usable 1x1 conv with the same number of classes (LRASPP:
   * low_classifier(x_low) + high_classifier(x_high)). Iterative; each node visited once.
   */
  private summedHeads(root: number): { ok: true; heads: Head[] } | { ok: false; reason: string } {
    const heads: Head[] = [];
    const seen = new Set<number>([root]);
    const stack = [...(this.nodes[root]!.input ?? [])].reverse();
    while (stack.length) {
      const tensor = stack.pop()!;
      const index = this.producers.get(tensor);
      const node = index === undefined ? undefined : this.nodes[index]!;
      if (index !== undefined && node!.opType === 'Add' && !seen.has(index)) {
        seen.add(index);
        stack.push(...[...(node!.input ?? [])].reverse());
        continue;
      }
      const check = node ? this.checkConv(node) : { ok: false as const, detail: '' };
      if (!check.ok || seen.has(index!)) {
        const what = index === undefined ? `"${tensor}", which no node computes` : `${this.label(index, true)}${check.ok ? '' : check.detail}`;
        return { ok: false, reason: `which adds ${what}: pgn-ood takes a sum only of 1x1 convs (group 1) at one resolution, e.g. LRASPP's low_classifier + high_classifier` };
      }
      seen.add(index!);
      heads.push({ conv: index!, weight: check.weight });
    }
    const classes = heads.map((h) => tensorDims(h.weight.tensor)[0]);
    if (new Set(classes).size > 1) return { ok: false, reason: `which adds 1x1 convs with different numbers of classes (${classes.join(', ')})` };
    return { ok: true, heads };
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
  const g = new ModelGraph(decodeModel(bytes, source).graph!, source, opts.modelDir);
  if (opts.modelDir !== undefined) checkExternalData(g.graph, opts.modelDir, source);
  const input = g.input();
  const { output, trace } = pickLogitsOutput(g, opts.logitsOutput);
  const branches = trace.heads.map((h) => finalConv(g, h));
  const conv = branches[0]!;
  const numClasses = tensorDims(trace.heads[0]!.weight.tensor)[0]!;
  const featureChannels = branches.reduce((a, b) => a + b.channels, 0);
  const sum = trace.sum === null ? null : { name: g.nodes[trace.sum]!.name ?? '', index: trace.sum };
  if (sum && (opts.featuresOutput !== undefined || opts.secondLayer)) {
    throw g.error(`the logits are the sum of ${branches.length} 1x1 convs (${g.label(sum.index, true)}): ${opts.secondLayer ? 'pgn2 scores need a single final conv' : 'a features output (outputs.features) names one tensor; leave it out, the branches\' inputs are exposed by surgery'}`);
  }
  if (opts.featuresOutput !== undefined) checkFeaturesOutput(g, opts.featuresOutput, conv);
  const featureTensors = opts.featuresOutput !== undefined ? [opts.featuresOutput] : branches.map((b) => b.input);
  const logitsTensor = sum ? g.nodes[sum.index]!.output![0]! : conv.output;
  const analysis: ModelAnalysis = {
    input: { name: input.name ?? '', shape: dimsOf(input), elemType: input.type?.tensorType?.elemType ?? 0 },
    outputs: g.outputs,
    logitsOutput: output,
    conv,
    branches,
    sum,
    logitsTensor,
    chain: trace.via.map((i) => g.nodes[i]!.opType ?? ''),
    numClasses,
    featureChannels,
    kernel: sideBySide(trace.heads.map((h, i) => tensorToFloat32(h.weight.tensor, `${source}: weight "${branches[i]!.weight}" of the final conv`, g.modelDir)), numClasses),
    bias: summedBias(g, branches, numClasses),
    elemType: trace.heads[0]!.weight.castTo ?? trace.heads[0]!.weight.tensor.dataType ?? onnx.TensorProto.DataType.FLOAT,
    featureTensors,
    featuresAlreadyOutput: featureTensors.every((t) => g.outputs.includes(t)),
    convOutputIsOutput: g.outputs.includes(logitsTensor),
  };
  if (opts.secondLayer) analysis.secondLayer = traceSecondLayer(g, analysis);
  return analysis;
}

/**
 * A features output named by the card must be φ itself: the final conv's input, or the same tensor
 * through Identity/Dropout/Cast. Anything else (the conv's output, a pre-activation) would be
 * scored silently as if it were φ.
 */
function checkFeaturesOutput(g: ModelGraph, name: string, conv: FinalConv): void {
  if (!g.outputs.includes(name)) {
    throw g.error(`the model has no output "${name}" (named as the features output); its outputs are ${g.outputs.map((o) => `"${o}"`).join(', ')}`);
  }
  const wrong = `the features output "${name}"`;
  if (g.passThroughSource(name) !== g.passThroughSource(conv.input)) {
    throw g.error(`${wrong} is not the input of the final conv ${g.label(conv.index, true)} ("${conv.input}") but comes from ${describe(g, name)}: name the conv's input as the features output, or leave outputs.features out`);
  }
  const info = (g.graph.output ?? []).find((o) => o.name === name);
  const channels = info ? dimsOf(info)[1] : undefined;
  if (typeof channels === 'number' && channels >= 0 && channels !== conv.channels) {
    throw g.error(`${wrong} has ${channels} channels, but the final conv's kernel takes ${conv.channels}`);
  }
}

function finalConv(g: ModelGraph, head: Head): FinalConv {
  const node = g.nodes[head.conv]!;
  return {
    name: node.name ?? '',
    index: head.conv,
    input: node.input![0]!,
    output: node.output![0]!,
    weight: node.input![1]!,
    bias: node.input?.[2] || null,
    channels: tensorDims(head.weight.tensor)[1]!,
  };
}

/** The branches' kernels [C,F_b] side by side: K = [K_1 | K_2 | …] as [C, ΣF_b] row-major. */
function sideBySide(kernels: Float32Array[], numClasses: number): Float32Array {
  if (kernels.length === 1) return kernels[0]!;
  const widths = kernels.map((k) => k.length / numClasses);
  const F = widths.reduce((a, b) => a + b, 0);
  const out = new Float32Array(numClasses * F);
  for (let c = 0; c < numClasses; c++) {
    let at = c * F;
    kernels.forEach((k, b) => {
      out.set(k.subarray(c * widths[b]!, (c + 1) * widths[b]!), at);
      at += widths[b]!;
    });
  }
  return out;
}

/** The bias of the logits: the sum of the branches' biases (null when none has one). */
function summedBias(g: ModelGraph, branches: FinalConv[], numClasses: number): Float32Array | null {
  const biases = branches.filter((b) => b.bias !== null).map((b) => readBias(g, b.bias!, numClasses));
  if (biases.length <= 1) return biases[0] ?? null;
  return Float32Array.from({ length: numClasses }, (_, c) => biases.reduce((a, b) => a + b[c]!, 0));
}

function readBias(g: ModelGraph, name: string, numClasses: number): Float32Array {
  const bias = g.constant(name);
  if (!bias) throw g.error(`the bias "${name}" of the final conv is not a constant`);
  const values = tensorToFloat32(bias.tensor, `${g.source}: bias "${name}" of the final conv`, g.modelDir);
  if (values.length !== numClasses) {
    throw g.error(`the bias "${name}" of the final conv has ${values.length} values for ${numClasses} classes`);
  }
  return values;
}

/**
 * Returns the model with the features φ and the conv output z (feature resolution) added as graph
 * outputs, unless they already are outputs (then the bytes are returned as they are). With
 * analysis.secondLayer (analyzeModel's secondLayer option), the second-to-last conv's input x too.
 *
 * The new outputs are spliced into the serialized graph instead of re-encoding the decoded model:
 * the weights are copied verbatim and fields newer than onnx-proto's ONNX 1.10 schema survive
 * (protobufjs drops unknown fields when it re-encodes). Repeated protobuf fields may appear in
 * several runs, so appending output entries to the graph message is a well-formed edit.
 */
export function exposeFeatures(bytes: Uint8Array, analysis: ModelAnalysis): Uint8Array {
  const graph = decodeModel(bytes).graph!;
  const wanted: [string, number][] = [];
  analysis.branches.forEach((b, i) => {
    const tensor = analysis.featureTensors[i] ?? b.input;
    if (!analysis.outputs.includes(tensor)) wanted.push([tensor, b.channels]);
  });
  if (!analysis.convOutputIsOutput) wanted.push([analysis.logitsTensor, analysis.numClasses]);
  const second = analysis.secondLayer;
  const exposeX = second !== undefined && !second.inputAlreadyOutput && !second.inputIsModelInput;
  if (wanted.length === 0 && !exposeX) return bytes;
  const outputs = wanted.map(([name, channels]) => outputInfo(graph, analysis, name, channels));
  if (exposeX) outputs.push(outputInfo(graph, analysis, second.inputTensor, second.conv.inChannels, ['pgn_conv_input_h', 'pgn_conv_input_w']));
  return appendToGraph(bytes, onnx.GraphProto.encode({ output: outputs }).finish());
}

/** The tensor's value_info when the exporter recorded one, else [N, channels, h, w] with symbolic h, w. */
function outputInfo(graph: onnx.IGraphProto, analysis: ModelAnalysis, name: string, channels: number, spatial = ['pgn_feature_h', 'pgn_feature_w']): onnx.IValueInfoProto {
  const known = (graph.valueInfo ?? []).find((v) => v.name === name && v.type?.tensorType?.shape);
  if (known) return { name, type: known.type };
  const batch = analysis.input.shape[0] ?? -1;
  const dim = (d: Dim): onnx.TensorShapeProto.IDimension =>
    typeof d === 'string' ? { dimParam: d } : d >= 0 ? { dimValue: d } : {};
  const shape = [dim(batch), dim(channels), dim(spatial[0]!), dim(spatial[1]!)];
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

// ---- The second-to-last conv (pgn2-* scores, docs/second-layer.md) ----

export interface SecondLayerAnalysis {
  /** The k×k conv: its input is x, its output (through [BN] and the activation) is φ. */
  conv: { name: string; index: number; input: string; output: string; weight: string; inChannels: number; outChannels: number };
  /** An unfolded BatchNormalization between the conv and the activation (exporters usually fold it). */
  batchNorm: { name: string; epsilon: number } | null;
  activation: { op: string; name: string };
  /** Ops walked through between the activation and the final conv (Identity, Dropout, Cast), activation side first. */
  via: string[];
  /** Geometry, activation and BatchNorm scales: computeScores' secondLayer.layer. */
  layer: SecondLayerInfo;
  /** The tensor to fetch for x (the conv's input). */
  inputTensor: string;
  inputAlreadyOutput: boolean;
  /** x is the model's own input (a one-conv backbone): nothing to expose, the batch is x. */
  inputIsModelInput: boolean;
}

const ACTIVATIONS = 'Relu, LeakyRelu, Clip (e.g. ReLU6) or PRelu';

/** Smooth activations whose derivative cannot be read from their output alone. */
const SMOOTH = new Set(['Sigmoid', 'Tanh', 'Gelu', 'Elu', 'Selu', 'Celu', 'Softplus', 'Softsign', 'HardSigmoid', 'HardSwish', 'Mish', 'Erf', 'Mul', 'ThresholdedRelu']);

function floatAttribute(node: onnx.INodeProto, name: string): number | undefined {
  const a = attribute(node, name);
  return a && a.f !== null && a.f !== undefined ? a.f : undefined;
}

function stringAttribute(node: onnx.INodeProto, name: string): string | undefined {
  const a = attribute(node, name);
  return a?.s ? Buffer.from(a.s).toString('utf8') : undefined;
}

/** The values of a constant input of a node (initializer or Constant, possibly behind Identity/Cast). */
function constantValues(g: ModelGraph, node: number, input: number, what: string): Float32Array {
  const name = g.nodes[node]!.input?.[input] ?? '';
  const c = g.constant(name);
  if (!c) throw g.error(`${what} of ${g.label(node, true)} ("${name}") is not a constant: pgn2 scores need it as a number`);
  return tensorToFloat32(c.tensor, `${g.source}: ${what} "${name}" of ${g.label(node, true)}`, g.modelDir);
}

function readActivation(g: ModelGraph, index: number, channels: number): ActivationInfo {
  const node = g.nodes[index]!;
  const where = g.label(index, true);
  switch (node.opType) {
    case 'Relu':
      return { kind: 'relu' };
    case 'LeakyRelu': {
      const alpha = floatAttribute(node, 'alpha') ?? 0.01;
      if (!(alpha >= 0)) throw g.error(`${where} has alpha ${alpha}: pgn2 scores need a slope >= 0 (a negative slope hides the sign of the pre-activation in its output)`);
      return { kind: 'leakyrelu', alpha };
    }
    case 'Clip': {
      // opset >= 11: min and max are optional inputs; before: attributes (absent = no bound)
      const bound = (input: number, attr: string, absent: number): number => {
        if ((node.input?.length ?? 0) > input && node.input![input]) return constantValues(g, index, input, attr)[0] ?? absent;
        return floatAttribute(node, attr) ?? absent;
      };
      const min = bound(1, 'min', -Infinity), max = bound(2, 'max', Infinity);
      if (!(min < max)) throw g.error(`${where} clips to [${min}, ${max}]: pgn2 scores need min < max`);
      return { kind: 'clip', min: min <= -3.4e38 ? -Infinity : min, max: max >= 3.4e38 ? Infinity : max };
    }
    case 'PRelu': {
      const slopes = constantValues(g, index, 1, 'slope');
      if (slopes.length !== 1 && slopes.length !== channels) {
        throw g.error(`${where} has ${slopes.length} slopes for ${channels} feature channels: pgn2 scores need one per channel or one for all`);
      }
      const negative = slopes.findIndex((v) => !(v >= 0));
      if (negative >= 0) throw g.error(`${where} has slope ${slopes[negative]} for channel ${negative}: pgn2 scores need slopes >= 0 (a negative slope hides the sign of the pre-activation in its output)`);
      return { kind: 'prelu', slopes };
    }
    default:
      throw new Error(`not an activation: ${node.opType}`);
  }
}

/** pads [top, left, bottom, right] from the Conv's pads or auto_pad (SAME_* only with stride 1, where they do not depend on the size). */
function convPads(g: ModelGraph, index: number, kernel: number[], strides: number[], dilations: number[]): [number, number, number, number] {
  const node = g.nodes[index]!;
  const autoPad = stringAttribute(node, 'auto_pad') ?? 'NOTSET';
  if (autoPad === 'NOTSET' || autoPad === '') {
    const pads = intsAttribute(node, 'pads') ?? [0, 0, 0, 0];
    if (pads.length !== 4) throw g.error(`${g.label(index, true)} has pads [${pads.join(',')}]; 4 values are expected for a 2-D conv`);
    return [pads[0]!, pads[1]!, pads[2]!, pads[3]!];
  }
  if (autoPad === 'VALID') return [0, 0, 0, 0];
  if ((autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') && strides.every((s) => s === 1)) {
    const total = kernel.map((k, i) => dilations[i]! * (k - 1));
    const begin = total.map((t) => (autoPad === 'SAME_UPPER' ? Math.floor(t / 2) : Math.ceil(t / 2)));
    return [begin[0]!, begin[1]!, total[0]! - begin[0]!, total[1]! - begin[1]!];
  }
  throw g.error(`${g.label(index, true)} has auto_pad ${autoPad} with strides [${strides.join(',')}]: pgn2 scores need explicit pads (re-export with explicit padding)`);
}

function describe(g: ModelGraph, tensor: string): string {
  const index = g.producers.get(tensor);
  if (index === undefined) return g.initializers.has(tensor) ? `the constant "${tensor}"` : `the graph input "${tensor}"`;
  return g.label(index, true);
}

/**
 * Walks back from the final conv's input: [Identity/Dropout/Cast] → activation → [BatchNormalization]
 * → Conv (group 1, constant 4-D weight with F output channels).
 */
function traceSecondLayer(g: ModelGraph, analysis: ModelAnalysis): SecondLayerAnalysis {
  const final = `the final conv ${g.label(analysis.conv.index, true)}`;
  const F = analysis.featureChannels;
  const via: string[] = [];
  let tensor = analysis.conv.input;
  let index = g.producers.get(tensor);
  while (index !== undefined && FEATURE_PASS.has(g.nodes[index]!.opType ?? '') && via.length <= g.nodes.length) {
    via.push(g.nodes[index]!.opType!);
    tensor = g.nodes[index]!.input?.[0] ?? '';
    index = g.producers.get(tensor);
  }
  const found = describe(g, tensor);
  if (index === undefined || !['Relu', 'LeakyRelu', 'Clip', 'PRelu'].includes(g.nodes[index]!.opType ?? '')) {
    const op = index === undefined ? '' : g.nodes[index]!.opType ?? '';
    const why = SMOOTH.has(op) ? ` (its derivative needs the pre-activation, which pgn-ood does not fetch)` : op === 'Conv' || op === 'BatchNormalization' ? ' (no activation in between)' : '';
    throw g.error(`the input of ${final} comes from ${found}${why}: pgn2 scores need ${ACTIVATIONS} there, after a Conv [and BatchNormalization]`);
  }
  const actIndex = index;
  const act = g.nodes[actIndex]!;
  const activation = readActivation(g, actIndex, F);

  tensor = act.input?.[0] ?? '';
  index = g.producers.get(tensor);
  let batchNorm: SecondLayerAnalysis['batchNorm'] = null;
  let bnScale: Float32Array | null = null, bnGamma: Float32Array | null = null;
  if (index !== undefined && g.nodes[index]!.opType === 'BatchNormalization') {
    const bn = g.nodes[index]!;
    if ((intAttribute(bn, 'training_mode') ?? 0) !== 0) throw g.error(`${g.label(index, true)} is in training mode: export the model in eval mode`);
    const epsilon = floatAttribute(bn, 'epsilon') ?? 1e-5;
    const gamma = constantValues(g, index, 1, 'scale');
    const variance = constantValues(g, index, 4, 'variance');
    if (gamma.length !== F || variance.length !== F) throw g.error(`${g.label(index, true)} has ${gamma.length} channels, but the final conv takes ${F}`);
    bnGamma = gamma;
    bnScale = Float32Array.from(gamma, (v, f) => v / Math.sqrt(variance[f]! + epsilon));
    batchNorm = { name: bn.name ?? '', epsilon };
    tensor = bn.input?.[0] ?? '';
    index = g.producers.get(tensor);
  }
  const after = batchNorm ? `${describe(g, act.input![0]!)} before ${g.label(actIndex, true)}` : g.label(actIndex, true);
  if (index === undefined || g.nodes[index]!.opType !== 'Conv') {
    throw g.error(`${after} takes its input from ${describe(g, tensor)}: pgn2 scores need a Conv there (conv → [BatchNormalization] → activation → final conv)`);
  }
  const convIndex = index;
  const conv = g.nodes[convIndex]!;
  const where = g.label(convIndex, true);
  const weightName = conv.input?.[1] ?? '';
  const weight = g.constant(weightName);
  if (!weight) throw g.error(`${where} has a weight "${weightName}" that is not a constant`);
  const dims = tensorDims(weight.tensor);
  if (dims.length !== 4) throw g.error(`${where} has a ${dims.length - 2}-D kernel: pgn2 scores need a 2-D conv`);
  const group = intAttribute(conv, 'group') ?? 1;
  if (group !== 1) throw g.error(`${where} has group ${group}: pgn2 scores need group 1 (depthwise and grouped convs are not supported)`);
  if (dims[0] !== F) throw g.error(`${where} has ${dims[0]} output channels, but the final conv takes ${F}`);
  const kernel = intsAttribute(conv, 'kernel_shape') ?? dims.slice(2);
  const strides = intsAttribute(conv, 'strides') ?? [1, 1];
  const dilations = intsAttribute(conv, 'dilations') ?? [1, 1];
  if (kernel.length !== 2 || strides.length !== 2 || dilations.length !== 2) throw g.error(`${where}: kernel_shape, strides and dilations must have 2 values`);
  const pads = convPads(g, convIndex, kernel, strides, dilations);
  const input = conv.input?.[0] ?? '';
  return {
    conv: { name: conv.name ?? '', index: convIndex, input, output: conv.output?.[0] ?? '', weight: weightName, inChannels: dims[1]!, outChannels: dims[0]! },
    batchNorm,
    activation: { op: act.opType ?? '', name: act.name ?? '' },
    via: via.reverse(),
    layer: {
      kernelShape: [kernel[0]!, kernel[1]!],
      strides: [strides[0]!, strides[1]!],
      dilations: [dilations[0]!, dilations[1]!],
      pads,
      activation,
      bnScale,
      bnGamma,
    },
    inputTensor: input,
    inputAlreadyOutput: g.outputs.includes(input),
    inputIsModelInput: input === analysis.input.name,
  };
}
