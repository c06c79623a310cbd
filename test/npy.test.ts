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
    const complex = Buffer.from(good.toString('latin1').replace("'<f4'", "'<c8'"), 'latin1');
    expect(() => parseNpy(complex)).toThrow(/unsupported dtype <c8/);
    await expect(readNpy('/nonexistent/x.npy')).rejects.toThrow(TensorFileError);
  });

  // A .npy file with the given header text (version 1, padded like numpy) and payload.
  function npyWith(header: string, payload: Buffer): Buffer {
    const padded = header + ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
    const head = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 0, 0]);
    head.writeUInt16LE(padded.length, 8);
    return Buffer.concat([head, Buffer.from(padded, 'latin1'), payload]);
  }
  const f32 = (values: number[]) => Buffer.from(Float32Array.from(values).buffer);

  test('a key given twice keeps its last value, as numpy (ast.literal_eval) does', () => {
    const ints = Buffer.from(Int32Array.from([7, -8]).buffer);
    const npy = parseNpy(npyWith("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'descr': '<i4', }", ints));
    expect(npy.dtype).toBe('<i4');
    expect(Array.from(npy.data)).toEqual([7, -8]);
    const shape = parseNpy(npyWith("{'shape': (9,), 'descr': '<f4', 'fortran_order': False, 'shape': (1, 2)}", f32([1, 2])));
    expect(shape.dims).toEqual([1, 2]);
  });

  test('Fortran-order files are rearranged into C order (the last of duplicated fortran_order keys counts)', () => {
    // [2, 3] stored column by column: element (i, j) at i + 2j.
    const values = [0, 1, 2, 3, 4, 5];
    const two = parseNpy(npyWith("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'fortran_order': True}", f32(values)));
    expect(Array.from(two.data)).toEqual([0, 2, 4, 1, 3, 5]);
    // [2, 3, 4]: C index (i·3 + j)·4 + k holds Fortran index i + 2j + 6k.
    const stored = Array.from({ length: 24 }, (_, n) => n * 10);
    const three = parseNpy(npyWith('{"descr": "<f4", "fortran_order": True, "shape": (2, 3, 4)}', f32(stored)));
    const expected: number[] = [];
    for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) for (let k = 0; k < 4; k++) expected.push(stored[i + 2 * j + 6 * k]);
    expect(Array.from(three.data)).toEqual(expected);
    expect(three.dims).toEqual([2, 3, 4]);
    // One axis longer than 1: the same bytes either way.
    expect(Array.from(parseNpy(npyWith("{'descr': '<f4', 'fortran_order': True, 'shape': (1, 3, 1)}", f32([4, 5, 6]))).data)).toEqual([4, 5, 6]);
  });

  test('headers numpy would refuse are TensorFileError: other keys, wrong value types, broken syntax', () => {
    const payload = f32([1, 2]);
    expect(() => parseNpy(npyWith("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}", payload))).toThrow(TensorFileError);
    expect(() => parseNpy(npyWith("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 'x'}", payload)))
      .toThrow(/exactly the keys descr, fortran_order and shape, has descr, extra, fortran_order, shape/);
    expect(() => parseNpy(npyWith("{'descr': '<f4', 'fortran_order': 'yes', 'shape': (2,)}", payload))).toThrow(/fortran_order must be True or False/);
    expect(() => parseNpy(npyWith("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}", payload))).toThrow(/malformed .npy header \(expected a non-negative integer/);
    expect(() => parseNpy(npyWith("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)", payload))).toThrow(/malformed .npy header/);
  });

  test('parseNpy names a wrong argument in a TypeError; a Uint8Array is read like a Buffer', () => {
    expect(() => parseNpy(null as never)).toThrow(new TypeError('parseNpy: buf must be a Buffer or Uint8Array holding a .npy file, got null'));
    expect(() => parseNpy('x.npy' as never)).toThrow(new TypeError('parseNpy: buf must be a Buffer or Uint8Array holding a .npy file, got string'));
    const file = encodeNpy(Float32Array.from([3, 4]), [2]);
    const copy = new Uint8Array(file.length + 3).subarray(3);
    copy.set(file);
    expect(Array.from(parseNpy(copy).data)).toEqual([3, 4]);
  });

  test('writeNpy and encodeNpy refuse negative, fractional and non-numeric dims that numpy could not load', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgn-npy-'));
    await expect(writeNpy(path.join(dir, 'a.npy'), new Float32Array(4), [-1, -4])).rejects.toThrow(new RangeError('npy: dims[0] must be a non-negative integer, got -1'));
    expect(() => encodeNpy(new Float32Array(4), [0.5, 8])).toThrow(new RangeError('npy: dims[0] must be a non-negative integer, got 0.5'));
    expect(() => encodeNpy(new Float32Array(4), [4, NaN])).toThrow(/dims\[1\] must be a non-negative integer, got NaN/);
    expect(() => encodeNpy(new Float64Array(4) as never, [4])).toThrow(TypeError);
    expect(fs.readdirSync(dir)).toEqual([]);
    expect(parseNpy(encodeNpy(new Float32Array(0), [0, 3])).dims).toEqual([0, 3]);
  });
});
