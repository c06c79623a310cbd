/** Float16 models, external-data weights, opsets 11 to 21 (issue 17, item 3). */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { onnx } from 'onnx-proto';
import { ModelError } from '../src/common/errors';
import { ModelSession } from '../src/model/session';
import { analyzeModel } from '../src/model/graph-surgery';
import { floatToHalf, halfToFloat } from '../src/model/onnx';
import { buildSegModel, conv1x1, GraphBuilder, maxAbsDiff, random } from './helpers/onnx-builder';

const DT = onnx.TensorProto.DataType;
let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgn-forms-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function batch(dims: [number, number, number, number], seed = 5): Float32Array {
  const rand = random(seed);
  return Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, rand);
}

async function runModel(file: string, input: Float32Array, dims: [number, number, number, number]) {
  const session = await ModelSession.create(file, { executionProviders: ['cpu'] });
  try {
    return { session, out: await session.run(input, dims) };
  } finally {
    await session.dispose();
  }
}

/** What a float16 export looks like: input, output and every weight in float16 (Resize's scales stay float). */
function toFloat16(bytes: Uint8Array): Uint8Array {
  const m = onnx.ModelProto.decode(bytes);
  for (const t of m.graph!.initializer!) {
    if (t.name === 'scales' || t.dataType !== DT.FLOAT) continue;
    const values = new Float32Array(Uint8Array.from(t.rawData!).buffer);
    t.rawData = new Uint8Array(Uint16Array.from(values, floatToHalf).buffer);
    t.dataType = DT.FLOAT16;
  }
  for (const v of [...m.graph!.input!, ...m.graph!.output!]) v.type!.tensorType!.elemType = DT.FLOAT16;
  return onnx.ModelProto.encode(m).finish();
}

/** Moves every weight (not Resize's scales, which shape inference must read) into `data` beside the model. */
function toExternal(bytes: Uint8Array, location: string, dataFile: string): Uint8Array {
  const m = onnx.ModelProto.decode(bytes);
  const chunks: Buffer[] = [];
  let offset = 0;
  for (const t of m.graph!.initializer!) {
    if (t.name === 'scales') continue;
    const raw = Buffer.from(t.rawData!);
    t.rawData = new Uint8Array(0);
    t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    t.externalData = [{ key: 'location', value: location }, { key: 'offset', value: String(offset) }, { key: 'length', value: String(raw.length) }];
    chunks.push(raw);
    offset += raw.length;
  }
  fs.writeFileSync(dataFile, Buffer.concat([Buffer.alloc(0), ...chunks]));
  return onnx.ModelProto.encode(m).finish();
}

describe('float16 conversion at the boundary', () => {
  test('every half survives the round trip; float32 values round to the nearest half, ties to even', () => {
    for (let h = 0; h < 65536; h++) {
      const v = halfToFloat(h);
      if (Number.isNaN(v)) expect(Number.isNaN(halfToFloat(floatToHalf(v)))).toBe(true);
      else expect(floatToHalf(v)).toBe(h);
    }
    const finite = Array.from({ length: 0x7c00 }, (_, h) => halfToFloat(h)); // +0 … 65504, increasing
    const rand = random(9);
    for (let i = 0; i < 20000; i++) {
      const x = Math.fround(rand() * 10 ** Math.round(rand() * 6 - 1));
      const a = Math.abs(x);
      let lo = 0;
      let hi = finite.length - 1;
      while (hi - lo > 1) { const mid = (lo + hi) >> 1; if (finite[mid]! <= a) lo = mid; else hi = mid; }
      // float64 reference: nearest of the two neighbours, ties to the even one; beyond 65520 Infinity
      const pick = a >= 65520 ? 0x7c00 : a - finite[lo]! < finite[hi]! - a ? lo : a - finite[lo]! > finite[hi]! - a ? hi : lo % 2 === 0 ? lo : hi;
      expect(floatToHalf(x)).toBe((x < 0 || Object.is(x, -0) ? 0x8000 : 0) | pick);
    }
    expect(floatToHalf(1e6)).toBe(0x7c00);
    expect(floatToHalf(-Infinity)).toBe(0xfc00);
  });
});

describe('float16 models', () => {
  test('input, output and weights in float16: fed as float16, features and logits come back as float32 close to the float32 model', async () => {
    const { bytes } = buildSegModel({ dynamic: true });
    fs.writeFileSync(path.join(dir, 'f32.onnx'), bytes);
    fs.writeFileSync(path.join(dir, 'f16.onnx'), toFloat16(bytes));
    const dims: [number, number, number, number] = [2, 3, 16, 24];
    const input = batch(dims);
    const full = await runModel(path.join(dir, 'f32.onnx'), input, dims);
    const half = await runModel(path.join(dir, 'f16.onnx'), input, dims);
    expect(half.session.analysis.input.elemType).toBe(DT.FLOAT16);
    expect(half.out.features).toBeInstanceOf(Float32Array);
    expect(half.out.featuresDims).toEqual([2, 8, 8, 12]);
    expect(maxAbsDiff(half.out.features, full.out.features)).toBeLessThan(1e-2);
    expect(maxAbsDiff(half.out.logits, full.out.logits)).toBeLessThan(2e-2);
    // the kernel read from the float16 weights reproduces the float16 conv's output
    expect(maxAbsDiff(conv1x1(half.session.kernel, half.session.bias, half.out.features, half.out.featuresDims), half.out.logits)).toBeLessThan(1e-2);
  });
});

describe('external data', () => {
  test('weights beside the model: the same kernel and outputs as inline, K read from the file', async () => {
    const { bytes, kernel } = buildSegModel();
    fs.writeFileSync(path.join(dir, 'inline.onnx'), bytes);
    fs.mkdirSync(path.join(dir, 'ext'));
    fs.writeFileSync(path.join(dir, 'ext', 'model.onnx'), toExternal(bytes, 'model.onnx.data', path.join(dir, 'ext', 'model.onnx.data')));
    const dims: [number, number, number, number] = [1, 3, 16, 16];
    const input = batch(dims);
    const inline = await runModel(path.join(dir, 'inline.onnx'), input, dims);
    const external = await runModel(path.join(dir, 'ext', 'model.onnx'), input, dims);
    expect(Array.from(external.session.kernel)).toEqual(Array.from(kernel));
    expect(Array.from(external.out.logits)).toEqual(Array.from(inline.out.logits));
    expect(Array.from(external.out.features)).toEqual(Array.from(inline.out.features));
    const bare = fs.readFileSync(path.join(dir, 'ext', 'model.onnx'));
    expect(() => analyzeModel(bare)).toThrow(/stored in an external data file: load the model from its path/);
  });

  test('a location leaving the model folder (.., absolute, a link out) or a missing file is refused', async () => {
    const { bytes } = buildSegModel();
    fs.mkdirSync(path.join(dir, 'm'));
    fs.writeFileSync(path.join(dir, 'm', 'ok.onnx'), toExternal(bytes, 'w.bin', path.join(dir, 'm', 'w.bin')));
    fs.writeFileSync(path.join(dir, 'outside.bin'), fs.readFileSync(path.join(dir, 'm', 'w.bin')));
    fs.symlinkSync(path.join(dir, 'outside.bin'), path.join(dir, 'm', 'link.bin'));
    const cases: [string, RegExp][] = [
      ['../outside.bin', /external data at "\.\.\/outside\.bin", outside the model's folder .*: refused/],
      [path.join(dir, 'outside.bin'), /outside the model's folder/],
      ['link.bin', /external data at "link\.bin", a link to .*outside\.bin outside the model's folder: refused/],
      ['missing.bin', /external data file "missing\.bin" cannot be opened/],
      ['fifo', /its external data "fifo" is not a regular file/],
      ['.', /outside the model's folder/],
    ];
    spawnSync('mkfifo', [path.join(dir, 'm', 'fifo')]);
    for (const [location, message] of cases) {
      const file = path.join(dir, 'm', 'bad.onnx');
      fs.writeFileSync(file, toExternal(bytes, location, path.join(dir, 'scratch.bin')));
      const err = await ModelSession.create(file, { executionProviders: ['cpu'] }).then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(ModelError);
      expect((err as Error).message).toMatch(message);
    }
    const truncated = path.join(dir, 'm', 'short.onnx');
    fs.writeFileSync(truncated, toExternal(bytes, 'short.bin', path.join(dir, 'm', 'short.bin')));
    fs.truncateSync(path.join(dir, 'm', 'short.bin'), 100);
    await expect(ModelSession.create(truncated, { executionProviders: ['cpu'] })).rejects.toThrow(/ends before offset/);
  });
});

describe('opsets 11 to 21', () => {
  test.each([11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21])('opset %i, dynamic batch and size: surgery and session work', async (opset) => {
    const { bytes, kernel } = buildSegModel({ dynamic: true, opset });
    fs.writeFileSync(path.join(dir, 'model.onnx'), bytes);
    const dims: [number, number, number, number] = [3, 3, 12, 20];
    const { session, out } = await runModel(path.join(dir, 'model.onnx'), batch(dims), dims);
    expect(maxAbsDiff(session.kernel, kernel)).toBe(0);
    expect(out.featuresDims).toEqual([3, 8, 6, 10]);
    expect(maxAbsDiff(conv1x1(session.kernel, session.bias, out.features, out.featuresDims), out.logits)).toBeLessThan(1e-5);
  });
});

describe('summed heads at run time', () => {
  test('branches at different resolutions (a broadcast 1x1 global branch) are a ModelError naming the shapes', async () => {
    const g = new GraphBuilder(6);
    g.input('input', [1, 3, 8, 8]);
    g.randomInit('ka', [4, 3, 1, 1]);
    g.node('Conv', ['input', 'ka'], ['za'], {}, 'local_classifier');
    g.node('GlobalAveragePool', ['input'], ['pooled'], {}, 'pool');
    g.randomInit('kb', [4, 3, 1, 1]);
    g.node('Conv', ['pooled', 'kb'], ['zb'], {}, 'global_classifier');
    g.node('Add', ['za', 'zb'], ['logits'], {}, 'add');
    g.output('logits');
    fs.writeFileSync(path.join(dir, 'model.onnx'), g.build());
    const session = await ModelSession.create(path.join(dir, 'model.onnx'), { executionProviders: ['cpu'] });
    try {
      expect(session.analysis.branches).toHaveLength(2);
      await expect(session.run(batch([1, 3, 8, 8]), [1, 3, 8, 8])).rejects.toThrow(/the features "input", "pooled" came out as \[1,3,8,8\], \[1,3,1,1\], but the final conv's kernel takes 6 channels \(\[N,6,h,w\] expected, the branches at one resolution\)/);
    } finally {
      await session.dispose();
    }
  });
});
