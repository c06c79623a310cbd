import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ModelCardError, ModelError } from '../src/common/errors';
import { analyzeModel } from '../src/model/graph-surgery';
import { checkCardAgainstModel, defaultModelCard, loadModelCard, ModelCard, parseModelCard } from '../src/model/model-card';
import { buildSegModel } from './helpers/onnx-builder';

const CLASSES = ['road', 'sidewalk', 'building', 'car', 'sky'];

function validCard(): ModelCard {
  return {
    name: 'tiny',
    description: 'a 5-class test model',
    model: 'model.onnx',
    input: { name: 'input', height: 16, width: 16, resize: 'stretch', channelOrder: 'rgb', scale: 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
    outputs: { logits: 'logits' },
    classes: CLASSES.map((name, i) => ({ name, color: [i * 40, 64, 128] as [number, number, number] })),
    recommended: { score: 'pgn-oh:p=0.5', threshold: 1.23 },
    calibration: { score: 'pgn-oh:p=0.5', fpr: 0.05, threshold: 1.5, images: 10, pixels: 2560, date: '2026-12-04T15:00:00.000Z', version: '0.1.0' },
    metrics: { anything: { nested: [1, 2] } },
  };
}

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgn-card-'));
  await fs.writeFile(path.join(dir, 'model.onnx'), buildSegModel().bytes);
});
afterEach(() => fs.rm(dir, { recursive: true, force: true }));

const writeCard = (card: unknown, name = 'model.json') => fs.writeFile(path.join(dir, name), JSON.stringify(card));

async function expectCardError(promise: Promise<unknown>, message: RegExp): Promise<void> {
  const err = await promise.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(ModelCardError);
  expect((err as Error).message).toMatch(message);
}

describe('loadModelCard', () => {
  test('a valid card loads from its directory, its file, or the model beside it', async () => {
    await writeCard(validCard());
    const modelPath = path.join(dir, 'model.onnx');
    for (const p of [dir, path.join(dir, 'model.json'), modelPath]) {
      const loaded = await loadModelCard(p);
      expect(loaded.card).toEqual(validCard());
      expect(loaded.cardPath).toBe(path.join(dir, 'model.json'));
      expect(loaded.modelPath).toBe(modelPath);
    }
  });

  test('resize "none" needs no height and width', async () => {
    const card = validCard();
    card.input = { ...card.input, resize: 'none' };
    delete card.input.height;
    delete card.input.width;
    await writeCard(card);
    expect((await loadModelCard(dir)).card.input.resize).toBe('none');
  });

  const mistakes: [string, (c: any) => void, RegExp][] = [
    ['unknown resize mode', (c) => (c.input.resize = 'crop'), /input\.resize must be one of "stretch", "none" \(got "crop"\)/],
    ['missing classes', (c) => delete c.classes, /classes is missing/],
    ['unknown top-level property', (c) => (c.colour = 'red'), /colour is not a known property \(expected one of: name, description, model, input/],
    ['typo inside input', (c) => (c.input.chanelOrder = 'bgr'), /input\.chanelOrder is not a known property/],
    ['mean with two values', (c) => (c.input.mean = [0.5, 0.5]), /input\.mean must NOT have fewer than 3 items/],
    ['zero std', (c) => (c.input.std[1] = 0), /input\.std\[1\] must be > 0 \(got 0\)/],
    ['colour out of range', (c) => (c.classes[2].color = [300, 0, 0]), /classes\[2\]\.color\[0\] must be <= 255 \(got 300\)/],
    ['scale as a string', (c) => (c.input.scale = '255'), /input\.scale must be number \(got "255"\)/],
    ['stretch without a height', (c) => delete c.input.height, /input\.height is missing/],
    ['input larger than 8192 a side', (c) => (c.input.width = 100000), /input\.width must be <= 8192 \(got 100000\)/],
    ['fpr out of [0, 1]', (c) => (c.calibration.fpr = 5), /calibration\.fpr must be <= 1 \(got 5\)/],
    ['recommended without threshold', (c) => delete c.recommended.threshold, /recommended\.threshold is missing/],
  ];

  test.each(mistakes)('%s → ModelCardError naming the file and the JSON path', async (_title, spoil, message) => {
    const card = validCard();
    spoil(card);
    await writeCard(card);
    const cardPath = path.join(dir, 'model.json').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    await expectCardError(loadModelCard(dir), new RegExp(`^${cardPath}: invalid model card: `));
    await expectCardError(loadModelCard(dir), message);
  });

  test('several mistakes are reported together', () => {
    const card: any = validCard();
    card.input.channelOrder = 'rgba';
    delete card.name;
    expect(() => parseModelCard(card, 'x.json')).toThrow(
      /^x\.json: invalid model card: name is missing; input\.channelOrder must be one of "rgb", "bgr" \(got "rgba"\)$/,
    );
  });

  test('unreadable, non-JSON, or pointing at a missing model', async () => {
    await expectCardError(loadModelCard(dir), /model\.json: cannot read the model card/);
    await fs.writeFile(path.join(dir, 'model.json'), '{ "name": "tiny", ');
    await expectCardError(loadModelCard(dir), /model\.json: model card is not valid JSON/);
    await writeCard({ ...validCard(), model: 'missing.onnx' });
    await expectCardError(loadModelCard(dir), /model\.json: model "missing\.onnx" \(.*missing\.onnx\) does not exist/);
    await expectCardError(loadModelCard(path.join(dir, 'nothing-here')), /nothing-here: no such file or directory/);
  });

  test('an ONNX file without a card gets a default card derived from the model', async () => {
    const loaded = await loadModelCard(path.join(dir, 'model.onnx'));
    expect(loaded.cardPath).toBeNull();
    expect(loaded.card.input).toEqual({ name: 'input', height: 16, width: 16, resize: 'stretch', channelOrder: 'rgb', scale: 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
    expect(loaded.card.classes.map((c) => c.name)).toEqual(['class0', 'class1', 'class2', 'class3', 'class4']);
    expect(new Set(loaded.card.classes.map((c) => c.color.join())).size).toBe(5);
    expect(loaded.card.recommended).toBeUndefined();
    expect(() => parseModelCard(loaded.card, 'default')).not.toThrow();

    await fs.writeFile(path.join(dir, 'dynamic.onnx'), buildSegModel({ dynamic: true }).bytes);
    await writeCard(validCard()); // a card for model.onnx, not for dynamic.onnx
    const dynamic = await loadModelCard(path.join(dir, 'dynamic.onnx'));
    expect(dynamic.cardPath).toBeNull();
    expect(dynamic.card.name).toBe('dynamic');
    expect(dynamic.card.input.resize).toBe('none');
    expect(dynamic.card.input.height).toBeUndefined();
  });

  test('a model fixed at more than 8192 a side gets no default card: ModelError', () => {
    const analysis = analyzeModel(buildSegModel().bytes);
    const huge = { ...analysis, input: { ...analysis.input, shape: [1, 3, 9000, 16] } };
    expect(() => defaultModelCard(huge as never, 'big.onnx')).toThrow(ModelError);
    expect(() => defaultModelCard(huge as never, 'big.onnx')).toThrow('big.onnx: the model\'s input is fixed at 9000x16 (height x width), more than the 8192 a side a model card may ask for');
  });
});

describe('checkCardAgainstModel', () => {
  const fixed = analyzeModel(buildSegModel().bytes);
  const dynamic = analyzeModel(buildSegModel({ dynamic: true }).bytes);

  test('a matching card passes', () => {
    expect(() => checkCardAgainstModel(validCard(), fixed)).not.toThrow();
    const card = validCard();
    card.input = { ...card.input, resize: 'none' };
    expect(() => checkCardAgainstModel(card, dynamic)).not.toThrow();
  });

  test('every contradiction is named', () => {
    const card = validCard();
    card.classes.pop();
    card.input = { ...card.input, name: 'image', height: 32 };
    card.outputs = { logits: 'out', features: 'feat' };
    let message = '';
    try {
      checkCardAgainstModel(card, fixed, 'models/tiny/model.json');
    } catch (err) {
      expect(err).toBeInstanceOf(ModelCardError);
      message = (err as Error).message;
    }
    expect(message).toMatch(/^models\/tiny\/model\.json: the card contradicts the model: /);
    expect(message).toMatch(/lists 4 classes but the model's final conv "classifier\.4" has 5 output channels/);
    expect(message).toMatch(/names the input "image" but the model's input is "input"/);
    expect(message).toMatch(/input size 32x16 \(height x width\) differs from the model's fixed 16x16/);
    expect(message).toMatch(/names the logits output "out" but the model's outputs are "logits"/);
    expect(message).toMatch(/names the features output "feat"/);
  });

  test('resize "none" with a fixed-size model', () => {
    const card = validCard();
    card.input = { ...card.input, resize: 'none' };
    expect(() => checkCardAgainstModel(card, fixed)).toThrow(/resize "none" feeds images at their own size but the model's input is fixed at 16x16/);
  });
});
