/** `pgn tensors` with pgn2-* scores: --input, --kernel and the conv's geometry flags. */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { readNpy, writeNpy } from '../src/common/npy';
import { computeScores } from '../src/scoring/scores';
import { randomArray, rng } from './helpers/reference';

const run = promisify(execFile);
const cli = path.join(__dirname, '..', 'dist', 'cli', 'index.js');

describe('pgn tensors with pgn2 scores', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgn-cli2-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const r = rng(8);
  const [N, C, F, Cin, H, W] = [2, 4, 5, 3, 9, 11];
  const [h, w] = [5, 6]; // 3x3, stride 2, pad 1
  const logits = randomArray(N * C * h * w, r, -3, 3);
  const features = randomArray(N * F * h * w, r, -1, 2).map((v) => (v < 0 ? v * 0.1 : v)); // leaky
  const input = randomArray(N * Cin * H * W, r, 0, 2);
  const kernel = randomArray(C * F, r, -1, 1);
  const bnScale = randomArray(F, r, 0.5, 2);
  const file = (name: string) => path.join(dir, name);

  beforeAll(async () => {
    await writeNpy(file('l.npy'), logits, [N, C, h, w]);
    await writeNpy(file('f.npy'), features, [N, F, h, w]);
    await writeNpy(file('x.npy'), input, [N, Cin, H, W]);
    await writeNpy(file('k.npy'), kernel, [C, F, 1, 1]);
    await writeNpy(file('s.npy'), bnScale, [F]);
  });

  test('writes pgn2 maps equal to the API result', async () => {
    const out = file('out');
    const args = ['tensors', '--logits', file('l.npy'), '--features', file('f.npy'), '--input', file('x.npy'), '--kernel', file('k.npy'),
      '--conv-kernel', '3', '--conv-stride', '2', '--conv-pad', '1', '--activation', 'leakyrelu:0.1', '--bn-scale', file('s.npy'),
      '--score', 'pgn2-oh:p=0.5', '--score', 'pgn2-uni:p=2', '--score', 'entropy', '--out', out];
    const { stdout } = await run('node', [cli, ...args]);
    expect(stdout.trim().split('\n')).toHaveLength(3);
    expect(fs.readdirSync(out).sort()).toEqual(['entropy.npy', 'pgn2-oh_p0.5.npy', 'pgn2-uni_p2.npy']);
    const api = await computeScores({ data: logits, dims: [N, C, h, w] }, { data: features, dims: [N, F, h, w] }, {
      scores: ['pgn2-oh:p=0.5', 'pgn2-uni:p=2'],
      secondLayer: {
        input: { data: input, dims: [N, Cin, H, W] }, kernel,
        layer: { kernelShape: [3, 3], strides: [2, 2], dilations: [1, 1], pads: [1, 1, 1, 1], activation: { kind: 'leakyrelu', alpha: 0.1 }, bnScale },
      },
    });
    const oh = await readNpy(path.join(out, 'pgn2-oh_p0.5.npy'));
    expect(oh.dims).toEqual([N, h, w]);
    expect(oh.data).toEqual(api.maps[0].map.data);
    expect((await readNpy(path.join(out, 'pgn2-uni_p2.npy'))).data).toEqual(api.maps[1].map.data);
  });

  test.each([
    [['--score', 'pgn2-oh'], /pgn2-\* scores need --input .* and --kernel/],
    [['--score', 'pgn2-oh', '--input', 'x.npy', '--kernel', 'k.npy', '--conv-stride', '1'], /maps the input's 9x11 to 9x11, but the logits and features are 5x6/],
    [['--score', 'pgn2-oh', '--input', 'x.npy', '--kernel', 'k.npy', '--conv-pad', '1,2,3'], /expected p, ph,pw or top,left,bottom,right/],
    [['--score', 'pgn2-oh', '--input', 'x.npy', '--kernel', 'k.npy', '--activation', 'sigmoid'], /expected relu, relu6, leakyrelu/],
    [['--score', 'pgn2-oh', '--input', 'l.npy', '--kernel', 'x.npy', '--conv-stride', '2'], /kernel .*x\.npy: expected \[C,F\] or \[C,F,1,1\]/],
  ])('bad invocation %j exits non-zero with a clear message', async (extra, message) => {
    const args = [cli, 'tensors', '--logits', file('l.npy'), '--features', file('f.npy'), '--out', file('bad'), ...extra.map((a) => (a.endsWith('.npy') ? file(a) : a))];
    const err = await run('node', args).then(() => undefined, (e: { code: number; stderr: string }) => e);
    expect(err).toBeDefined();
    expect(err!.code).not.toBe(0);
    expect(err!.stderr).toMatch(message);
  });
});
