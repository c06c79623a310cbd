import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { readNpy, writeNpy } from '../src/common/npy';
import { computeScores, upsample } from '../src/scoring/scores';
import { randomArray, rng } from './helpers/reference';

const run = promisify(execFile);
const cli = path.join(__dirname, '..', 'dist', 'cli', 'index.js');

describe('pgn tensors', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgn-cli-'));
  const r = rng(5);
  const [N, C, F, h, w] = [2, 4, 6, 5, 7];
  const logits = randomArray(N * C * h * w, r, -3, 3);
  const features = randomArray(N * F * h * w, r, 0, 2);

  beforeAll(async () => {
    await writeNpy(path.join(dir, 'l.npy'), logits, [N, C, h, w]);
    await writeNpy(path.join(dir, 'f.npy'), features, [N, F, h, w]);
  });

  test('writes one float32 .npy per score, named after it, equal to the API result', async () => {
    const out = path.join(dir, 'out');
    const { stdout } = await run('node', [cli, 'tensors', '--logits', path.join(dir, 'l.npy'), '--features', path.join(dir, 'f.npy'), '--score', 'pgn-oh:p=0.5', '--score', 'pgn-uni:p=2:variant=code', '--score', 'entropy', '--out', out, '--prediction']);
    expect(fs.readdirSync(out).sort()).toEqual(['entropy.npy', 'pgn-oh_p0.5.npy', 'pgn-uni_p2_code.npy', 'prediction.npy']);
    expect(stdout.trim().split('\n')).toHaveLength(4);
    const api = await computeScores({ data: logits, dims: [N, C, h, w] }, { data: features, dims: [N, F, h, w] }, { scores: ['pgn-oh:p=0.5', 'pgn-uni:p=2:variant=code'] });
    const oh = await readNpy(path.join(out, 'pgn-oh_p0.5.npy'));
    expect(oh.dims).toEqual([N, h, w]);
    expect(oh.data).toEqual(api.maps[0].map.data);
    expect((await readNpy(path.join(out, 'pgn-uni_p2_code.npy'))).data).toEqual(api.maps[1].map.data);
    expect((await readNpy(path.join(out, 'prediction.npy'))).data).toEqual(api.prediction!.data);
  });

  test('--size upsamples to [N,H,W]', async () => {
    const out = path.join(dir, 'sized');
    await run('node', [cli, 'tensors', '--logits', path.join(dir, 'l.npy'), '--score', 'msp', '--out', out, '--size', '10x14']);
    const msp = await readNpy(path.join(out, 'msp.npy'));
    expect(msp.dims).toEqual([N, 10, 14]);
    const api = await computeScores({ data: logits, dims: [N, C, h, w] }, undefined, { scores: ['msp'] });
    expect(msp.data).toEqual((await upsample(api.maps[0].map, [10, 14])).data);
  });

  test.each([
    [['--score', 'pgn-oh:p=0.5'], /features/], // PGN without features
    [['--score', 'bogus', '--features', 'f.npy'], /unknown score "bogus"/],
    [['--size', '10by14', '--score', 'msp'], /expected HxW/],
  ])('bad invocation %j exits non-zero with a clear message', async (extra, message) => {
    const args = [cli, 'tensors', '--logits', path.join(dir, 'l.npy'), '--out', path.join(dir, 'bad'), ...extra.map((a) => (a === 'f.npy' ? path.join(dir, a) : a))];
    const err = await run('node', args).then(() => undefined, (e: { code: number; stderr: string }) => e);
    expect(err).toBeDefined();
    expect(err!.code).not.toBe(0);
    expect(err!.stderr).toMatch(message);
  });

  test('a missing input file is a TensorFileError naming it', async () => {
    const err = await run('node', [cli, 'tensors', '--logits', path.join(dir, 'missing.npy'), '--score', 'msp', '--out', dir]).catch((e: { stderr: string }) => e);
    expect((err as { stderr: string }).stderr).toMatch(/PGN_TENSOR_FILE: cannot read .*missing\.npy/);
  });
});
