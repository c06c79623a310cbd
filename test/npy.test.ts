import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { encodeNpy, parseNpy, readNpy, writeNpy } from '../src/common/npy';
import { TensorFileError } from '../src/common/errors';

describe('.npy', () => {
  test('float32 round trip keeps values and shape', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgn-npy-'));
    const data = Float32Array.from({ length: 24 }, (_, i) => i / 3 - 2);
    await writeNpy(path.join(dir, 'a.npy'), data, [2, 3, 4]);
    const back = await readNpy(path.join(dir, 'a.npy'));
    expect(back.dims).toEqual([2, 3, 4]);
    expect(back.data).toEqual(data);
    expect(fs.readdirSync(dir)).toEqual(['a.npy']); // no temporary file left behind
  });

  test('float16 is widened exactly, subnormals and infinities included', () => {
    const halves = [0x3c00, 0xc000, 0x0001, 0x7bff, 0x7c00, 0x0000, 0x3555];
    const payload = Buffer.from(new Uint16Array(halves).buffer);
    const header = encodeNpy(new Uint8Array(halves.length * 2), [halves.length * 2]);
    const buf = Buffer.from(header.toString('latin1').replace("'|u1'", "'<f2'").replace(`(${halves.length * 2},)`, `(${halves.length},) `), 'latin1');
    const withData = Buffer.concat([buf.subarray(0, buf.length - halves.length * 2), payload]);
    const npy = parseNpy(withData);
    expect(npy.dtype).toBe('<f2');
    expect(Array.from(npy.data)).toEqual([1, -2, 2 ** -24, 65504, Infinity, 0, Math.fround(0.333251953125)]);
  });

  test('malformed files are TensorFileError with the reason', async () => {
    expect(() => parseNpy(Buffer.from('hello world, not numpy'))).toThrow(/bad magic/);
    const good = encodeNpy(new Float32Array(4), [4]);
    expect(() => parseNpy(good.subarray(0, good.length - 3))).toThrow(/truncated/);
    const fortran = Buffer.from(good.toString('latin1').replace("'fortran_order': False", "'fortran_order': True "), 'latin1');
    expect(() => parseNpy(fortran)).toThrow(/Fortran-order/);
    const complex = Buffer.from(good.toString('latin1').replace("'<f4'", "'<c8'"), 'latin1');
    expect(() => parseNpy(complex)).toThrow(/unsupported dtype <c8/);
    await expect(readNpy('/nonexistent/x.npy')).rejects.toThrow(TensorFileError);
  });
});
