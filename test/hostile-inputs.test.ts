/**
 * Hostile inputs of `pgn score` and the API that once crashed, hung or grew without bound (issue 20):
 * thousands of paths, non-regular files, symlink loops, broken stdout, bad stream items. Each case
 * runs the real CLI in a child process, or the real scorer, and checks how it ends.
 */
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { DatasetError, ImageError } from '../src/common/errors';
import { readLabelMask } from '../src/eval/dataset';
import { decodeImage } from '../src/image/preprocess';
import { MAX_INTRA_OP_THREADS } from '../src/model/session';
import { expandInputs } from '../src/run/inputs';
import { DEMO_MODEL, Scorer } from '../src/run/scorer';
import { runCli } from './helpers/cli';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pgn-hostile-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
const demoImage = path.join(DEMO_MODEL, 'eval', 'images', fs.readdirSync(path.join(DEMO_MODEL, 'eval', 'images')).sort()[0]);

interface Line {
  file: string;
  width?: number;
  error?: { code: string; message: string };
}
const lines = (stdout: string): Line[] => stdout.trim().split('\n').map((l) => JSON.parse(l) as Line);

describe('5000 paths (once ~32 KiB of arguments crashed ONNX Runtime with SIGSEGV)', () => {
  // one real image, then 4999 missing ones that fail on their own: the run must get through all
  const real = path.join(root, 'real.png');
  const paths = [real, ...Array.from({ length: 4999 }, (_, i) => path.join(root, 'photos', `missing-photo-number-${i}.jpg`))];
  beforeAll(() => fs.copyFileSync(demoImage, real));

  const check = (r: Awaited<ReturnType<typeof runCli>>) => {
    expect(r.signal).toBeNull();
    expect(r.code).toBe(1); // some images failed
    const out = lines(r.stdout);
    expect(out.map((l) => l.file)).toEqual(paths);
    expect(out[0].width).toBe(512);
    expect(out.slice(1).every((l) => l.error?.code === 'PGN_IMAGE')).toBe(true);
  };

  test('on the command line', async () => {
    expect(paths.join(' ').length).toBeGreaterThan(200000);
    check(await runCli(['score', '--no-segments', ...paths], { timeout: 120000 }));
  }, 150000);

  test('--files-from FILE, and - for stdin', async () => {
    const list = path.join(root, 'list.txt');
    fs.writeFileSync(list, `${paths.join('\n')}\n\n`);
    check(await runCli(['score', '--no-segments', '--files-from', list], { timeout: 120000 }));
    check(await runCli(['score', '--no-segments', '--files-from', '-'], { input: paths.join('\r\n'), timeout: 120000 }));
  }, 300000);

  test('no inputs at all, or an unreadable list → PGN_IMAGE, exit 2', async () => {
    const none = await runCli(['score']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/^pgn: PGN_IMAGE: no inputs: give image files, folders or globs, or --files-from/);
    const missing = await runCli(['score', '--files-from', path.join(root, 'no-such-list.txt')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^pgn: PGN_IMAGE: --files-from .*no-such-list\.txt: cannot read the input list \(ENOENT/);
    const endless = await runCli(['score', '--files-from', '/dev/zero']);
    expect(endless.code).toBe(2);
    expect(endless.stderr).toMatch(/^pgn: PGN_IMAGE: --files-from \/dev\/zero: more than 268435456 bytes; not an input list/);
  });
});

test('scoreImages([goodImage, 42]): the caller catches a TypeError, no unhandled rejection ends the process', async () => {
  const script = `
    process.on('exit', (code) => console.log('exit ' + code));
    const { scoreImages } = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'index.js'))});
    (async () => {
      try {
        for await (const item of scoreImages([${JSON.stringify(demoImage)}, 42], { executionProviders: ['cpu'] })) console.log('item', item.index, item.result ? 'ok' : item.error.code);
      } catch (err) {
        console.log('caught', err.name, err.message);
      }
      await new Promise((resolve) => setTimeout(resolve, 200)); // a late rejection would surface here
    })();`;
  const { stdout } = await promisify(execFile)('node', ['-e', script], { timeout: 60000 });
  expect(stdout.trim().split('\n')).toEqual(['item 0 ok', 'caught TypeError an image must be a file path, a Buffer or a Uint8Array of encoded bytes, got number', 'exit 0']);
});

describe('--intra-op-threads has a range (100000 hung ONNX Runtime, hundreds aborted it)', () => {
  test.each(['100000', String(MAX_INTRA_OP_THREADS + 1), '0', '2.5'])('pgn score --intra-op-threads %s → refused before the model loads', async (n) => {
    const r = await runCli(['score', '--intra-op-threads', n, demoImage], { timeout: 20000 });
    expect(r.signal).toBeNull();
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(new RegExp(`option '--intra-op-threads <n>' argument '${n.replace('.', '\\.')}' is invalid\\. expected an integer from 1 to ${MAX_INTRA_OP_THREADS}`));
  });

  test('the API: RangeError naming the range; the maximum itself runs', async () => {
    await expect(Scorer.create({ intraOpThreads: 100000, executionProviders: ['cpu'] })).rejects.toThrow(
      new RangeError(`intraOpThreads must be an integer from 1 to ${MAX_INTRA_OP_THREADS}, got 100000`),
    );
    const scorer = await Scorer.create({ intraOpThreads: MAX_INTRA_OP_THREADS, executionProviders: ['cpu'] });
    try {
      expect((await scorer.score(demoImage)).width).toBe(512);
    } finally {
      await scorer.dispose();
    }
  });
});

test('pgn score with stderr on a full disk: the results on stdout, exit 0; a failed run still exits 2', async () => {
  const ok = await runCli(['score', '--no-segments', demoImage], { redirect: '2>/dev/full' });
  expect(ok.code).toBe(0);
  expect(lines(ok.stdout)[0].width).toBe(512);
  const failed = await runCli(['score', '--model', '/dev/zero', demoImage], { redirect: '2>/dev/full' });
  expect(failed.code).toBe(2);
});

test.each([
  ['score', () => ['score', '--no-segments', demoImage]],
  ['inspect', () => ['inspect', DEMO_MODEL]],
])('pgn %s with stdout on a full disk (/dev/full) → pgn: ENOSPC: ..., exit 2, no stack trace', async (_name, args) => {
  const r = await runCli(args(), { redirect: '>/dev/full' });
  expect(r.signal).toBeNull();
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/^pgn: ENOSPC: cannot write to stdout \(ENOSPC: no space left on device, write\)$/m);
  expect(r.stderr).not.toMatch(/\n\s+at /);
});

describe('non-regular files are refused (a device was read without end, a FIFO blocked for ever)', () => {
  const fifo = path.join(root, 'fifo.png');
  const cardDir = path.join(root, 'fifo-card');
  beforeAll(() => {
    execFileSync('mkfifo', [fifo]);
    fs.mkdirSync(cardDir);
    execFileSync('mkfifo', [path.join(cardDir, 'model.json')]);
    const demoCard = JSON.parse(fs.readFileSync(path.join(DEMO_MODEL, 'model.json'), 'utf8')) as object;
    fs.writeFileSync(path.join(root, 'card-to-fifo.json'), JSON.stringify({ ...demoCard, model: 'fifo.png' }));
  });

  test('a FIFO among the images: its own error line, the others are scored', async () => {
    const r = await runCli(['score', '--no-segments', fifo, demoImage], { timeout: 30000 });
    expect(r.code).toBe(1);
    const out = lines(r.stdout);
    expect(out[0]).toEqual({ file: fifo, error: { code: 'PGN_IMAGE', message: `${fifo}: is a FIFO, not a regular file` } });
    expect(out[1].width).toBe(512);
  });

  test.each([
    ['/dev/zero as --model', () => ['score', '--model', '/dev/zero', demoImage], 'PGN_MODEL: /dev/zero: cannot read the model (is a character device, not a regular file)'],
    ['a FIFO as --model', () => ['score', '--model', fifo, demoImage], `PGN_MODEL: ${fifo}: cannot read the model (is a FIFO, not a regular file)`],
    ['a FIFO as the model card', () => ['score', '--model', cardDir, demoImage], `PGN_MODEL_CARD: ${path.join(cardDir, 'model.json')}: cannot read the model card (is a FIFO, not a regular file)`],
    ['a card naming a FIFO as its model', () => ['score', '--model', path.join(root, 'card-to-fifo.json'), demoImage], `PGN_MODEL_CARD: ${path.join(root, 'card-to-fifo.json')}: model "fifo.png" (${fifo}) is a FIFO, not a regular file`],
    ['/dev/urandom as inspect\'s model', () => ['inspect', '/dev/urandom'], 'PGN_MODEL: /dev/urandom: cannot read the model (is a character device, not a regular file)'],
    ['/dev/zero as --logits', () => ['tensors', '--logits', '/dev/zero', '--score', 'msp', '--out', path.join(root, 'never')], 'PGN_TENSOR_FILE: cannot read /dev/zero: is a character device, not a regular file'],
    ['a FIFO as --features', () => ['tensors', '--logits', fifo, '--features', fifo, '--score', 'pgn-oh:p=1', '--out', path.join(root, 'never')], `PGN_TENSOR_FILE: cannot read ${fifo}: is a FIFO, not a regular file`],
  ])('%s → exit 2 at once', async (_name, args, message) => {
    const r = await runCli(args(), { timeout: 30000 });
    expect(r.signal).toBeNull();
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`pgn: ${message}\n`);
  });

  test('the API: a device or FIFO as an image or a label mask', async () => {
    await expect(decodeImage('/dev/zero')).rejects.toThrow(new ImageError('/dev/zero: is a character device, not a regular file'));
    const err = await readLabelMask(fifo).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatasetError);
    expect((err as Error).message).toBe(`${fifo}: cannot read the label mask (is a FIFO, not a regular file)`);
  });
});

describe('symlink loops in input folders: each real folder is followed once', () => {
  // photos/{a.png, deep/b.png, deep/up -> .., deep/self -> ., elsewhere -> ../elsewhere, alias -> deep, link.png -> a.png}
  const photos = path.join(root, 'photos-loops');
  const elsewhere = path.join(root, 'elsewhere');
  beforeAll(() => {
    fs.mkdirSync(path.join(photos, 'deep'), { recursive: true });
    fs.mkdirSync(elsewhere);
    for (const f of [path.join(photos, 'a.png'), path.join(photos, 'deep', 'b.png'), path.join(elsewhere, 'c.png')]) fs.copyFileSync(demoImage, f);
    fs.symlinkSync('..', path.join(photos, 'deep', 'up'));
    fs.symlinkSync('.', path.join(photos, 'deep', 'self'));
    fs.symlinkSync('../elsewhere', path.join(photos, 'elsewhere'));
    fs.symlinkSync('deep', path.join(photos, 'alias'));
    fs.symlinkSync('a.png', path.join(photos, 'link.png'));
    fs.symlinkSync('missing.png', path.join(photos, 'dangling.png'));
  });

  test('a folder: every image once, symlinked folders outside it included', async () => {
    const files = await expandInputs([photos]);
    // "alias" comes before "deep": the real folder is listed under the first path that reaches it
    expect(files.map((f) => path.relative(photos, f))).toEqual(['a.png', 'alias/b.png', 'elsewhere/c.png', 'link.png']);
  });

  test('a glob: symlinked folders are not descended into (as bash\'s **), symlinked files kept', async () => {
    const files = await expandInputs([`${photos}/**/*.png`]);
    expect(files.map((f) => path.relative(photos, f))).toEqual(['a.png', 'deep/b.png', 'link.png']);
  });

  test('pgn score on the folder: four lines, then it ends', async () => {
    const r = await runCli(['score', '--no-segments', photos], { timeout: 60000 });
    expect(r.code).toBe(0);
    expect(lines(r.stdout).map((l) => path.relative(photos, l.file))).toEqual(['a.png', 'alias/b.png', 'elsewhere/c.png', 'link.png']);
  });
});
