/**
 * pgn2-* through the session and the scorer: the session fetches the second-to-last conv's input
 * only when asked, and the scorer's maps equal the scores computed from the session's tensors.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { ModelError } from '../src/common/errors';
import { Scorer } from '../src/run/scorer';
import { computeScores, upsample } from '../src/scoring/scores';
import { ModelSession } from '../src/model/session';
import { buildSegModel } from './helpers/onnx-builder';
import { buildHeadModel, CIN, H, W } from './helpers/head-model';

const card = (recommended?: string) => ({
  name: 'head',
  model: 'model.onnx',
  input: { name: 'input', height: H, width: W, resize: 'stretch', channelOrder: 'rgb', scale: 255, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] },
  classes: ['a', 'b', 'c', 'd'].map((name, i) => ({ name, color: [i * 60, 100, 200 - i * 40] })),
  ...(recommended ? { recommended: { score: recommended, threshold: 1 } } : {}),
});

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pgn-second-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

function modelDir(name: string, bytes: Uint8Array, c: object): string {
  const dir = path.join(root, name);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'model.onnx'), bytes);
  fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(c));
  return dir;
}

async function image(seed: number, width = 23, height = 17): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 37 + seed * 101) % 256;
  return sharp(raw, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

test('session: x only with secondLayer; the scorer maps equal the scores of the session tensors', async () => {
  const dir = modelDir('bn', buildHeadModel({ pads: [1, 1, 1, 1], bn: true, act: 'LeakyRelu', alpha: 0.05 }).bytes, card());
  const plain = await ModelSession.create(dir, { executionProviders: ['cpu'] });
  const batch = new Float32Array(3 * H * W).map((_, i) => Math.sin(i));
  try {
    const out = await plain.run(batch, [1, 3, H, W]);
    expect(out.convInput).toBeUndefined();
  } finally {
    await plain.dispose();
  }

  const specs = ['pgn2-oh:p=0.5', 'pgn-oh:p=1', 'pgn2-uni:p=2:variant=code'];
  const scorer = await Scorer.create({ model: dir, scores: specs, executionProviders: ['cpu'] });
  try {
    const sl = scorer.session.analysis.secondLayer!;
    expect(sl.layer.activation).toEqual({ kind: 'leakyrelu', alpha: Math.fround(0.05) });
    expect(sl.layer.bnScale).toHaveLength(5);
    const png = await image(1);
    const r = await scorer.score(png);
    expect(r.maps.map((m) => m.name)).toEqual(['pgn2-oh_p0.5', 'pgn-oh_p1', 'pgn2-uni_p2_code']);
    const { toTensor } = await import('../src/image/preprocess');
    const t = await toTensor([await scorer.decode(png)], scorer.session.card);
    const out = await scorer.session.run(t.data, t.dims);
    expect(out.convInputDims).toEqual([1, CIN, H, W]);
    const direct = await computeScores({ data: out.logits, dims: out.logitsDims }, { data: out.features, dims: out.featuresDims }, {
      scores: specs,
      secondLayer: { input: { data: out.convInput!, dims: out.convInputDims! }, kernel: scorer.session.kernel, layer: sl.layer },
    });
    for (let k = 0; k < specs.length; k++) {
      expect(r.maps[k].data).toEqual((await upsample(direct.maps[k].map, [r.height, r.width])).data);
      expect(r.maps[k].data.some((v) => v > 0)).toBe(true);
    }
  } finally {
    await scorer.dispose();
  }
});

test('a card recommending a pgn2 score gets the second layer without asking', async () => {
  const dir = modelDir('recommended', buildHeadModel({ pads: [1, 1, 1, 1] }).bytes, card('pgn2-uni:p=1'));
  const scorer = await Scorer.create({ model: dir, executionProviders: ['cpu'] });
  try {
    expect(scorer.specs).toEqual([{ kind: 'pgn2-uni', p: 1, variant: 'exact' }]);
    const r = await scorer.score(await image(2));
    expect(r.maps[0].data.every(Number.isFinite)).toBe(true);
  } finally {
    await scorer.dispose();
  }
});

test('x is the model input itself (one-conv backbone): the batch is used as x', async () => {
  const c = { ...card(), classes: ['a', 'b', 'c', 'd', 'e'].map((name) => ({ name, color: [0, 0, 0] })), input: { ...card().input, height: 16, width: 16 } };
  const dir = modelDir('tiny', buildSegModel().bytes, c);
  const session = await ModelSession.create(dir, { executionProviders: ['cpu'], secondLayer: true });
  try {
    const batch = new Float32Array(3 * 16 * 16).map((_, i) => Math.cos(i));
    const out = await session.run(batch, [1, 3, 16, 16]);
    expect(out.convInput).toBe(batch);
    const res = await computeScores({ data: out.logits, dims: out.logitsDims }, { data: out.features, dims: out.featuresDims }, {
      scores: ['pgn2-oh:p=1'],
      secondLayer: { input: { data: out.convInput!, dims: out.convInputDims! }, kernel: session.kernel, layer: session.analysis.secondLayer!.layer },
    });
    expect(res.maps[0].map.dims).toEqual([1, 8, 8]);
  } finally {
    await session.dispose();
  }
});

test('a head that does not fit: ModelError for pgn2, the last-layer scores still work', async () => {
  const dir = modelDir('sigmoid', buildHeadModel({ pads: [1, 1, 1, 1], act: 'Sigmoid' }).bytes, card());
  await expect(Scorer.create({ model: dir, scores: ['pgn2-oh'], executionProviders: ['cpu'] })).rejects.toThrow(ModelError);
  await expect(Scorer.create({ model: dir, scores: ['pgn2-oh'], executionProviders: ['cpu'] })).rejects.toThrow(/Sigmoid node "head.act"/);
  const scorer = await Scorer.create({ model: dir, scores: ['pgn-oh'], executionProviders: ['cpu'] });
  await scorer.dispose();
});
