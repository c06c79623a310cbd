/**
 * Outputs appear whole or not at all: every writer goes through src/common/files.ts, which writes a hidden
 * temporary sibling and renames it over the target. A write that fails half-way (here: a real EFBIG
 * from a file-size limit, as a full disk would give) or a process killed half-way leaves the target
 * as it was, never half-written.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { OutputError } from '../src/common/errors';
import { openAtomic, removeStaleTemporaries, writeFileAtomic } from '../src/common/files';
import { writeNpy } from '../src/common/npy';
import { writePredictionPng } from '../src/image/render';
import { writeLabelPng, writeOverlayPng } from '../src/image/segment-images';
import { buildSegModel } from './helpers/onnx-builder';

const dist = path.join(__dirname, '..', 'dist');
let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgn-atomic-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const temporaries = () => fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'));

function sh(script: string, env: Record<string, string> = {}): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('bash', ['-c', script], { env: { ...process.env, ...env }, timeout: 60000 }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: number; signal?: string }) | null;
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, signal: e?.signal ?? null, stdout, stderr });
    });
  });
}

describe('writeFileAtomic', () => {
  test('a write that fails half-way (EFBIG) → OutputError, the old file intact, no temporary left', async () => {
    const target = path.join(dir, 'scores.npy');
    fs.writeFileSync(target, 'the previous run');
    // SIGXFSZ ignored, files capped at 16 KiB: the write of 1 MB fails after the first 16 KiB.
    const r = await sh(`trap '' XFSZ; ulimit -f 16; node -e "
      require('${dist}/common/files').writeFileAtomic(process.argv[1], Buffer.alloc(1 << 20, 7))
        .then(() => console.log('written'), (e) => console.log(e.name + ': ' + e.message));
    " "${target}"`);
    expect(r.stdout.trim()).toMatch(/^OutputError: cannot write .*scores\.npy: EFBIG: file too large/);
    expect(fs.readFileSync(target, 'utf8')).toBe('the previous run');
    expect(temporaries()).toEqual([]);
  });

  test('a process killed half-way leaves the target as it was (only a hidden temporary behind)', async () => {
    const target = path.join(dir, 'map.npy');
    fs.writeFileSync(target, 'the previous run');
    // The kill lands after half of the bytes reached the temporary file, before the rename.
    const r = await sh(`node -e "
      const fs = require('fs');
      fs.promises.writeFile = async (file, data) => { fs.writeFileSync(file, data.subarray(0, data.length >> 1)); process.kill(process.pid, 'SIGKILL'); };
      require('${dist}/common/files').writeFileAtomic(process.argv[1], Buffer.alloc(1 << 20, 7));
    " "${target}"`);
    expect(r.signal ?? r.code).toBeTruthy(); // killed (bash reports 137)
    expect(fs.readFileSync(target, 'utf8')).toBe('the previous run');
    const left = temporaries();
    expect(left).toHaveLength(1);
    expect(left[0]).toMatch(/^\.map\.npy\.\d+\.\d+\.tmp$/);
    expect(fs.statSync(path.join(dir, left[0])).size).toBe(1 << 19);
  });

  test('a rename that fails (target is a directory) → OutputError, no temporary left', async () => {
    fs.mkdirSync(path.join(dir, 'taken'));
    await expect(writeFileAtomic(path.join(dir, 'taken'), 'x')).rejects.toThrow(OutputError);
    expect(temporaries()).toEqual([]);
  });

  test('every image and tensor writer goes through a temporary file and a rename', async () => {
    const renames: [string, string][] = [];
    const rename = jest.spyOn(fs.promises, 'rename').mockImplementation(async (from, to) => {
      renames.push([String(from), String(to)]);
      return fs.renameSync(from, to);
    });
    try {
      const labels = { data: Uint32Array.from({ length: 12 }, (_, i) => i % 3), dims: [1, 3, 4] as [number, number, number] };
      const scores = { data: Float32Array.from({ length: 12 }, (_, i) => i), dims: [1, 3, 4] as [number, number, number] };
      const image = { data: new Uint8Array(36).fill(90), width: 4, height: 3, channels: 3 as const };
      await writeNpy(path.join(dir, 'a.npy'), scores.data, [3, 4]);
      await writePredictionPng(path.join(dir, 'b.png'), Int32Array.from(labels.data), 4, 3, [[0, 0, 0], [255, 0, 0], [0, 255, 0]]);
      await writeLabelPng(path.join(dir, 'c.png'), labels);
      await writeOverlayPng(path.join(dir, 'd.png'), image, scores, labels);
    } finally {
      rename.mockRestore();
    }
    expect(renames.map(([, to]) => path.basename(to))).toEqual(['a.npy', 'b.png', 'c.png', 'd.png']);
    for (const [from, to] of renames) {
      expect(path.dirname(from)).toBe(path.dirname(to));
      expect(path.basename(from)).toMatch(new RegExp(`^\\.${path.basename(to).replace('.', '\\.')}\\.${process.pid}\\.\\d+\\.tmp$`));
    }
    expect((await sharp(path.join(dir, 'c.png')).metadata()).depth).toBe('ushort');
    expect(temporaries()).toEqual([]);
  });

  test('no module of src/ writes a file except through src/common/files.ts', () => {
    const src = path.join(__dirname, '..', 'src');
    const files = fs.readdirSync(src, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts') && f !== path.join('common', 'files.ts'));
    const raw = /\b(writeFile|writeFileSync|appendFile|appendFileSync|createWriteStream|toFile|copyFile|copyFileSync)\s*\(/;
    const offenders = files.filter((f) => raw.test(fs.readFileSync(path.join(src, f), 'utf8')));
    expect(offenders).toEqual([]);
  });
});

describe('targets that are not regular files are never renamed over', () => {
  test('a symbolic link is followed: its target is replaced, the link stays', async () => {
    fs.writeFileSync(path.join(dir, 'real.npy'), 'old');
    fs.symlinkSync('real.npy', path.join(dir, 'link.npy'));
    await writeFileAtomic(path.join(dir, 'link.npy'), 'new');
    expect(fs.lstatSync(path.join(dir, 'link.npy')).isSymbolicLink()).toBe(true);
    expect(fs.readFileSync(path.join(dir, 'real.npy'), 'utf8')).toBe('new');
    const w = await openAtomic(path.join(dir, 'link.npy'));
    w.write('streamed');
    await w.commit();
    expect(fs.lstatSync(path.join(dir, 'link.npy')).isSymbolicLink()).toBe(true);
    expect(fs.readFileSync(path.join(dir, 'real.npy'), 'utf8')).toBe('streamed');
    expect(temporaries()).toEqual([]);
  });

  test('a FIFO and a character device are written through, and stay what they were', async () => {
    const fifo = path.join(dir, 'pipe');
    expect((await sh(`mkfifo "${fifo}"`)).code).toBe(0);
    const reader = sh(`cat "${fifo}"`);
    await writeFileAtomic(fifo, 'through the pipe');
    expect((await reader).stdout).toBe('through the pipe');
    expect(fs.lstatSync(fifo).isFIFO()).toBe(true);
    fs.symlinkSync('/dev/null', path.join(dir, 'null'));
    await writeFileAtomic(path.join(dir, 'null'), 'discarded');
    const w = await openAtomic('/dev/null');
    w.write('discarded');
    await w.commit();
    expect(fs.statSync('/dev/null').isCharacterDevice()).toBe(true);
    expect(temporaries()).toEqual([]);
  });

  test('a dangling symbolic link and a directory are OutputErrors', async () => {
    fs.symlinkSync('nowhere', path.join(dir, 'dangling'));
    await expect(writeFileAtomic(path.join(dir, 'dangling'), 'x')).rejects.toThrow(/cannot write .*dangling: it is a symbolic link to nothing \(nowhere\)/);
    fs.mkdirSync(path.join(dir, 'folder'));
    await expect(openAtomic(path.join(dir, 'folder'))).rejects.toThrow(/cannot write .*folder: it is a directory/);
    expect(temporaries()).toEqual([]);
  });

  test('a block device is refused', async () => {
    const block = fs.readdirSync('/dev').map((d) => path.join('/dev', d)).find((d) => fs.statSync(d, { throwIfNoEntry: false })?.isBlockDevice());
    if (!block) return console.warn('no block device in /dev: not tested');
    await expect(writeFileAtomic(block, 'x')).rejects.toThrow(/it is a block device \(refused/);
  });
});

describe('temporaries of a killed run', () => {
  test('removeStaleTemporaries removes those of the given targets only', async () => {
    for (const f of ['.a.npy.123.0.tmp', '.a.npy.99.7.tmp', '.b.npy.123.1.tmp', '.a.npy.tmp', 'a.npy']) fs.writeFileSync(path.join(dir, f), '');
    expect(await removeStaleTemporaries([path.join(dir, 'a.npy'), path.join(dir, 'c.npy')])).toBe(2);
    expect(fs.readdirSync(dir).sort()).toEqual(['.a.npy.tmp', '.b.npy.123.1.tmp', 'a.npy']);
  });
});

describe('openAtomic (pgn eval --json)', () => {
  test('the lines appear at the target only on commit; abort leaves the target as it was', async () => {
    const target = path.join(dir, 'lines.ndjson');
    fs.writeFileSync(target, 'old\n');
    const a = await openAtomic(target);
    a.write('{"n":1}\n');
    a.write('{"n":2}\n');
    expect(fs.readFileSync(target, 'utf8')).toBe('old\n');
    await a.abort();
    expect(fs.readFileSync(target, 'utf8')).toBe('old\n');
    expect(temporaries()).toEqual([]);

    const b = await openAtomic(target);
    b.write('{"n":1}\n');
    b.write('{"n":2}\n');
    await b.commit();
    await b.abort(); // no-op after commit
    expect(fs.readFileSync(target, 'utf8')).toBe('{"n":1}\n{"n":2}\n');
    expect(temporaries()).toEqual([]);
  });

  test('a path that cannot be written → OutputError when opening, before any work', async () => {
    fs.writeFileSync(path.join(dir, 'file'), 'x');
    await expect(openAtomic(path.join(dir, 'file', 'lines.ndjson'))).rejects.toThrow(OutputError);
    await expect(openAtomic(path.join(dir, 'no', 'such', 'dir', 'lines.ndjson'))).rejects.toThrow(/cannot write .*lines\.ndjson: ENOENT/);
  });

  test('a write that fails half-way (EFBIG) → OutputError, no file at the target, no temporary left', async () => {
    const target = path.join(dir, 'lines.ndjson');
    const r = await sh(`trap '' XFSZ; ulimit -f 16; node -e "
      (async () => {
        const w = await require('${dist}/common/files').openAtomic(process.argv[1]);
        try {
          for (let i = 0; i < 2000; i++) { w.write('x'.repeat(99) + '\\n'); await new Promise((r) => setImmediate(r)); }
          await w.commit();
          console.log('committed');
        } catch (e) {
          console.log(e.name + ': ' + e.message);
        } finally {
          await w.abort();
        }
      })();
    " "${target}"`);
    expect(r.stdout.trim()).toMatch(/^OutputError: cannot write .*lines\.ndjson: EFBIG: file too large/);
    expect(fs.existsSync(target)).toBe(false);
    expect(temporaries()).toEqual([]);
  });

  test('pgn score --ndjson: a run that fails leaves no file; a run that ends writes all lines', async () => {
    const model = path.join(dir, 'model.onnx');
    fs.writeFileSync(model, buildSegModel().bytes);
    const image = path.join(dir, 'a.png');
    await sharp(Buffer.alloc(8 * 8 * 3, 100), { raw: { width: 8, height: 8, channels: 3 } }).png().toFile(image);
    const target = path.join(dir, 'lines.ndjson');
    const cli = path.join(dist, 'cli', 'index.js');

    const bad = await sh(`node "${cli}" score "${image}" --model "${path.join(dir, 'a.png')}" --ndjson "${target}"`);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/PGN_MODEL/);
    expect(fs.existsSync(target)).toBe(false);
    expect(temporaries()).toEqual([]);

    const good = await sh(`node "${cli}" score "${image}" "${path.join(dir, 'missing.png')}" --model "${model}" --no-segments --ndjson "${target}"`);
    expect(good.code).toBe(1); // one image failed, the run went on
    const lines = fs.readFileSync(target, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.file)).toEqual([image, path.join(dir, 'missing.png')]);
    expect(lines[1].error.code).toBe('PGN_IMAGE');
    expect(temporaries()).toEqual([]);
  });
});
