/**
 * Small ONNX heads for the second-layer tests: input [1,3,H,W] → stem Conv3x3 → Relu → "x" → head
 * Conv → [BatchNormalization] → activation → [Dropout → Identity] → "feat" → 1x1 Conv "classifier"
 * → "conv_out" → Resize → "logits", with the float64 reference head (weights) alongside.
 */
import { floatTensor, GraphBuilder, random } from './onnx-builder';
import { RefActivation, RefHead } from './second-layer-reference';

export type Act = 'Relu' | 'LeakyRelu' | 'Clip' | 'ClipAttrs' | 'Relu6NoMin' | 'PRelu' | 'PReluOne' | 'Sigmoid' | 'None';

export interface HeadModel {
  kernel?: [number, number];
  strides?: [number, number];
  dilations?: [number, number];
  pads?: [number, number, number, number];
  autoPad?: string;
  group?: number;
  bn?: boolean;
  bnTraining?: boolean;
  act?: Act;
  alpha?: number;
  prelu?: number[];
  /** Dropout + Identity between the activation and the final conv */
  dropout?: boolean;
  /** an Add between the conv and the activation */
  residual?: boolean;
  /** x is also a graph output already */
  xIsOutput?: boolean;
  opset?: number;
}

export const CIN = 6, F = 5, C = 4, H = 10, W = 12;

/** input [1,3,H,W] → stem Conv3x3 → Relu → "x" → head Conv → [BN] → act → [Dropout → Identity] → "feat" → 1x1 Conv → "conv_out" → Resize → "logits" */
export function buildHeadModel(o: HeadModel, outputs = ['logits']): { bytes: Uint8Array; head: RefHead } {
  const g = new GraphBuilder(7);
  const [kh, kw] = o.kernel ?? [3, 3];
  const group = o.group ?? 1;
  const opset = o.opset ?? 13;
  g.input('input', [1, 3, H, W]);
  g.randomInit('stem.w', [CIN, 3, 3, 3]);
  g.node('Conv', ['input', 'stem.w'], ['stem_out'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, 'stem.conv');
  g.node('Relu', ['stem_out'], ['x'], {}, 'stem.relu');
  const weight = g.randomInit('head.w', [F, CIN / group, kh, kw]);
  const bias = g.randomInit('head.b', [F]);
  const attrs: Record<string, number[] | number | string> = { kernel_shape: [kh, kw] };
  if (o.strides) attrs.strides = o.strides;
  if (o.dilations) attrs.dilations = o.dilations;
  if (o.pads) attrs.pads = o.pads;
  if (o.autoPad) attrs.auto_pad = o.autoPad;
  if (group !== 1) attrs.group = group;
  g.node('Conv', ['x', 'head.w', 'head.b'], ['u'], attrs, 'head.conv');
  let pre = 'u';
  let bn: RefHead['bn'] = null;
  if (o.bn) {
    const r = random(3);
    const vals = (lo: number, hi: number) => Float32Array.from({ length: F }, () => lo + ((r() + 1) / 2) * (hi - lo));
    const gamma = vals(0.5, 1.5), beta = vals(-0.2, 0.2), mean = vals(-0.3, 0.3), variance = vals(0.2, 2);
    for (const [name, v] of [['bn.gamma', gamma], ['bn.beta', beta], ['bn.mean', mean], ['bn.var', variance]] as const) g.initializer(floatTensor(name, [F], v));
    g.node('BatchNormalization', ['u', 'bn.gamma', 'bn.beta', 'bn.mean', 'bn.var'], ['v'], { epsilon: { f: 1e-3 }, ...(o.bnTraining ? { training_mode: 1 } : {}) }, 'head.bn');
    bn = { gamma: Float64Array.from(gamma), beta: Float64Array.from(beta), mean: Float64Array.from(mean), variance: Float64Array.from(variance), epsilon: Math.fround(1e-3) };
    pre = 'v';
  }
  if (o.residual) {
    g.node('Add', [pre, pre], ['added'], {}, 'head.add');
    pre = 'added';
  }
  const act = o.act ?? 'Relu';
  const phi = o.dropout ? 'act_out' : 'feat';
  let refAct: RefActivation = { kind: 'relu' };
  switch (act) {
    case 'Relu': g.node('Relu', [pre], [phi], {}, 'head.act'); break;
    case 'LeakyRelu': g.node('LeakyRelu', [pre], [phi], { alpha: { f: o.alpha ?? 0.1 } }, 'head.act'); refAct = { kind: 'leakyrelu', alpha: Math.fround(o.alpha ?? 0.1) }; break;
    case 'Clip':
      g.initializer(floatTensor('clip.min', [], [0])).initializer(floatTensor('clip.max', [], [0.6]));
      g.node('Clip', [pre, 'clip.min', 'clip.max'], [phi], {}, 'head.act');
      refAct = { kind: 'clip', min: 0, max: Math.fround(0.6) };
      break;
    case 'ClipAttrs': g.node('Clip', [pre], [phi], { min: { f: 0 }, max: { f: 0.6 } }, 'head.act'); refAct = { kind: 'clip', min: 0, max: Math.fround(0.6) }; break;
    case 'Relu6NoMin':
      g.initializer(floatTensor('clip.max', [], [0.6]));
      g.node('Clip', [pre, '', 'clip.max'], [phi], {}, 'head.act');
      refAct = { kind: 'clip', min: -Infinity, max: Math.fround(0.6) };
      break;
    case 'PRelu':
    case 'PReluOne': {
      const slopes = o.prelu ?? (act === 'PRelu' ? [0.1, 0, 0.3, 0.05, 0.2] : [0.25]);
      g.initializer(floatTensor('prelu.slope', act === 'PRelu' ? [F, 1, 1] : [1], slopes));
      g.node('PRelu', [pre, 'prelu.slope'], [phi], {}, 'head.act');
      refAct = { kind: 'prelu', slopes: slopes.map(Math.fround) };
      break;
    }
    case 'Sigmoid': g.node('Sigmoid', [pre], [phi], {}, 'head.act'); break;
    case 'None': g.node('Identity', [pre], [phi], {}, 'head.identity'); break;
  }
  if (o.dropout) {
    g.node('Dropout', ['act_out'], ['dropped'], {}, 'head.dropout');
    g.node('Identity', ['dropped'], ['feat'], {}, 'head.id');
  }
  const K = g.randomInit('cls.w', [C, F, 1, 1]);
  const beta = g.randomInit('cls.b', [C]);
  const resize = opset >= 11;
  g.node('Conv', ['feat', 'cls.w', 'cls.b'], [resize ? 'conv_out' : 'logits'], { kernel_shape: [1, 1] }, 'classifier');
  if (resize) {
    g.initializer(floatTensor('scales', [4], [1, 1, 2, 2]));
    g.node('Resize', ['conv_out', '', 'scales'], ['logits'], { mode: 'linear' }, 'resize');
  }
  for (const name of [...outputs, ...(o.xIsOutput ? ['x'] : [])]) g.output(name);
  const head: RefHead = {
    N: 1, Cin: CIN, H, W, F, C,
    kernelShape: [kh, kw],
    strides: o.strides ?? [1, 1],
    dilations: o.dilations ?? [1, 1],
    pads: o.pads ?? [0, 0, 0, 0],
    weight: Float64Array.from(weight), bias: Float64Array.from(bias), bn, act: refAct,
    K: Float64Array.from(K), beta: Float64Array.from(beta),
  };
  return { bytes: g.build(opset), head };
}

