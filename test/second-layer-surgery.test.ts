/**
 * Graph surgery for the pgn2-* scores: find conv → [BatchNormalization] → activation before the
 * final 1x1 conv, read the conv's geometry, the activation and BN's scale, expose the conv's input
 * x; then the scores from what ONNX Runtime returns match the float64 full-gradient reference
 * (which recomputes φ from x with the weights: a check of the geometry read from the graph).
 */
import * as ort from 'onnxruntime-node';
import { analyzeModel, exposeFeatures } from '../src/model/graph-surgery';
import { ModelError } from '../src/common/errors';
import { computeScores } from '../src/scoring/scores';
import { buildSegModel, maxAbsDiff, random } from './helpers/onnx-builder';
import { forward, referenceSecondLayer, RefSpec } from './helpers/second-layer-reference';
import { Act, buildHeadModel, CIN, F, H, HeadModel, W } from './helpers/head-model';

function expectModelError(fn: () => unknown, message: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(ModelError);
  expect((caught as Error).message).toMatch(message);
}

const SPECS: RefSpec[] = [
  { kind: 'pgn2-oh', p: 0.5 }, { kind: 'pgn2-uni', p: 1 }, { kind: 'pgn2-oh', p: 2 }, { kind: 'pgn2-uni', p: 2, variant: 'code' },
];

describe('second-layer surgery on supported heads', () => {
  const cases: [string, HeadModel][] = [
    ['3x3 pad 1 → Relu (BN folded)', { pads: [1, 1, 1, 1] }],
    ['3x3 → BatchNormalization (unfolded) → Relu', { pads: [1, 1, 1, 1], bn: true }],
    ['3x3 stride 2 → LeakyRelu 0.2', { pads: [1, 1, 1, 1], strides: [2, 2], act: 'LeakyRelu', alpha: 0.2 }],
    ['3x3 dilation 2 → BN → Clip(0, 0.6) from inputs → Dropout → Identity', { pads: [2, 2, 2, 2], dilations: [2, 2], bn: true, act: 'Clip', dropout: true }],
    ['Clip with min/max attributes (opset 10)', { pads: [1, 1, 1, 1], act: 'ClipAttrs', opset: 10 }],
    ['Clip without min (-inf)', { pads: [1, 1, 1, 1], act: 'Relu6NoMin' }],
    ['5x3 asymmetric pads → PRelu per channel', { kernel: [5, 3], pads: [2, 0, 1, 2], act: 'PRelu' }],
    ['auto_pad SAME_UPPER, 4x4 kernel → PRelu one slope', { kernel: [4, 4], autoPad: 'SAME_UPPER', act: 'PReluOne' }],
    ['x already a graph output', { pads: [1, 1, 1, 1], xIsOutput: true }],
  ];

  test.each(cases)('%s', async (_title, o) => {
    const { bytes, head } = buildHeadModel(o);
    const a = analyzeModel(bytes, { secondLayer: true });
    const sl = a.secondLayer!;
    expect(sl.conv.name).toBe('head.conv');
    expect(sl.inputTensor).toBe('x');
    expect([sl.conv.inChannels, sl.conv.outChannels]).toEqual([CIN, F]);
    expect(sl.activation.name).toBe('head.act');
    expect(sl.via).toEqual(o.dropout ? ['Dropout', 'Identity'] : []);
    expect(sl.batchNorm?.name ?? null).toBe(o.bn ? 'head.bn' : null);
    expect(sl.inputAlreadyOutput).toBe(!!o.xIsOutput);
    const expectedPads = o.autoPad ? [1, 1, 2, 2] : head.pads;
    expect(sl.layer).toMatchObject({ kernelShape: head.kernelShape, strides: head.strides, dilations: head.dilations, pads: expectedPads });
    head.pads = sl.layer.pads;
    if (o.bn) {
      const bn = head.bn!;
      for (let f = 0; f < F; f++) expect(sl.layer.bnScale![f]).toBeCloseTo(bn.gamma[f] / Math.sqrt(bn.variance[f] + bn.epsilon), 6);
      expect(Array.from(sl.layer.bnGamma!)).toEqual(Array.from(Float32Array.from(bn.gamma)));
    } else {
      expect(sl.layer.bnScale ?? null).toBeNull();
    }

    const patched = exposeFeatures(bytes, a);
    const again = analyzeModel(patched, { secondLayer: true });
    expect(again.secondLayer!.inputAlreadyOutput).toBe(true);
    const session = await ort.InferenceSession.create(patched);
    const rand = random(5);
    const input = new ort.Tensor('float32', Float32Array.from({ length: 3 * H * W }, rand), [1, 3, H, W]);
    let out: Record<string, ort.Tensor>;
    try {
      out = await session.run({ input }, [a.conv.output, a.featureTensors[0], sl.inputTensor, 'logits']);
    } finally {
      await session.release();
    }
    const x = out.x!.data as Float32Array;
    const phi = out[a.featureTensors[0]]!;
    const z = out[a.conv.output]!;
    // the exposed x and the geometry read from the graph reproduce φ and z in float64
    const fw = forward(head, x);
    expect(phi.dims).toEqual([1, F, fw.h, fw.w]);
    expect(maxAbsDiff(phi.data as Float32Array, fw.phi)).toBeLessThan(1e-5);
    expect(maxAbsDiff(z.data as Float32Array, fw.z)).toBeLessThan(1e-5);
    // ... and the scores computed from them match the full-gradient reference
    const logits = z.data as Float32Array;
    const res = await computeScores({ data: logits, dims: [...z.dims] }, { data: phi.data as Float32Array, dims: [...phi.dims] }, {
      scores: SPECS,
      secondLayer: { input: { data: x, dims: [...out.x!.dims] }, kernel: a.kernel, layer: sl.layer },
    });
    SPECS.forEach((spec, k) => {
      const ref = referenceSecondLayer(head, x, fw, logits, spec);
      for (let i = 0; i < ref.length; i++) expect(Math.abs(res.maps[k].map.data[i] - ref[i])).toBeLessThanOrEqual(1e-4 * Math.max(ref[i], 1e-3));
    });
  });

  test('without the option nothing changes: no secondLayer, exposeFeatures adds φ and z only', () => {
    const { bytes } = buildHeadModel({ pads: [1, 1, 1, 1] });
    const a = analyzeModel(bytes);
    expect(a.secondLayer).toBeUndefined();
    expect(analyzeModel(exposeFeatures(bytes, a)).outputs).toEqual(['logits', 'feat', 'conv_out']);
    const b = analyzeModel(bytes, { secondLayer: true });
    expect(analyzeModel(exposeFeatures(bytes, b)).outputs).toEqual(['logits', 'feat', 'conv_out', 'x']);
  });

  test('a one-conv backbone: x is the model input, nothing to expose for it', () => {
    const { bytes } = buildSegModel();
    const a = analyzeModel(bytes, { secondLayer: true });
    expect(a.secondLayer!.inputIsModelInput).toBe(true);
    expect(a.secondLayer!.layer).toMatchObject({ kernelShape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], activation: { kind: 'relu' } });
    expect(analyzeModel(exposeFeatures(bytes, a)).outputs).toEqual(['logits', 'feat', 'conv_out']);
  });
});

describe('second-layer surgery refuses other heads, naming what it found', () => {
  test.each([
    ['a smooth activation', { act: 'Sigmoid' as Act }, /the input of the final conv Conv node "classifier" comes from Sigmoid node "head.act" \(its derivative needs the pre-activation.*\): pgn2 scores need Relu, LeakyRelu, Clip/],
    ['no activation', { act: 'None' as Act }, /comes from Conv node "head.conv" \(no activation in between\)/],
    ['an Add between conv and activation', { residual: true }, /Relu node "head.act" takes its input from Add node "head.add": pgn2 scores need a Conv there/],
    ['a grouped conv', { group: 2 }, /Conv node "head.conv" has group 2: pgn2 scores need group 1/],
    ['a negative LeakyRelu slope', { act: 'LeakyRelu' as Act, alpha: -0.1 }, /LeakyRelu node "head.act" has alpha -0.1.*slope >= 0/],
    ['a negative PRelu slope', { act: 'PRelu' as Act, prelu: [0.1, -0.2, 0, 0, 0] }, /PRelu node "head.act" has slope -0.2.* for channel 1/],
    ['BatchNormalization in training mode', { bn: true, bnTraining: true }, /BatchNormalization node "head.bn" is in training mode/],
    ['auto_pad SAME_UPPER with stride 2', { autoPad: 'SAME_UPPER', strides: [2, 2] as [number, number] }, /Conv node "head.conv" has auto_pad SAME_UPPER with strides \[2,2\]/],
  ])('%s', (_title, o, message) => {
    const { bytes } = buildHeadModel(o);
    expectModelError(() => analyzeModel(bytes, { secondLayer: true, source: 'm.onnx' }), message);
    expect(() => analyzeModel(bytes)).not.toThrow(); // the last-layer scores still work
  });
});
