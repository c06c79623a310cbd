/**
 * The journal of `pgn score --ndjson` under real SIGKILLs: a run killed at seeded random moments,
 * again and again, then resumed to the end, leaves a journal with every input exactly once (each
 * line JSON), every output file whole, and no temporary file. Also: a torn last line is dropped, an
 * existing journal without --resume is refused untouched, SIGTERM leaves no temporary, same-stem
 * inputs get their own outputs, and a changed input or a lost output is scored again.
 */
import { ChildProcess, execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { JournalWriter } from '../src/batch/journal';
import { readNpy } from '../src/common/npy';

const root = path.join(__dirname, '..');
const cli = path.join(root, 'dist', 'cli', 'index.js');
const demoImages = path.join(root, 'models', 'demo', 'eval', 'images');

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgn-resume-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** mulberry32: a small seeded generator, so a failing run can be replayed. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('node', [cli, 'score', ...args], { timeout: 120000 }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: number }) | null;
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, stdout, stderr });
    });
  });
}

function start(args: string[]): { child: ChildProcess; ended: Promise<{ code: number | null; signal: NodeJS.Signals | null }> } {
  const child = spawn('node', [cli, 'score', ...args], { stdio: ['ignore', 'ignore', 'ignore'] });
  return { child, ended: new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal }))) };
}

const lineCount = (journal: string) => (fs.existsSync(journal) ? fs.readFileSync(journal, 'utf8').split('\n').length - 1 : 0);

/** Resolves once the journal has more lines than `than` (or the process ended). */
async function grown(journal: string, than: number, ended: Promise<unknown>): Promise<void> {
  let over = false;
  void ended.then(() => (over = true));
  while (!over && lineCount(journal) <= than) await new Promise((r) => setTimeout(r, 20));
}

/** Every file below `folder` (recursively). */
const tree = (folder: string): string[] => fs.readdirSync(folder, { recursive: true, encoding: 'utf8' });
const temporaries = (folder: string) => tree(folder).filter((f) => f.endsWith('.tmp'));
const lines = (journal: string) => fs.readFileSync(journal, 'utf8').split('\n').filter((l) => l !== '');

/** 40 demo images in a/, 20 again in b/ (same names), 10 as PNG beside a/'s JPEGs, one corrupt file. */
async function inputs(): Promise<{ folder: string; files: string[] }> {
  const folder = path.join(dir, 'in');
  const names = fs.readdirSync(demoImages).sort();
  fs.mkdirSync(path.join(folder, 'a'), { recursive: true });
  fs.mkdirSync(path.join(folder, 'b'));
  for (const name of names) fs.copyFileSync(path.join(demoImages, name), path.join(folder, 'a', name));
  for (const name of names.slice(0, 20)) fs.copyFileSync(path.join(demoImages, name), path.join(folder, 'b', name));
  for (const name of names.slice(0, 10)) await sharp(path.join(demoImages, name)).png().toFile(path.join(folder, 'a', name.replace('.jpg', '.png')));
  fs.writeFileSync(path.join(folder, 'b', 'broken.jpg'), Buffer.from('not a jpeg at all'));
  const files = tree(folder).filter((f) => /\.(jpg|png)$/.test(f)).map((f) => path.join(folder, f));
  return { folder, files };
}

/** Every output a record names loads: .npy maps of the image's size, PNGs sharp decodes at that size. */
async function checkOutputs(record: { width: number; height: number; outputs: string[] }): Promise<void> {
  for (const out of record.outputs) {
    if (out.endsWith('.npy')) expect((await readNpy(out)).dims).toEqual([record.height, record.width]);
    else {
      const meta = await sharp(out).metadata();
      expect([meta.width, meta.height]).toEqual([record.width, record.height]);
    }
  }
}

test('SIGKILLed at 12 seeded random moments, then resumed: each input once, every output whole, no temporary', async () => {
  const { folder, files } = await inputs();
  const out = path.join(dir, 'out');
  const journal = path.join(dir, 'run.ndjson');
  const args = [folder, '--out', out, '--ndjson', journal, '--resume', '--labels-png', '--batch', '2'];
  const rand = random(16);
  let kills = 0;
  const recorded: number[] = [];
  let torn = 0;
  let left = 0;
  for (let attempt = 0; kills < 12 && attempt < 40; attempt++) {
    const before = lineCount(journal);
    const { child, ended } = start(args);
    // A quarter of the kills at any moment of the start-up, the others while images are being
    // written: a random 0-600 ms after the journal's next line. Either way before the journal has
    // grown by a few lines: on a fast machine 600 ms wrote 26 lines, and the 71 inputs ran out
    // before the 12th kill.
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    if (rand() < 0.25) await Promise.race([ended, sleep(rand() * 1500), grown(journal, before + 1, ended)]);
    else {
      await grown(journal, before, ended);
      await Promise.race([ended, sleep(rand() * 600), grown(journal, before + 3, ended)]);
    }
    child.kill('SIGKILL');
    const { signal } = await ended;
    if (signal === 'SIGKILL') kills++;
    // After each kill, every complete line is a record; only the last may be torn.
    const complete = fs.existsSync(journal) ? fs.readFileSync(journal, 'utf8').split('\n').slice(0, -1) : [];
    for (const line of complete) expect(JSON.parse(line).file).toEqual(expect.any(String));
    recorded.push(complete.length);
    torn += fs.existsSync(journal) && !fs.readFileSync(journal, 'utf8').endsWith('\n') && fs.statSync(journal).size > 0 ? 1 : 0;
    left += fs.existsSync(out) ? temporaries(out).length : 0;
  }
  console.log(`${kills} SIGKILLs in ${recorded.length} runs; journal lines after each: ${recorded.join(' ')} of ${files.length}; torn last lines seen: ${torn}; temporaries left by the kills: ${left}`);
  expect(kills).toBeGreaterThanOrEqual(12);
  expect(recorded.some((n) => n > 0 && n < files.length)).toBe(true); // kills landed mid-run

  const last = await run(args);
  expect(last.code).toBe(1); // broken.jpg failed, in some run: the exit code covers all inputs
  expect(last.stderr).toMatch(new RegExp(`pgn score: ${files.length} inputs: ${files.length - 1} scored, 1 failed`));
  const records = lines(journal).map((l) => JSON.parse(l));
  expect(records.map((r) => r.file).sort()).toEqual([...files].sort());
  const broken = records.find((r) => r.file.endsWith('broken.jpg'));
  expect(broken.error.code).toBe('PGN_IMAGE');
  const scored = records.filter((r) => !r.error);
  for (const r of scored) await checkOutputs(r);
  // Each input wrote its own files (a/x.jpg, a/x.png, b/x.jpg), named in the journal: no other file.
  const named = scored.flatMap((r) => r.outputs.map((o: string) => path.relative(out, o))).sort();
  expect(new Set(named).size).toBe(named.length);
  expect(tree(out).filter((f) => fs.statSync(path.join(out, f)).isFile()).sort()).toEqual(named);
  expect(temporaries(out)).toEqual([]);
  expect(temporaries(dir)).toEqual([]);

  // Nothing left to do: a further --resume scores nothing and reports the same.
  const again = await run(args);
  expect(again.code).toBe(1);
  expect(again.stderr).toMatch(new RegExp(`${files.length} from the journal`));
  expect(lines(journal)).toHaveLength(files.length);
}, 600000);

test('a torn last line is dropped; an input that changed or lost an output is scored again', async () => {
  const names = fs.readdirSync(demoImages).sort().slice(0, 4);
  const folder = path.join(dir, 'in');
  fs.mkdirSync(folder);
  for (const name of names) fs.copyFileSync(path.join(demoImages, name), path.join(folder, name));
  const out = path.join(dir, 'out');
  const journal = path.join(dir, 'run.ndjson');
  const args = [folder, '--out', out, '--ndjson', journal, '--no-overlay'];
  expect((await run(args)).code).toBe(0);
  const first = lines(journal).map((l) => JSON.parse(l));

  fs.appendFileSync(journal, '{"file":"' + path.join(folder, names[0]).slice(0, 10)); // a write cut by a crash
  fs.rmSync(first[1].outputs[0]); // an output lost
  const t = new Date(Date.now() - 60000);
  fs.utimesSync(first[2].file, t, t); // an input replaced (mtime changed)
  const refused = await run(args);
  expect(refused.code).toBe(2);
  expect(refused.stderr).toMatch(/PGN_JOURNAL: .*run\.ndjson exists: add --resume to continue .* or remove the file/);

  const resumed = await run([...args, '--resume']);
  expect(resumed.code).toBe(0);
  expect(resumed.stderr).toMatch(/4 inputs: 4 scored, 0 failed, 2 from the journal, 3 journal line\(s\) dropped/);
  const records = lines(journal).map((l) => JSON.parse(l));
  expect(records.map((r) => r.file).sort()).toEqual(first.map((r) => r.file).sort());
  expect(fs.existsSync(first[1].outputs[0])).toBe(true);
  expect(Math.round(records.find((r) => r.file === first[2].file).input.mtimeMs)).toBe(t.getTime());
});

test('SIGTERM and SIGINT mid-run leave no temporary; the journal keeps the finished lines', async () => {
  const out = path.join(dir, 'out');
  for (const [k, signal] of (['SIGTERM', 'SIGINT', 'SIGTERM', 'SIGINT'] as const).entries()) {
    const journal = path.join(dir, `run${k}.ndjson`);
    const { child, ended } = start([demoImages, '--out', out, '--ndjson', journal, '--labels-png']);
    await grown(journal, 0, ended);
    await new Promise((r) => setTimeout(r, 50 + 100 * k));
    child.kill(signal);
    expect((await ended).signal).toBe(signal);
    expect(temporaries(out)).toEqual([]);
    for (const line of lines(journal)) expect(JSON.parse(line).outputs.length).toBe(4);
  }
});

test('--resume needs --ndjson; a journal that is not a regular file cannot be resumed', async () => {
  const image = path.join(demoImages, 'demo_000.jpg');
  expect((await run([image, '--resume'])).stderr).toMatch(/--resume needs the journal of the run: --ndjson FILE/);
  const r = await run([image, '--ndjson', '/dev/null', '--resume', '--no-segments']);
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/PGN_JOURNAL: --resume: \/dev\/null is not a regular file/);
  const plain = await run([image, '--ndjson', '/dev/null', '--no-segments']);
  expect(plain.code).toBe(0);
  expect(fs.statSync('/dev/null').isCharacterDevice()).toBe(true);
});

test('an image whose outputs cannot be written gets its error line; the run goes on', async () => {
  const out = path.join(dir, 'out');
  fs.mkdirSync(path.join(out, 'demo_001.prediction.png'), { recursive: true }); // a folder where a file goes
  const journal = path.join(dir, 'run.ndjson');
  const names = fs.readdirSync(demoImages).sort().slice(0, 3).map((n) => path.join(demoImages, n));
  const r = await run([...names, '--out', out, '--ndjson', journal, '--no-overlay', '--no-segments']);
  expect(r.code).toBe(1);
  const records = lines(journal).map((l) => JSON.parse(l));
  expect(records.map((x) => x.error?.code ?? 'ok')).toEqual(['ok', 'PGN_OUTPUT', 'ok']);
  expect(records[1].error.message).toMatch(/demo_001\.prediction\.png: it is a directory/);
  expect(temporaries(out)).toEqual([]);
});

test('the journal syncs after every batch, and within a second of a line when the batch is slow', async () => {
  const probe = await fs.promises.open(path.join(dir, 'probe'), 'w');
  const proto = Object.getPrototypeOf(probe) as { datasync: () => Promise<void> };
  await probe.close();
  const syncs = jest.spyOn(proto, 'datasync');
  try {
    const journal = await JournalWriter.open(path.join(dir, 'j.ndjson'), 3);
    await journal.append({ file: 'a' });
    await journal.append({ file: 'b' });
    expect(syncs).toHaveBeenCalledTimes(0);
    await journal.append({ file: 'c' }); // a batch of 3: synced
    expect(syncs).toHaveBeenCalledTimes(1);
    await journal.append({ file: 'd' });
    await new Promise((r) => setTimeout(r, 1300)); // no more lines: synced by the timer
    expect(syncs).toHaveBeenCalledTimes(2);
    await journal.close();
    expect(lines(path.join(dir, 'j.ndjson')).map((l) => JSON.parse(l).file)).toEqual(['a', 'b', 'c', 'd']);
  } finally {
    syncs.mockRestore();
  }
});
