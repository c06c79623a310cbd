import fs from 'node:fs';
import path from 'node:path';
import { upsample, upsampleArgmax } from '../src/scoring/scores';
import { randomArray, rng } from './helpers/reference';
import { readFloatNpy } from '../src/common/npy';
import { expectRejection } from './helpers/errors';

const dir = path.join(__dirname, 'fixtures', 'upsample');
const cases = fs.readdirSync(dir).filter((f) => f.endsWith('.input.npy')).map((f) => f.replace('.input.npy', ''));

describe('bilinear upsampling matches PyTorch F.interpolate (fixtures from test/fixtures/recipes/upsample.py)', () => {
  test.each(cases.flatMap((c) => [[c, false], [c, true]] as [string, boolean][]))('%s align_corners=%s', async (name, align) => {
    const input = await readFloatNpy(path.join(dir, `${name}.input.npy`));
    const expected = await readFloatNpy(path.join(dir, `${name}.align${align ? 1 : 0}.npy`));
    const out = await upsample({ data: input.data, dims: input.dims as [number, number, number] }, [expected.dims[1], expected.dims[2]], { alignCorners: align });
    expect(out.dims).toEqual(expected.dims);
    for (let i = 0; i < expected.data.length; i++) expect(Math.abs(out.data[i] - expected.data[i])).toBeLessThan(1e-6);
  });

  test('same size is the identity; a constant map stays constant', async () => {
    const data = Float32Array.from({ length: 12 }, (_, i) => i * 0.5);
    expect((await upsample({ data, dims: [1, 3, 4] }, [3, 4])).data).toEqual(data);
    const c = await upsample({ data: new Float32Array(6).fill(2.5), dims: [1, 2, 3] }, [7, 9]);
    expect(c.data.every((v) => v === 2.5)).toBe(true);
  });

  test('bad arguments are TypeError/RangeError naming the argument', async () => {
    const data = new Float32Array(6);
    await expectRejection(upsample({ data, dims: [1, 2, 4] }, [4, 4]), 'RangeError', /input has 6 elements but its dims call for 8/);
    await expectRejection(upsample({ data, dims: [1, 2, 3] }, [0, 4]), 'RangeError', /size\[0\] must be a positive integer/);
    await expectRejection(upsample({ data, dims: [1, 2, 3] }, [1e6, 1e6]), 'RangeError', /more than 2\^31/);
    await expectRejection(upsample({ data: new Int32Array(6) as never, dims: [1, 2, 3] }, [2, 2]), 'TypeError', /maps must be/);
  });
});

describe('upsampleArgmax', () => {
  // 5 classes keep a row cache each; 2100 classes × 2 rows × 1024 columns are past the 2^22 floats
  // the caches may take, and share one cache (issue 20: 2^20 classes asked for 16 GB of caches).
  test.each([[false, 5, 31], [true, 5, 31], [false, 2100, 1024]])('equals the argmax of each class upsampled separately (align_corners=%s, C=%i, W=%i)', async (alignCorners, C, W) => {
    const [N, h, w, H] = [2, 6, 9, 23];
    const logits = randomArray(N * C * h * w, rng(17), -3, 3);
    const pred = await upsampleArgmax({ data: logits, dims: [N, C, h, w] }, [H, W], { alignCorners });
    expect(pred.dims).toEqual([N, H, W]);
    const planes = await upsample({ data: logits, dims: [N * C, h, w] }, [H, W], { alignCorners });
    for (let n = 0; n < N; n++)
      for (let i = 0; i < H * W; i++) {
        let best = 0;
        for (let c = 1; c < C; c++) if (planes.data[(n * C + c) * H * W + i] > planes.data[(n * C + best) * H * W + i]) best = c;
        expect(pred.data[n * H * W + i]).toBe(best);
      }
  });
});
