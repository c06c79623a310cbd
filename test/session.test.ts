import { buildSegModel, conv1x1, maxAbsDiff, random, SegModelOptions } from './helpers/onnx-builder';
import * as ort from 'onnxruntime-node';
import { promises as fs, readdirSync, readFileSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { BackendError, ModelCardError, ModelError } from '../src/common/errors';
import { ModelCard } from '../src/model/model-card';
import { cudaAvailable, ModelSession } from '../src/model/session';

const card = (o: Partial<ModelCard> = {}): ModelCard => ({
  name: 'tiny',
  model: 'model.onnx',
  input: { name: 'input', resize: 'none', channelOrder: 'rgb', scale: 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
  classes: ['a', 'b', 'c', 'd', 'e'].map((name) => ({ name, color: [0, 0, 0] })),
  ...o,
});

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgn-session-'));
});
afterEach(() => fs.rm(dir, { recursive: true, force: true }));

async function writeModel(options: SegModelOptions, c: ModelCard | null = card()): Promise<void> {
  await fs.writeFile(path.join(dir, 'model.onnx'), buildSegModel(options).bytes);
  if (c) await fs.writeFile(path.join(dir, 'model.json'), JSON.stringify(c));
}

function randomBatch(dims: [number, number, number, number]): Float32Array {
  const rand = random(11);
  return Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, rand);
}

/** φ computed independently: the same network built to output "feat" directly. */
async function referenceFeatures(options: SegModelOptions, input: Float32Array, dims: number[]): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(buildSegModel({ ...options, outputs: ['feat'] }).bytes);
  try {
    const out = await session.run({ input: new ort.Tensor('float32', input, dims) });
    return out.feat!.data as Float32Array;
  } finally {
    await session.release();
  }
}

describe('ModelSession', () => {
  test('returns the features and the conv output at feature resolution, batch of 3, session reused', async () => {
    const options: SegModelOptions = { dynamic: true };
    await writeModel(options);
    const session = await ModelSession.create(dir);
    try {
      expect(session.executionProviders).toEqual(['cpu']);
      expect([session.numClasses, session.featureChannels]).toEqual([5, 8]);
      expect(Array.from(session.kernel)).toEqual(Array.from(buildSegModel(options).kernel));
      expect(session.bias).toHaveLength(5);
      expect(session.card.name).toBe('tiny');
      expect(session.analysis.chain).toEqual(['Resize']);
      for (const dims of [[3, 3, 12, 20], [1, 3, 8, 8]] as [number, number, number, number][]) {
        const input = randomBatch(dims);
        const out = await session.run(input, dims);
        expect(out.featuresDims).toEqual([dims[0], 8, dims[2] / 2, dims[3] / 2]);
        expect(out.logitsDims).toEqual([dims[0], 5, dims[2] / 2, dims[3] / 2]);
        expect(maxAbsDiff(out.features, await referenceFeatures(options, input, dims))).toBeLessThanOrEqual(1e-6);
        const z = conv1x1(session.kernel, session.bias, out.features, out.featuresDims);
        expect(maxAbsDiff(z, out.logits)).toBeLessThanOrEqual(1e-5);
      }
    } finally {
      await session.dispose();
    }
    await expect(session.dispose()).resolves.toBeUndefined(); // a second dispose() is a no-op
  });

  test('features the model already outputs, named in the card, are used as they are', async () => {
    await writeModel({ head: 'none', outputs: ['logits', 'feat'] }, card({ input: { ...card().input, resize: 'stretch', height: 16, width: 16 }, outputs: { logits: 'logits', features: 'feat' } }));
    const session = await ModelSession.create(path.join(dir, 'model.json'), { executionProviders: ['cpu'], intraOpThreads: 1 });
    try {
      expect(session.analysis.featuresAlreadyOutput && session.analysis.convOutputIsOutput).toBe(true);
      const out = await session.run(randomBatch([1, 3, 16, 16]), [1, 3, 16, 16]);
      expect(maxAbsDiff(conv1x1(session.kernel, session.bias, out.features, out.featuresDims), out.logits)).toBeLessThanOrEqual(1e-5);
    } finally {
      await session.dispose();
    }
  });

  test('a float16 final conv comes back as float32', async () => {
    const options: SegModelOptions = { weightStorage: 'fp16' };
    await writeModel(options, null);
    const session = await ModelSession.create(path.join(dir, 'model.onnx')); // default card
    try {
      const dims: [number, number, number, number] = [1, 3, 16, 16];
      const input = randomBatch(dims);
      const out = await session.run(input, dims);
      expect(out.features).toBeInstanceOf(Float32Array);
      expect(maxAbsDiff(out.features, await referenceFeatures(options, input, dims))).toBeLessThan(5e-3); // φ rounded to half
      expect(maxAbsDiff(conv1x1(session.kernel, session.bias, out.features, out.featuresDims), out.logits)).toBeLessThan(1e-2);
    } finally {
      await session.dispose();
    }
  });

  // Linux reports each thread's nice level in /proc/self/task/*/stat (field 19).
  const nicer = (): number => {
    const base = os.getPriority(0);
    return readdirSync('/proc/self/task').filter((tid) => {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]) > base;
    }).length;
  };
  const linux = process.platform === 'linux' && os.getPriority(0) < 19;
  (linux ? test : test.skip)('ONNX Runtime runs one thread per available core by default, all of them at a lower priority than the event loop', async () => {
    await writeModel({ dynamic: true });
    const before = nicer();
    const byDefault = await ModelSession.create(dir);
    try {
      // The inference thread and the intra-op pool it creates (which inherits its priority).
      expect(nicer() - before).toBe(Math.min(os.availableParallelism(), 64));
      const one = await ModelSession.create(dir, { intraOpThreads: 1 });
      expect(nicer() - before).toBe(Math.min(os.availableParallelism(), 64) + 1);
      await one.dispose();
    } finally {
      await byDefault.dispose();
    }
    expect(nicer()).toBe(before);
  });

  test('CUDA requested without the CUDA provider installed → BackendError', async () => {
    await writeModel({});
    expect(cudaAvailable()).toBe(false); // onnxruntime-node lists cuda as not bundled here
    await expect(ModelSession.create(dir, { executionProviders: ['cuda'] })).rejects.toBeInstanceOf(BackendError);
    await expect(ModelSession.create(dir, { executionProviders: ['cuda', 'cpu'] })).rejects.toThrow(/CUDA was requested/);
  });

  test('bad options, inputs, cards and models', async () => {
    await writeModel({ dynamic: true });
    await expect(ModelSession.create(dir, { executionProviders: ['tpu' as 'cpu'] })).rejects.toBeInstanceOf(RangeError);
    await expect(ModelSession.create(dir, { intraOpThreads: 0 })).rejects.toBeInstanceOf(RangeError);
    const session = await ModelSession.create(dir);
    try {
      await expect(session.run(new Float32Array(10), [1, 3, 2, 2])).rejects.toThrow(/input has 10 values but dims \[1,3,2,2\] need 12/);
      await expect(session.run(new Float32Array(16), [1, 4, 2, 2])).rejects.toBeInstanceOf(RangeError);
      await expect(session.run([0] as unknown as Float32Array, [1, 3, 1, 1])).rejects.toBeInstanceOf(TypeError);
    } finally {
      await session.dispose();
    }

    await fs.writeFile(path.join(dir, 'model.json'), JSON.stringify(card({ classes: [{ name: 'only', color: [0, 0, 0] }] })));
    await expect(ModelSession.create(dir)).rejects.toThrow(ModelCardError);
    await expect(ModelSession.create(dir)).rejects.toThrow(/model\.json: the card contradicts the model: lists 1 classes/);

    await fs.writeFile(path.join(dir, 'model.json'), JSON.stringify(card()));
    await fs.writeFile(path.join(dir, 'model.onnx'), 'not a model');
    await expect(ModelSession.create(dir)).rejects.toThrow(ModelError);
    await expect(ModelSession.create(dir)).rejects.toThrow(/model\.onnx: not an ONNX model/);
  });
});
