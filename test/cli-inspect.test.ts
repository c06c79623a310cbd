import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { analyzeModel } from '../src/model/graph-surgery';
import { GraphBuilder } from './helpers/onnx-builder';

const run = promisify(execFile);
const cli = path.join(__dirname, '..', 'dist', 'cli', 'index.js');
const demo = path.join(__dirname, '..', 'models', 'demo');

test('pgn inspect prints what surgery finds and --export writes the patched model', async () => {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'pgn-inspect-')), 'patched.onnx');
  const { stdout } = await run('node', [cli, 'inspect', demo, '--json', '--export', out]);
  const findings = JSON.parse(stdout.slice(0, stdout.lastIndexOf('}') + 1));
  expect(findings).toMatchObject({ classes: 7, featureChannels: 48, finalConv: { name: '/classifier/Conv' }, betweenConvAndOutput: ['Resize'], logitsOutput: 'logits' });
  expect(findings.input.shape.slice(1)).toEqual([3, 256, 512]);
  const patched = analyzeModel(fs.readFileSync(out));
  expect(patched.featuresAlreadyOutput).toBe(true);
  expect(patched.outputs).toEqual(expect.arrayContaining(['logits', ...findings.addedOutputs]));
});

test('pgn inspect on a model whose final layer is not a 1x1 conv names what it found', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgn-inspect-'));
  const model = path.join(dir, 'argmax.onnx');
  const g = new GraphBuilder(1);
  g.input('input', [1, 3, 8, 8]);
  g.randomInit('w', [4, 3, 1, 1]);
  g.node('Conv', ['input', 'w'], ['z'], { kernel_shape: [1, 1] }, 'head');
  g.node('ArgMax', ['z'], ['label'], { axis: 1, keepdims: 1 }, 'argmax');
  g.output('label', [1, 1, 8, 8], 7);
  fs.writeFileSync(model, g.build());
  const err = await run('node', [cli, 'inspect', model]).catch((e: { stderr: string; code: number }) => e);
  expect((err as { code: number }).code).not.toBe(0);
  expect((err as { stderr: string }).stderr).toMatch(/PGN_MODEL: .*ArgMax node "argmax"/);
});

test('pgn inspect on a summed head (torchvision LRASPP) lists its branches and exposes their inputs', async () => {
  const model = path.join(__dirname, 'fixtures', 'model-matrix', 'lraspp_mobilenet_v3_large.op13.f32.inline', 'model.onnx');
  const { stdout } = await run('node', [cli, 'inspect', model, '--json']);
  const findings = JSON.parse(stdout);
  expect(findings.summedHead.branches.map((b: { name: string }) => b.name)).toEqual(['/model/classifier/low_classifier/Conv', '/model/classifier/high_classifier/Conv']);
  expect(findings.featureChannels).toBe(findings.summedHead.branches.reduce((a: number, b: { channels: number }) => a + b.channels, 0));
  expect(findings.addedOutputs).toEqual([...findings.summedHead.branches.map((b: { input: string }) => b.input), findings.summedHead.output]);
  const text = await run('node', [cli, 'inspect', model]);
  expect(text.stdout).toMatch(/summed head: +Add "\/model\/classifier\/Add" of .* \+ .*: features concatenated/);
});
