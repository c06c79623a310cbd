import {
  buildSegModel, conv1x1, floatTensor, GraphBuilder, maxAbsDiff, random, SegModelOptions,
} from './helpers/onnx-builder';
import * as ort from 'onnxruntime-node';
import { analyzeModel, exposeFeatures } from '../src/model/graph-surgery';
import { ModelError } from '../src/common/errors';
import { onnx } from '../src/model/onnx';

type Outputs = Record<string, ort.Tensor>;

async function run(bytes: Uint8Array, input: ort.Tensor, fetches?: string[]): Promise<Outputs> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    return await (fetches ? session.run({ input }, fetches) : session.run({ input }));
  } finally {
    await session.release();
  }
}

function randomInput(dims: number[], seed = 7): ort.Tensor {
  const rand = random(seed);
  const n = dims.reduce((a, b) => a * b, 1);
  return new ort.Tensor('float32', Float32Array.from({ length: n }, rand), dims);
}

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

describe('analyzeModel + exposeFeatures on supported models', () => {
  const cases: [string, SegModelOptions, string[]][] = [
    ['torchvision DeepLabV3 style: Conv3x3 → Relu → Conv1x1 → Resize (scales)', {}, ['Resize']],
    ['Resize with a sizes input', { head: 'resize-sizes' }, ['Resize']],
    ['mmsegmentation conv_seg as the output, Dropout/Identity before it', { head: 'none', dropout: true, finalConvName: 'decode_head.conv_seg' }, []],
    ['final conv without bias', { bias: false }, ['Resize']],
    ['dynamic N, H, W', { dynamic: true }, ['Resize']],
    ['Transpose to NHWC before the output', { head: 'transpose' }, ['Transpose']],
    ['Cast before the output', { head: 'cast' }, ['Cast']],
    ['Reshape and Identity before the output', { head: 'reshape-identity' }, ['Reshape', 'Identity']],
    ['weight and bias from Constant nodes', { weightVia: 'constant' }, ['Resize']],
    ['weight and bias through Identity nodes', { weightVia: 'identity' }, ['Resize']],
    ['weights stored in float_data', { weightStorage: 'typed' }, ['Resize']],
    ['value_info recorded by the exporter', { withValueInfo: true, dynamic: true }, ['Resize']],
  ];

  test.each(cases)('%s', async (_title, options, chain) => {
    const { bytes, kernel, bias } = buildSegModel(options);
    const a = analyzeModel(bytes);
    expect(a.input.name).toBe('input');
    expect(a.input.shape).toEqual(options.dynamic ? ['N', 3, 'H', 'W'] : [1, 3, 16, 16]);
    expect(a.logitsOutput).toBe('logits');
    expect(a.conv.input).toBe('feat');
    expect(a.conv.name).toBe(options.finalConvName ?? 'classifier.4');
    expect(a.chain).toEqual(chain);
    expect([a.numClasses, a.featureChannels]).toEqual([5, 8]);
    expect(Array.from(a.kernel)).toEqual(Array.from(kernel));
    expect(a.bias && Array.from(a.bias)).toEqual(bias && Array.from(bias));
    expect(a.featuresAlreadyOutput).toBe(false);
    expect(a.convOutputIsOutput).toBe(options.head === 'none');

    const patched = exposeFeatures(bytes, a);
    const again = analyzeModel(patched);
    expect(again.outputs).toEqual(options.head === 'none' ? ['logits', 'feat'] : ['logits', 'feat', 'conv_out']);
    expect(again.featuresAlreadyOutput && again.convOutputIsOutput).toBe(true);

    const input = randomInput(options.dynamic ? [3, 3, 12, 20] : [1, 3, 16, 16]);
    const original = await run(bytes, input);
    const out = await run(patched, input, ['logits', a.conv.output, 'feat']);
    const reference = await run(buildSegModel({ ...options, outputs: ['feat'] }).bytes, input);
    // (a) the model's own output is untouched by the surgery
    expect(out.logits!.dims).toEqual(original.logits!.dims);
    expect(maxAbsDiff(out.logits!.data as Float32Array, original.logits!.data as Float32Array)).toBeLessThanOrEqual(1e-6);
    // (b) the exposed features are the conv's input, computed by a model that outputs it directly
    const feat = out.feat!;
    expect(feat.dims).toEqual([input.dims[0], 8, input.dims[2]! / 2, input.dims[3]! / 2]);
    expect(maxAbsDiff(feat.data as Float32Array, reference.feat!.data as Float32Array)).toBeLessThanOrEqual(1e-6);
    // (c) and K·φ + β reproduces the exposed conv output
    const z = conv1x1(a.kernel, a.bias, feat.data as Float32Array, feat.dims);
    expect(maxAbsDiff(z, out[a.conv.output]!.data as Float32Array)).toBeLessThanOrEqual(1e-5);
  });

  test('float16 final conv: weights converted to float32, outputs exposed as float16', async () => {
    const { bytes, kernel, bias } = buildSegModel({ weightStorage: 'fp16' });
    const a = analyzeModel(bytes);
    expect(a.elemType).toBe(onnx.TensorProto.DataType.FLOAT16);
    expect([a.conv.input, a.conv.output]).toEqual(['feat_h', 'conv_out_h']);
    expect(a.chain).toEqual(['Cast', 'Resize']);
    expect(maxAbsDiff(a.kernel, kernel)).toBeLessThan(2.5e-4); // half precision for |w| ≤ 0.5
    expect(maxAbsDiff(a.bias!, bias!)).toBeLessThan(2.5e-4);
    const out = await run(exposeFeatures(bytes, a), randomInput([1, 3, 16, 16]), ['feat_h', 'conv_out_h']);
    expect([out.feat_h!.type, out.conv_out_h!.type]).toEqual(['float16', 'float16']);
    expect(out.feat_h!.dims).toEqual([1, 8, 8, 8]);
  });

  test('features already an output (found, or named via featuresOutput) need no features surgery', async () => {
    const both = buildSegModel({ head: 'none', outputs: ['logits', 'feat'] }).bytes;
    const a = analyzeModel(both);
    expect(a.featuresAlreadyOutput && a.convOutputIsOutput).toBe(true);
    expect(exposeFeatures(both, a)).toBe(both);

    const renamed = buildSegModel({ outputs: ['logits', 'feat'] }).bytes;
    const b = analyzeModel(renamed, { featuresOutput: 'feat' });
    expect(b.featureTensors[0]).toBe('feat');
    const patched = exposeFeatures(renamed, b);
    expect(analyzeModel(patched).outputs).toEqual(['logits', 'feat', 'conv_out']);
    expectModelError(() => analyzeModel(renamed, { featuresOutput: 'phi' }), /no output "phi".*"logits", "feat"/);
  });

  test('the splice keeps fields that follow the graph and fields unknown to the ONNX 1.10 schema', async () => {
    const model = onnx.ModelProto.decode(buildSegModel().bytes);
    // C++ protobuf writes fields in number order: graph (7) before opset_import (8) and later fields
    const graphOnly = onnx.ModelProto.encode({ graph: model.graph }).finish();
    const rest = onnx.ModelProto.encode({ irVersion: model.irVersion, opsetImport: model.opsetImport }).finish();
    const unknown = Uint8Array.of(0xf0, 0x01, 0x2a); // field 30 = 42, a field onnx-proto does not know
    const bytes = Buffer.concat([graphOnly, rest, unknown]);
    const patched = exposeFeatures(bytes, analyzeModel(bytes));
    const tail = Buffer.concat([rest, unknown]);
    expect(Buffer.from(patched.subarray(patched.length - tail.length))).toEqual(tail);
    const out = await run(patched, randomInput([1, 3, 16, 16]), ['feat', 'conv_out']);
    expect(out.feat!.dims).toEqual([1, 8, 8, 8]);
    expect(out.conv_out!.dims).toEqual([1, 5, 8, 8]);
  });

  test('several outputs: the one ending in a 1x1 conv is picked, or the named one', () => {
    const g = new GraphBuilder(3);
    g.input('input', [1, 3, 8, 8]);
    g.randomInit('w', [4, 3, 1, 1]);
    g.node('Conv', ['input', 'w'], ['z'], {}, 'cls');
    g.node('Softmax', ['z'], ['probs'], { axis: 1 }, 'softmax');
    g.node('Identity', ['z'], ['logits']);
    g.output('probs').output('logits');
    const bytes = g.build();
    expect(analyzeModel(bytes).logitsOutput).toBe('logits');
    expect(analyzeModel(bytes, { logitsOutput: 'logits' }).conv.name).toBe('cls');
    expectModelError(() => analyzeModel(bytes, { logitsOutput: 'probs' }), /is Softmax node "softmax": the model outputs probabilities/);
    expectModelError(() => analyzeModel(bytes, { logitsOutput: 'out' }), /no output "out"; its outputs are "probs", "logits"/);
  });
});

/** input → [layers] → Resize → "logits", for the refusals. */
function modelEndingIn(build: (g: GraphBuilder) => string, resize = true): Uint8Array {
  const g = new GraphBuilder(5);
  g.input('input', [1, 3, 8, 8]);
  const last = build(g);
  if (resize) {
    g.initializer(floatTensor('scales', [4], [1, 1, 2, 2]));
    g.node('Resize', [last, '', 'scales'], ['logits'], { mode: 'linear' }, 'resize_1');
  } else g.node('Identity', [last], ['logits'], {}, 'id');
  g.output('logits');
  return g.build();
}

describe('analyzeModel refuses unusable models with a ModelError saying why', () => {
  test('final 3x3 conv', () => {
    const bytes = modelEndingIn((g) => {
      g.randomInit('w', [4, 3, 3, 3]);
      g.node('Conv', ['input', 'w'], ['z'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, 'head');
      return 'z';
    });
    expectModelError(
      () => analyzeModel(bytes, { source: 'm.onnx' }),
      /^m\.onnx: final layer of output "logits" is Conv node "head" with a 3x3 kernel \(reached via Resize "resize_1"\): pgn-ood needs a 1x1 Conv with group 1 producing the logits$/,
    );
  });

  test('ConvTranspose', () => {
    const bytes = modelEndingIn((g) => {
      g.randomInit('w', [3, 4, 2, 2]);
      g.node('ConvTranspose', ['input', 'w'], ['z'], { strides: [2, 2] }, 'decoder.up');
      return 'z';
    });
    expectModelError(
      () => analyzeModel(bytes),
      /final layer of output "logits" is ConvTranspose node "decoder.up" \(reached via Resize "resize_1"\): pgn-ood needs a 1x1 Conv with group 1/,
    );
  });

  test('Gemm classification head', () => {
    const bytes = modelEndingIn((g) => {
      g.node('Flatten', ['input'], ['flat'], { axis: 1 }, 'flatten');
      g.randomInit('w', [10, 192]);
      g.node('Gemm', ['flat', 'w'], ['z'], { transB: 1 }, 'fc');
      return 'z';
    }, false);
    expectModelError(() => analyzeModel(bytes), /is Gemm node "fc" \(reached via Identity "id"\): pgn-ood needs a 1x1 Conv/);
  });

  test('ArgMax output', () => {
    const bytes = modelEndingIn((g) => {
      g.randomInit('w', [4, 3, 1, 1]);
      g.node('Conv', ['input', 'w'], ['z'], {}, 'cls');
      g.node('ArgMax', ['z'], ['pred'], { axis: 1 }, 'argmax');
      return 'pred';
    }, false);
    expectModelError(() => analyzeModel(bytes), /is ArgMax node "argmax" .*: the model outputs the predicted class \(argmax\), not the logits/);
  });

  test('grouped 1x1 conv', () => {
    const bytes = modelEndingIn((g) => {
      g.randomInit('w0', [4, 3, 1, 1]);
      g.node('Conv', ['input', 'w0'], ['h'], {}, 'stem');
      g.randomInit('w', [6, 2, 1, 1]);
      g.node('Conv', ['h', 'w'], ['z'], { group: 2 }, 'grouped');
      return 'z';
    });
    expectModelError(() => analyzeModel(bytes), /is Conv node "grouped" with group 2 \(reached via Resize "resize_1"\)/);
  });

  test('padded 1x1 conv', () => {
    const bytes = modelEndingIn((g) => {
      g.randomInit('w', [4, 3, 1, 1]);
      g.node('Conv', ['input', 'w'], ['z'], { pads: [1, 1, 1, 1] }, 'padded');
      return 'z';
    });
    expectModelError(() => analyzeModel(bytes), /is Conv node "padded" with pads \[1,1,1,1\]/);
  });

  test('garbage, truncated, empty and non-ONNX protobuf bytes', () => {
    const valid = buildSegModel().bytes;
    const rand = random(99);
    const garbage = Uint8Array.from({ length: 1000 }, () => Math.floor((rand() + 1) * 128));
    expectModelError(() => analyzeModel(garbage, { source: 'x.onnx' }), /^x\.onnx: not an ONNX model/);
    expectModelError(() => analyzeModel(Buffer.from('{"not": "onnx"}')), /not an ONNX model/);
    expectModelError(() => analyzeModel(valid.subarray(0, valid.length >> 1)), /not an ONNX model, or truncated \(protobuf decode failed: /);
    expectModelError(() => analyzeModel(new Uint8Array(0)), /not an ONNX model \(empty file\)/);
    expectModelError(() => analyzeModel(Uint8Array.of(0x08, 0x07)), /ONNX model has no graph/);
  });
});

describe('the features output named by a card must be the final conv\'s input (issue 20, item 11)', () => {
  /** buildSegModel with extra graph outputs: its conv output, a pre-activation, an Identity of φ. */
  function withOutputs(): Uint8Array {
    const g = new GraphBuilder(8);
    g.input('input', [1, 3, 8, 8]);
    g.randomInit('w0', [6, 3, 1, 1]);
    g.node('Conv', ['input', 'w0'], ['pre'], {}, 'backbone');
    g.node('Relu', ['pre'], ['feat'], {}, 'relu');
    g.node('Identity', ['feat'], ['feat_copy'], {}, 'copy');
    g.node('Dropout', ['feat'], ['feat_drop'], {}, 'drop');
    g.randomInit('w', [4, 6, 1, 1]);
    g.node('Conv', ['feat_drop', 'w'], ['logits'], {}, 'cls');
    g.output('logits').output('pre', [1, 6, 8, 8]).output('feat_copy', [1, 6, 8, 8]).output('feat', [1, 7, 8, 8]);
    return g.build();
  }

  test('φ itself or through Identity/Dropout is accepted; the conv output and a pre-activation are refused', () => {
    const bytes = withOutputs();
    expect(analyzeModel(bytes, { featuresOutput: 'feat_copy' }).featureTensors[0]).toBe('feat_copy');
    expectModelError(() => analyzeModel(bytes, { featuresOutput: 'logits' }),
      /the features output "logits" is not the input of the final conv Conv node "cls" \("feat_drop"\) but comes from Conv node "cls"/);
    expectModelError(() => analyzeModel(bytes, { featuresOutput: 'pre' }), /the features output "pre" is not the input of the final conv .* comes from Conv node "backbone"/);
  });

  test('a channel count that differs from the kernel\'s F is refused', () => {
    expectModelError(() => analyzeModel(withOutputs(), { featuresOutput: 'feat' }), /the features output "feat" has 7 channels, but the final conv's kernel takes 6/);
  });
});

describe('graph analysis is linear and iterative in pass-through chains (issue 20, item 18)', () => {
  /** input → Conv1x1(weight behind `weightChain` Identity nodes) → `outChain` Identity nodes → output. */
  function chain(weightChain: number, outChain: number): Uint8Array {
    const g = new GraphBuilder(2);
    g.input('input', [1, 3, 4, 4]);
    g.initializer(floatTensor('w0', [2, 3, 1, 1], [1, 2, 3, 4, 5, 6]));
    for (let i = 0; i < weightChain; i++) g.node('Identity', [`w${i}`], [`w${i + 1}`]);
    g.node('Conv', ['input', `w${weightChain}`], ['c0'], {}, 'cls');
    for (let i = 0; i < outChain; i++) g.node('Identity', [`c${i}`], [`c${i + 1}`]);
    g.output(`c${outChain}`);
    return g.build();
  }

  test.each([5000, 20000, 100000])('%i Identity nodes after the conv and before its weight', (n) => {
    const a = analyzeModel(chain(n, n));
    expect(a.conv.name).toBe('cls');
    expect(a.chain).toHaveLength(n);
    expect(Array.from(a.kernel)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  test('a refusal at the end of a 100000-node chain names its ends, not every node', () => {
    const g = new GraphBuilder(2);
    g.input('input', [1, 3, 4, 4]);
    g.node('Relu', ['input'], ['c0'], {}, 'act');
    for (let i = 0; i < 100000; i++) g.node('Identity', [`c${i}`], [`c${i + 1}`]);
    g.output('c100000');
    let message = '';
    try { analyzeModel(g.build()); } catch (err) { message = (err as Error).message; }
    expect(message).toMatch(/is Relu node "act" \(reached via Identity #100000 \(unnamed\) ← .* … 99992 more … .* ← Identity #1 \(unnamed\)\)/);
    expect(message.length).toBeLessThan(1000);
  });
});

describe('summed heads: the Add of 1x1 convs at one resolution (LRASPP)', () => {
  /** input → two backbone convs → two 1x1 classifiers → Add [→ Add third] → Resize → logits. */
  function summed(o: { third?: 'conv' | 'relu'; classesB?: number } = {}): Uint8Array {
    const g = new GraphBuilder(4);
    g.input('input', [1, 3, 8, 8]);
    g.randomInit('wa', [3, 3, 1, 1]);
    g.node('Conv', ['input', 'wa'], ['low'], {}, 'low_backbone');
    g.randomInit('wb', [2, 3, 1, 1]);
    g.node('Conv', ['input', 'wb'], ['high'], {}, 'high_backbone');
    g.randomInit('ka', [4, 3, 1, 1]);
    g.randomInit('ba', [4]);
    g.node('Conv', ['low', 'ka', 'ba'], ['za'], {}, 'low_classifier');
    g.randomInit('kb', [o.classesB ?? 4, 2, 1, 1]);
    g.randomInit('bb', [o.classesB ?? 4]);
    g.node('Conv', ['high', 'kb', 'bb'], ['zb'], {}, 'high_classifier');
    g.node('Add', ['za', 'zb'], ['sum'], {}, 'add');
    let last = 'sum';
    if (o.third === 'conv') {
      g.randomInit('kc', [4, 3, 1, 1]);
      g.node('Conv', ['input', 'kc'], ['zc'], {}, 'third_classifier');
      g.node('Add', ['sum', 'zc'], ['sum2'], {}, 'add2');
      last = 'sum2';
    } else if (o.third === 'relu') {
      g.node('Relu', ['low'], ['r'], {}, 'relu');
      g.node('Add', ['sum', 'r'], ['sum2'], {}, 'add2');
      last = 'sum2';
    }
    g.initializer(floatTensor('scales', [4], [1, 1, 2, 2]));
    g.node('Resize', [last, '', 'scales'], ['logits'], { mode: 'linear' }, 'resize_1');
    g.output('logits');
    return g.build();
  }

  test('branches, K side by side, summed bias, and the exposed tensors reproduce the sum', async () => {
    const bytes = summed();
    const a = analyzeModel(bytes);
    expect(a.branches.map((b) => [b.name, b.input, b.channels])).toEqual([['low_classifier', 'low', 3], ['high_classifier', 'high', 2]]);
    expect(a.sum?.name).toBe('add');
    expect(a.logitsTensor).toBe('sum');
    expect(a.featureChannels).toBe(5);
    const out = await run(exposeFeatures(bytes, a), randomInput([1, 3, 8, 8]), ['low', 'high', 'sum']);
    const [low, high] = [out.low!.data as Float32Array, out.high!.data as Float32Array];
    const phi = new Float32Array(5 * 64);
    phi.set(low, 0);
    phi.set(high, 3 * 64);
    expect(maxAbsDiff(conv1x1(a.kernel, a.bias, phi, [1, 5, 8, 8]), out.sum!.data as Float32Array)).toBeLessThan(1e-5);
    expect(analyzeModel(summed({ third: 'conv' })).branches).toHaveLength(3);
  });

  test('a sum with anything but 1x1 convs, or of different class counts, is refused by name; pgn2 and a features output too', () => {
    expectModelError(() => analyzeModel(summed({ third: 'relu' })), /final layer of output "logits" is Add node "add2" \(reached via Resize "resize_1"\), which adds Relu node "relu": pgn-ood takes a sum only of 1x1 convs/);
    expectModelError(() => analyzeModel(summed({ classesB: 3 })), /which adds 1x1 convs with different numbers of classes \(4, 3\)/);
    expectModelError(() => analyzeModel(summed(), { secondLayer: true }), /the logits are the sum of 2 1x1 convs \(Add node "add"\): pgn2 scores need a single final conv/);
  });
});
