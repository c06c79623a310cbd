import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { loadModelCard, UNCHECKED_FIELDS } from '../src/model/model-card';
import { buildSegModel } from './helpers/onnx-builder';

const run = promisify(execFile);
const cli = path.join(__dirname, '..', 'dist', 'cli', 'index.js');

type Failure = { code: number; stderr: string };

describe('pgn card init', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgn-card-init-'));
    fs.mkdirSync(path.join(dir, 'net'));
    fs.writeFileSync(path.join(dir, 'net', 'seg.onnx'), buildSegModel({ dynamic: true, classes: 6 }).bytes);
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('writes a card the model loads with, marks the guessed fields, and inspect warns until they are checked', async () => {
    const model = path.join(dir, 'net', 'seg.onnx');
    const { stdout, stderr } = await run('node', [cli, 'card', 'init', model]);
    const cardPath = path.join(dir, 'net', 'model.json');
    expect(stdout).toContain(`model card written to ${cardPath}`);
    expect(stderr).toMatch(/check classes unchecked: the 6 class names \(and colours\) are placeholders/);
    const { card, cardPath: loaded, modelPath } = await loadModelCard(model); // the card beside the model is for it
    expect(loaded).toBe(cardPath);
    expect(modelPath).toBe(model);
    expect(card).toMatchObject({ model: 'seg.onnx', input: { name: 'input', resize: 'none' }, outputs: { logits: 'logits' } });
    expect(card.classes.map((c) => c.name)).toEqual(['class0', 'class1', 'class2', 'class3', 'class4', 'class5']);
    expect(card.unchecked).toEqual([...UNCHECKED_FIELDS]);

    const before = await run('node', [cli, 'inspect', path.join(dir, 'net')]);
    expect(before.stderr.match(/pgn inspect: warning: /g)).toHaveLength(UNCHECKED_FIELDS.length);
    expect(before.stderr).toMatch(/input\.mean unchecked: mean \[0\.485, 0\.456, 0\.406\] is a guess/);
    fs.writeFileSync(cardPath, JSON.stringify({ ...card, unchecked: ['input.std'] }));
    const after = await run('node', [cli, 'inspect', cardPath, '--json']);
    expect(JSON.parse(after.stdout).warnings).toEqual([expect.stringMatching(/^input\.std unchecked/)]);
  });

  test('a fixed-size model gets its size; --out elsewhere points back at the model; an existing card needs --force', async () => {
    const model = path.join(dir, 'fixed.onnx');
    fs.writeFileSync(model, buildSegModel().bytes);
    const out = path.join(dir, 'cards', 'fixed.json');
    fs.mkdirSync(path.dirname(out));
    await run('node', [cli, 'card', 'init', model, '--out', out]);
    const { card, modelPath } = await loadModelCard(out);
    expect(card).toMatchObject({ model: '../fixed.onnx', input: { height: 16, width: 16, resize: 'stretch' } });
    expect(modelPath).toBe(model);
    const err = (await run('node', [cli, 'card', 'init', model, '--out', out]).catch((e: Failure) => e)) as Failure;
    expect(err.code).toBe(2);
    expect(err.stderr).toMatch(/PGN_MODEL_CARD: .*fixed\.json already exists: give --force/);
    await run('node', [cli, 'card', 'init', model, '--out', out, '--force']);
  });

  test('a model that cannot be scored gets no card', async () => {
    const model = path.join(dir, 'bad.onnx');
    fs.writeFileSync(model, 'not onnx');
    const err = (await run('node', [cli, 'card', 'init', model]).catch((e: Failure) => e)) as Failure;
    expect(err.stderr).toMatch(/PGN_MODEL: .*not an ONNX model/);
    expect(fs.existsSync(path.join(dir, 'model.json'))).toBe(false);
  });
});
