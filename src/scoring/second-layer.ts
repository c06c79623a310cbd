/**
 * The paper's second variant (docs/second-layer.md): gradient norms of the loss w.r.t. the weights
 * of the second-to-last convolution, the k×k conv whose output goes through an activation (and
 * possibly a BatchNorm) into the final 1x1 conv. Scores pgn2-oh and pgn2-uni.
 *
 * For the head u = W ⋆ x + b, [BN], φ = act(·), z = Kφ + β and one pixel:
 *   ‖∇_W L‖_p = ‖(Kᵀ(s − y)) ⊙ act' ⊙ bnScale‖_p · ‖patch(x)‖_p
 * with patch(x) the pixel's receptive field in the conv's input x (zero padding). Needs, beside the
 * logits and φ: x, K, the conv's geometry and the activation.
 */
import type { Tensor } from './tensor';
import { native, NativeScoreSpec } from '../addon';

/** The activation between the conv (or its BatchNorm) and the final 1x1 conv. Its derivative is read from φ. */
export type ActivationInfo =
  | { kind: 'relu' }
  /** alpha >= 0 */
  | { kind: 'leakyrelu'; alpha: number }
  /** ReLU6 is { min: 0, max: 6 }; ±Infinity for a missing bound. */
  | { kind: 'clip'; min: number; max: number }
  /** One slope per feature channel (or one for all), each >= 0. */
  | { kind: 'prelu'; slopes: Float32Array };

/** The k×k conv's geometry, as its ONNX attributes give it. */
export interface ConvGeometry {
  kernelShape: [number, number];
  strides: [number, number];
  dilations: [number, number];
  /** [top, left, bottom, right] (ONNX order). */
  pads: [number, number, number, number];
}

/** What the second-layer scores need to know about the head besides the tensors. */
export interface SecondLayerInfo extends ConvGeometry {
  activation: ActivationInfo;
  /**
   * γ/√(var+ε) of a BatchNorm between the conv and the activation, per feature channel, when the
   * model keeps it unfolded. Absent when the exporter folded it into the conv (then the gradient
   * is the one w.r.t. the folded weight) or there is none.
   */
  bnScale?: Float32Array | null;
  /** γ of that BatchNorm alone: what the authors' code multiplies by (variant=code only). */
  bnGamma?: Float32Array | null;
}

/** The extra inputs of the pgn2-* scores. */
export interface SecondLayerInputs {
  /** x [N, Cin, H', W']: the k×k conv's input. */
  input: Tensor;
  /** K of the final 1x1 conv, [C, F] row-major (ModelSession.kernel, or a [C,F,1,1] weight as is). */
  kernel: Float32Array;
  layer: SecondLayerInfo;
}

/** Geometry of a k×k conv with stride 1, dilation d and "same" padding d·(k−1)/2: the usual head. */
export function sameConv(kernel = 3, dilation = 1): ConvGeometry {
  const pad = Math.floor((dilation * (kernel - 1)) / 2);
  return { kernelShape: [kernel, kernel], strides: [1, 1], dilations: [dilation, dilation], pads: [pad, pad, pad, pad] };
}

/** Output size of the conv along one axis, or <= 0 when the padded input is smaller than the dilated kernel. */
export function convOutputSize(size: number, padBegin: number, padEnd: number, dilation: number, kernel: number, stride: number): number {
  return Math.floor((size + padBegin + padEnd - dilation * (kernel - 1) - 1) / stride) + 1;
}

function checkFloat32(value: unknown, name: string): void {
  // Float32Array from another realm (Jest, vm) passes too: the binding checks the exact type again.
  if (!ArrayBuffer.isView(value) || Object.prototype.toString.call(value) !== '[object Float32Array]')
    throw new TypeError(`${name} must be a Float32Array`);
}

/** Checks the shape of a SecondLayerInputs object (values and sizes are checked natively). */
export function checkSecondLayerInputs(inputs: SecondLayerInputs | undefined): asserts inputs is SecondLayerInputs {
  if (inputs === null || typeof inputs !== 'object')
    throw new TypeError('pgn2-* scores need secondLayer: { input: { data, dims }, kernel, layer } (the second-to-last conv\'s input, the final conv\'s K and the layer\'s geometry and activation)');
  const x = inputs.input;
  if (x === null || typeof x !== 'object' || !Array.isArray(x.dims)) throw new TypeError('secondLayer.input must be { data: Float32Array, dims: [N, Cin, H, W] }');
  checkFloat32(x.data, 'secondLayer.input.data');
  checkFloat32(inputs.kernel, 'secondLayer.kernel');
  const layer = inputs.layer;
  if (layer === null || typeof layer !== 'object') throw new TypeError('secondLayer.layer must be { kernelShape, strides, dilations, pads, activation }');
  if (layer.activation === null || typeof layer.activation !== 'object') throw new TypeError('secondLayer.layer.activation must be { kind, ... }');
}

/** The binding's options for the pgn2 specs (already normalized) of one call. */
export function secondLayerNative(
  logits: Tensor,
  features: Tensor,
  inputs: SecondLayerInputs,
  specs: NativeScoreSpec[],
  opts: { prediction: boolean; threads?: number; backend?: string },
): Promise<{ maps: Float32Array[]; prediction: Int32Array | null }> {
  const { layer } = inputs;
  const a = layer.activation;
  return native.secondLayerScores({
    logits: logits.data,
    logitsDims: logits.dims,
    features: features.data,
    featuresDims: features.dims,
    input: inputs.input.data,
    inputDims: inputs.input.dims,
    kernel: inputs.kernel,
    kernelShape: layer.kernelShape,
    strides: layer.strides,
    dilations: layer.dilations,
    pads: layer.pads,
    activation: { ...a },
    ...(layer.bnScale ? { bnScale: layer.bnScale } : {}),
    ...(layer.bnGamma ? { codeScale: layer.bnGamma } : {}),
    scores: specs,
    prediction: opts.prediction,
    threads: opts.threads,
    backend: opts.backend,
  });
}

/** "relu", "relu6", "leakyrelu:0.1", "clip:0:6", "prelu:<slope>" (one slope): for the CLI. */
export function parseActivation(text: string): ActivationInfo {
  const [kind, ...args] = text.trim().toLowerCase().split(':');
  const nums = args.map((v) => (v === 'inf' ? Infinity : v === '-inf' ? -Infinity : Number(v)));
  const bad = () => new RangeError(`activation "${text}": expected relu, relu6, leakyrelu:<alpha >= 0>, clip:<min>:<max> or prelu:<slope >= 0>`);
  if (nums.some((v) => Number.isNaN(v) || args.some((s) => s.trim() === ''))) throw bad();
  if (kind === 'relu' && nums.length === 0) return { kind: 'relu' };
  if (kind === 'relu6' && nums.length === 0) return { kind: 'clip', min: 0, max: 6 };
  if ((kind === 'leakyrelu' || kind === 'leaky') && nums.length <= 1) {
    const alpha = nums[0] ?? 0.01;
    if (!(alpha >= 0 && Number.isFinite(alpha))) throw bad();
    return { kind: 'leakyrelu', alpha };
  }
  if (kind === 'clip' && nums.length === 2 && nums[0]! < nums[1]!) return { kind: 'clip', min: nums[0]!, max: nums[1]! };
  if (kind === 'prelu' && nums.length === 1 && nums[0]! >= 0 && Number.isFinite(nums[0]!)) return { kind: 'prelu', slopes: Float32Array.of(nums[0]!) };
  throw bad();
}
