/**
 * pgn2-oh / pgn2-uni against a float64 reference that forms the full gradient ∂L/∂W of the
 * second-to-last conv for every pixel (test/helpers/second-layer-reference.ts), one case against
 * finite differences of the loss, and the binding's argument checks.
 */
import { computeScores, computeSecondLayerScores, parseScore, scoreLabel, scoreName, ScoreSpec } from '../src/scoring/scores';
import { convOutputSize, parseActivation, sameConv, SecondLayerInfo, SecondLayerInputs } from '../src/scoring/second-layer';
import { native } from '../src/addon';
import { randomArray, rng } from './helpers/reference';
import {
  conditionSecondLayer, forward, Forward, labelVector, patchValues, pixelGradient, pixelLoss, pnorm, RefActivation, RefHead, referenceSecondLayer, RefSpec,
} from './helpers/second-layer-reference';
import { expectRejection, expectThrow } from './helpers/errors';

const P_VALUES = [0.1, 0.3, 0.5, 1, 2, 3];
const SPECS: RefSpec[] = P_VALUES.flatMap((p) => [
  { kind: 'pgn2-oh' as const, p },
  { kind: 'pgn2-uni' as const, p },
  { kind: 'pgn2-oh' as const, p, variant: 'code' as const },
  { kind: 'pgn2-uni' as const, p, variant: 'code' as const },
]);

interface HeadOptions {
  N?: number; Cin?: number; H?: number; W?: number; F?: number; C?: number;
  kernelShape?: [number, number];
  strides?: [number, number];
  dilations?: [number, number];
  pads?: [number, number, number, number];
  bn?: boolean;
  act?: RefActivation;
  /** weight scale (larger: more pre-activations beyond Clip's max) */
  gain?: number;
  /** logit scale */
  logitGain?: number;
}

const fround = (a: Float32Array) => Float64Array.from(a);

function randomHead(o: HeadOptions, seed: number): { head: RefHead; x: Float32Array } {
  const r = rng(seed);
  const N = o.N ?? 1, Cin = o.Cin ?? 4, H = o.H ?? 6, W = o.W ?? 7, F = o.F ?? 5, C = o.C ?? 4;
  const kernelShape = o.kernelShape ?? [3, 3];
  const fanIn = Cin * kernelShape[0] * kernelShape[1];
  const gain = (o.gain ?? 1) / Math.sqrt(fanIn);
  const head: RefHead = {
    N, Cin, H, W, F, C, kernelShape,
    strides: o.strides ?? [1, 1],
    dilations: o.dilations ?? [1, 1],
    pads: o.pads ?? [1, 1, 1, 1],
    weight: fround(randomArray(F * fanIn, r, -2 * gain, 2 * gain)),
    bias: fround(randomArray(F, r, -0.3, 0.3)),
    bn: o.bn ? {
      gamma: fround(randomArray(F, r, 0.5, 1.5)),
      beta: fround(randomArray(F, r, -0.2, 0.2)),
      mean: fround(randomArray(F, r, -0.3, 0.3)),
      variance: fround(randomArray(F, r, 0.2, 2)),
      epsilon: 1e-5,
    } : null,
    act: o.act ?? { kind: 'relu' },
    K: fround(randomArray(C * F, r, -(o.logitGain ?? 1.5), o.logitGain ?? 1.5)),
    beta: fround(randomArray(C, r, -0.5, 0.5)),
  };
  const x = randomArray(N * Cin * H * W, r, -1, 2).map((v) => (v < 0 ? 0 : v)); // post-ReLU-like input, zeros included
  return { head, x };
}

function layerOf(head: RefHead): SecondLayerInfo {
  const a = head.act;
  const bn = head.bn;
  return {
    kernelShape: head.kernelShape,
    strides: head.strides,
    dilations: head.dilations,
    pads: head.pads,
    activation: a.kind === 'prelu' ? { kind: 'prelu', slopes: Float32Array.from(a.slopes) } : a,
    bnScale: bn ? Float32Array.from(bn.gamma, (g, f) => g / Math.sqrt(bn.variance[f] + bn.epsilon)) : null,
    bnGamma: bn ? Float32Array.from(bn.gamma) : null,
  };
}

function inputsOf(head: RefHead, x: Float32Array): SecondLayerInputs {
  return { input: { data: x, dims: [head.N, head.Cin, head.H, head.W] }, kernel: Float32Array.from(head.K), layer: layerOf(head) };
}

async function native2(head: RefHead, x: Float32Array, fw: Forward, specs: (ScoreSpec | string)[], threads?: number) {
  const logits = { data: Float32Array.from(fw.z), dims: [head.N, head.C, fw.h, fw.w] };
  const features = { data: Float32Array.from(fw.phi), dims: [head.N, head.F, fw.h, fw.w] };
  return computeScores(logits, features, { scores: specs, secondLayer: inputsOf(head, x), threads });
}

/**
 * |got − ref| <= (rel + 1e-6·κ)·max(|ref|, absFloor): rel is the bound of the last-layer scores
 * (1e-5, 1e-4 for p < 0.5); κ (conditionSecondLayer) is how much the pixel's Kᵀ(s − y) cancels, a
 * float32 property of the input rather than of the code (1 when nothing cancels).
 */
function expectClose(actual: Float32Array, expected: Float64Array, label: string, rel: number, absFloor: number, kappa?: Float64Array): number {
  let worst = 0, at = -1;
  for (let i = 0; i < expected.length; i++) {
    const bound = rel + 1e-6 * (kappa ? kappa[i] : 0);
    const err = Math.abs(actual[i] - expected[i]) / Math.max(Math.abs(expected[i]), absFloor) / bound;
    if (!(err <= worst)) { worst = err; at = i; }
  }
  if (!(worst <= 1)) throw new Error(`${label}: error ${worst}× the bound at ${at} (κ ${kappa?.[at]}): got ${actual[at]}, reference ${expected[at]}`);
  return kappa ? Math.max(...kappa) : 1;
}

async function checkHead(o: HeadOptions, seed: number, absFloor = 1e-6) {
  const { head, x } = randomHead(o, seed);
  const fw = forward(head, x);
  const logits = Float32Array.from(fw.z);
  const result = await native2(head, x, fw, SPECS);
  SPECS.forEach((spec, k) => {
    const ref = referenceSecondLayer(head, x, fw, logits, spec);
    const kappa = conditionSecondLayer(head, fw, logits, spec);
    expectClose(result.maps[k].map.data, ref, `${scoreLabel(spec)} ${JSON.stringify(o)}`, spec.p < 0.5 ? 1e-4 : 1e-5, absFloor, kappa);
  });
  return { head, x, fw, result };
}

describe('pgn2 scores against the full gradient in float64', () => {
  const cases: [string, HeadOptions][] = [
    ['3x3, stride 1, pad 1, ReLU, BN folded (none)', { N: 2, Cin: 5, H: 7, W: 9, F: 6, C: 4 }],
    ['3x3, stride 2, LeakyRelu 0.1, unfolded BN', { Cin: 3, H: 9, W: 8, F: 7, C: 5, strides: [2, 2], bn: true, act: { kind: 'leakyrelu', alpha: 0.1 } }],
    ['3x3 dilation 2, pad 2, ReLU6 (Clip 0..6)', { Cin: 4, H: 8, W: 8, F: 5, C: 3, dilations: [2, 2], pads: [2, 2, 2, 2], gain: 12, act: { kind: 'clip', min: 0, max: 6 } }],
    ['5x5, asymmetric pads, PRelu per channel', { Cin: 3, H: 7, W: 6, F: 4, C: 6, kernelShape: [5, 5], pads: [2, 1, 0, 3], act: { kind: 'prelu', slopes: [0.2, 0, 0.05, 0.6] } }],
    ['1x1 second conv, no padding', { Cin: 6, H: 5, W: 5, F: 3, C: 2, kernelShape: [1, 1], pads: [0, 0, 0, 0] }],
    ['3x1 kernel, strides [1,2], dilations [2,1], BN', { Cin: 3, H: 9, W: 10, F: 4, C: 4, kernelShape: [3, 1], strides: [1, 2], dilations: [2, 1], pads: [2, 0, 2, 0], bn: true }],
    ['dilation 3 on a small input: windows partly outside on both sides', { Cin: 2, H: 4, W: 5, F: 3, C: 3, dilations: [3, 3], pads: [3, 3, 3, 3] }],
    ['stride 3, kernel 2, no padding, PRelu one slope', { Cin: 3, H: 11, W: 9, F: 5, C: 4, kernelShape: [2, 2], strides: [3, 3], pads: [0, 0, 0, 0], act: { kind: 'prelu', slopes: [0.25] } }],
    ['N=2, 19 classes, 300+ pixels per image (tile edges)', { N: 2, Cin: 3, H: 18, W: 19, F: 8, C: 19 }],
  ];
  test.each(cases)('%s', async (_title, o) => {
    await checkHead(o, 1234 + _title.length);
  });

  test('one class dominating: pgn2-oh is tiny but accurate (no underflow in s − e_ĉ)', async () => {
    const { head, x } = randomHead({ Cin: 3, H: 5, W: 5, F: 6, C: 7 }, 77);
    const fw = forward(head, x);
    const z = Float32Array.from(fw.z);
    const plane = fw.h * fw.w;
    for (let q = 0; q < plane; q++) z[2 * plane + q] = 40 + q; // class 2 wins by 30+ nats
    const specs: RefSpec[] = [{ kind: 'pgn2-oh', p: 0.5 }, { kind: 'pgn2-oh', p: 2 }, { kind: 'pgn2-uni', p: 1 }];
    const out = await computeScores({ data: z, dims: [1, head.C, fw.h, fw.w] }, { data: Float32Array.from(fw.phi), dims: [1, head.F, fw.h, fw.w] }, { scores: specs, secondLayer: inputsOf(head, x) });
    specs.forEach((spec, k) => expectClose(out.maps[k].map.data, referenceSecondLayer(head, x, fw, z, spec), scoreLabel(spec), 1e-5, 1e-30, conditionSecondLayer(head, fw, z, spec)));
    expect(out.maps[0].map.data[0]).toBeGreaterThan(0);
    expect(out.maps[0].map.data[0]).toBeLessThan(1e-10);
  });

  test('exact gradient equals central finite differences of the loss (one pixel, both labels)', async () => {
    const { head, x } = randomHead({ Cin: 3, H: 6, W: 6, F: 4, C: 3, strides: [2, 2], bn: true, act: { kind: 'leakyrelu', alpha: 0.2 } }, 4242);
    const fw = forward(head, x);
    const [n, a, b] = [0, 1, 2];
    const plane = fw.h * fw.w;
    // no pre-activation within the step of a kink
    for (let o = 0; o < head.F; o++) expect(Math.abs(fw.v[o * plane + a * fw.w + b])).toBeGreaterThan(1e-4);
    const z = Array.from({ length: head.C }, (_, c) => fw.z[c * plane + a * fw.w + b]);
    const argmax = z.indexOf(Math.max(...z));
    const out = await native2(head, x, fw, ['pgn2-oh:p=1', 'pgn2-oh:p=2', 'pgn2-uni:p=0.5', 'pgn2-uni:p=2']);
    const labels: [boolean, number[]][] = [[true, z.map((_, c) => (c === argmax ? 1 : 0))], [false, z.map(() => 1 / head.C)]];
    for (const [oneHot, y] of labels) {
      const eps = 1e-6;
      const weight = Float64Array.from(head.weight);
      const fd = new Float64Array(weight.length);
      for (let j = 0; j < weight.length; j++) {
        const w0 = weight[j];
        weight[j] = w0 + eps;
        const up = pixelLoss(head, x, weight, n, a, b, y);
        weight[j] = w0 - eps;
        const down = pixelLoss(head, x, weight, n, a, b, y);
        weight[j] = w0;
        fd[j] = (up - down) / (2 * eps);
      }
      const bn = head.bn!;
      const G = pixelGradient(head, x, fw, n, a, b, labelVector(z, oneHot, false), (f) => bn.gamma[f] / Math.sqrt(bn.variance[f] + bn.epsilon));
      let worst = 0;
      for (let j = 0; j < G.length; j++) worst = Math.max(worst, Math.abs(G[j] - fd[j]));
      expect(worst).toBeLessThan(1e-7 * Math.max(...Array.from(fd, Math.abs)) + 1e-9);
      const maps = oneHot ? [[out.maps[0], 1], [out.maps[1], 2]] as const : [[out.maps[2], 0.5], [out.maps[3], 2]] as const;
      for (const [m, p] of maps) {
        const got = m.map.data[a * fw.w + b];
        expect(Math.abs(got - pnorm(fd, p)) / pnorm(fd, p)).toBeLessThan(1e-5);
      }
    }
  });

  test('the factorization: ‖∇W‖ = ‖g‖·‖patch‖ and zero input gives exactly 0', async () => {
    const { head, x } = randomHead({ Cin: 2, H: 5, W: 5, F: 3, C: 3 }, 5);
    const fw = forward(head, x);
    const zero = new Float32Array(x.length);
    const out = await computeScores({ data: Float32Array.from(fw.z), dims: [1, 3, 5, 5] }, { data: Float32Array.from(fw.phi), dims: [1, 3, 5, 5] }, {
      scores: ['pgn2-oh:p=0.3', 'pgn2-uni:p=2:variant=code'], secondLayer: { ...inputsOf(head, x), input: { data: zero, dims: [1, 2, 5, 5] } },
    });
    for (const m of out.maps) expect(m.map.data.every((v) => v === 0)).toBe(true);
    // the patch factor itself: one pixel by hand
    const patch = patchValues(head, x, 0, 0, 0);
    expect(patch.length).toBe(2 * 9);
    expect(patch[0]).toBe(0); // top-left corner of the padded window
  });

  test('mixed with last-layer scores in one call: request order kept, prediction from the logits', async () => {
    const { head, x } = randomHead({ N: 2, Cin: 3, H: 6, W: 6, F: 4, C: 5 }, 9);
    const fw = forward(head, x);
    const specs = ['entropy', 'pgn2-oh:p=1', 'pgn-oh:p=1', 'pgn2-uni:p=2:variant=code', 'msp'];
    const out = await native2(head, x, fw, specs);
    expect(out.maps.map((m) => m.name)).toEqual(['entropy', 'pgn2-oh_p1', 'pgn-oh_p1', 'pgn2-uni_p2_code', 'msp']);
    const alone = await computeScores({ data: Float32Array.from(fw.z), dims: [2, 5, 6, 6] }, { data: Float32Array.from(fw.phi), dims: [2, 4, 6, 6] }, { scores: ['entropy', 'pgn-oh:p=1', 'msp'] });
    expect(out.maps[0].map.data).toEqual(alone.maps[0].map.data);
    expect(out.maps[2].map.data).toEqual(alone.maps[1].map.data);
    expect(out.maps[4].map.data).toEqual(alone.maps[2].map.data);
    expect(out.prediction!.data).toEqual(alone.prediction!.data);
    const only = await computeSecondLayerScores({ data: Float32Array.from(fw.z), dims: [2, 5, 6, 6] }, { data: Float32Array.from(fw.phi), dims: [2, 4, 6, 6] }, inputsOf(head, x), { scores: ['pgn2-oh:p=1'] });
    expect(only.maps[0].map.data).toEqual(out.maps[1].map.data);
    expect(() => computeSecondLayerScores({ data: Float32Array.from(fw.z), dims: [2, 5, 6, 6] }, { data: Float32Array.from(fw.phi), dims: [2, 4, 6, 6] }, inputsOf(head, x), { scores: ['entropy'] })).toThrow(RangeError);
  });

  test('thread counts do not change results', async () => {
    const { head, x } = randomHead({ N: 2, Cin: 4, H: 30, W: 41, F: 6, C: 5 }, 31);
    const fw = forward(head, x);
    const specs = ['pgn2-oh:p=0.3', 'pgn2-uni:p=2', 'pgn2-oh:p=1:variant=code'];
    const [one, three] = await Promise.all([native2(head, x, fw, specs, 1), native2(head, x, fw, specs, 3)]);
    for (let k = 0; k < specs.length; k++) expect(three.maps[k].map.data).toEqual(one.maps[k].map.data);
  });
});

describe('names and helpers', () => {
  test('parse and name pgn2 scores', () => {
    expect(parseScore('pgn2-oh:p=0.5')).toEqual({ kind: 'pgn2-oh', p: 0.5, variant: 'exact' });
    expect(parseScore('pgn2-uni')).toEqual({ kind: 'pgn2-uni', p: 0.5, variant: 'exact' });
    expect(scoreName('pgn2-uni:p=2:variant=code')).toBe('pgn2-uni_p2_code');
    expect(scoreLabel({ kind: 'pgn2-oh', p: 1 })).toBe('pgn2-oh:p=1');
    expect(() => parseScore('pgn2-oh:p=0')).toThrow(RangeError);
    expect(() => parseScore('pgn3-oh')).toThrow(RangeError);
  });
  test('activations and geometry', () => {
    expect(parseActivation('relu')).toEqual({ kind: 'relu' });
    expect(parseActivation('relu6')).toEqual({ kind: 'clip', min: 0, max: 6 });
    expect(parseActivation('leakyrelu:0.2')).toEqual({ kind: 'leakyrelu', alpha: 0.2 });
    expect(parseActivation('clip:0:inf')).toEqual({ kind: 'clip', min: 0, max: Infinity });
    for (const bad of ['sigmoid', 'leakyrelu:-1', 'clip:6:0', 'clip:0', 'prelu:x', 'relu:1']) expect(() => parseActivation(bad)).toThrow(RangeError);
    expect(sameConv(3, 2)).toEqual({ kernelShape: [3, 3], strides: [1, 1], dilations: [2, 2], pads: [2, 2, 2, 2] });
    expect(convOutputSize(9, 1, 1, 1, 3, 2)).toBe(5);
  });
});

describe('binding validation', () => {
  const N = 1, C = 3, F = 2, Cin = 2, h = 4, w = 4;
  const base = () => ({
    logits: new Float32Array(N * C * h * w),
    logitsDims: [N, C, h, w],
    features: new Float32Array(N * F * h * w).fill(1),
    featuresDims: [N, F, h, w],
    input: new Float32Array(N * Cin * h * w).fill(1),
    inputDims: [N, Cin, h, w],
    kernel: new Float32Array(C * F).fill(0.5),
    kernelShape: [3, 3],
    strides: [1, 1],
    dilations: [1, 1],
    pads: [1, 1, 1, 1],
    scores: [{ kind: 'pgn2-oh', p: 0.5 }],
  });
  const call = (o: Record<string, unknown>) => native.secondLayerScores(o as never);

  test('a valid call works', async () => {
    const out = await call(base());
    expect(out.maps).toHaveLength(1);
    expect(out.prediction).toHaveLength(h * w);
  });

  test.each([
    ['kernel', new Float64Array(6), 'TypeError', /kernel must be a Float32Array/],
    ['kernel', new Float32Array(5), 'RangeError', /kernel has 5 values but K \[C, F\] needs 3 × 2/],
    ['kernelShape', [3], 'RangeError', /kernelShape must have 2 entries/],
    ['kernelShape', undefined, 'TypeError', /kernelShape is required/],
    ['strides', [1, 0], 'RangeError', /strides\[1\] must be an integer in \[1, 1024\]/],
    ['pads', [1, 1, 1, -1], 'RangeError', /pads\[3\]/],
    ['pads', [0, 0, 0, 0], 'RangeError', /maps the input's 4x4 to 2x2, but the logits and features are 4x4/],
    ['inputDims', [1, 1, 4, 8], 'RangeError', /maps the input's 4x8 to 4x8, but the logits and features are 4x4/],
    ['input', new Float32Array(3), 'RangeError', /input has 3 elements/],
    ['featuresDims', [1, 2, 8, 2], 'RangeError', /featuresDims \[1, 2, 8, 2\] must match logitsDims/],
    ['activation', { kind: 'sigmoid' }, 'RangeError', /activation.kind must be relu, leakyrelu, clip or prelu/],
    ['activation', { kind: 'leakyrelu', alpha: -0.1 }, 'RangeError', /alpha must be finite and >= 0/],
    ['activation', { kind: 'clip', min: 6, max: 0 }, 'RangeError', /min must be below/],
    ['activation', { kind: 'prelu', slopes: new Float32Array(3) }, 'RangeError', /slopes has 3 values; 1 or 2/],
    ['activation', { kind: 'prelu', slopes: new Float32Array([0.1, -1]) }, 'RangeError', /slopes\[1\].*>= 0/],
    ['activation', 'relu', 'TypeError', /activation must be an object/],
    ['bnScale', new Float32Array([1, NaN]), 'RangeError', /bnScale\[1\] is not finite/],
    ['codeScale', new Float32Array(3), 'RangeError', /codeScale has 3 elements/],
    ['scores', [], 'RangeError', /at least one pgn2/],
    ['scores', [{ kind: 'pgn-oh', p: 1 }], 'RangeError', /kind must be pgn2-oh or pgn2-uni/],
    ['scores', [{ kind: 'pgn2-oh', p: 0 }], 'RangeError', /p must be a number in \(0, 1e6\]/],
    ['scores', [{ kind: 'pgn2-uni', p: 1, variant: 'fast' }], 'RangeError', /variant must be/],
    ['scores', [{ kind: 'pgn2-uni', p: 50 }], 'RangeError', /^scores\[0\]\.p must be in \[0\.1, 8\] for the second-layer scores .*, got 50$/],
    ['scores', [{ kind: 'pgn2-oh', p: 0.01 }], 'RangeError', /^scores\[0\]\.p must be in \[0\.1, 8\] for the second-layer scores .*, got 0\.01$/],
    ['backend', 'tpu', 'RangeError', /backend must be "cpu" or "cuda"/],
  ])('%s = %p → %s', (key, value, type, message) => {
    expectThrow(() => call({ ...base(), [key]: value }), type, message);
  });

  test('a non-finite value in x rejects with a RangeError naming the tensor and index', async () => {
    const o = base();
    o.input[7] = NaN;
    await expectRejection(call(o), 'RangeError', /input contain a non-finite value \(NaN or Inf\) at flat index 7/);
    const p = base();
    p.features[3] = Infinity;
    await expectRejection(call(p), 'RangeError', /features contain a non-finite value .* at flat index 3/);
  });

  test('computeScores: pgn2 without secondLayer is a TypeError saying what is needed', async () => {
    await expect(computeScores({ data: new Float32Array(N * C * h * w), dims: [N, C, h, w] }, { data: new Float32Array(N * F * h * w), dims: [N, F, h, w] }, { scores: ['pgn2-oh'] }))
      .rejects.toThrow(/pgn2-\* scores need secondLayer/);
  });
});
