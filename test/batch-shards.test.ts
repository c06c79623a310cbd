/**
 * One run split across machines: `pgn score --shard I/N` (or `auto`, from the array-job index of
 * Kubernetes, Slurm or AWS Batch) scores a part of the sorted inputs; the shards cover every input
 * exactly once, name outputs as a single run would, and `pgn merge` joins their journals, refusing
 * a missing or repeated input by name. Also: output names are unique per input (same stems in
 * different folders, or side by side with different extensions).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { outputStems } from '../src/batch/output-names';
import { parseShard, selectShard } from '../src/batch/shards';

const root = path.join(__dirname, '..');
const cli = path.join(root, 'dist', 'cli', 'index.js');
const demoImages = path.join(root, 'models', 'demo', 'eval', 'images');

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgn-shards-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function pgn(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('node', [cli, ...args], { cwd: dir, env: { ...process.env, ...env }, timeout: 120000 }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: number }) | null;
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, stdout, stderr });
    });
  });
}

const records = (file: string) => fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));

describe('output names', () => {
  test('same stems in different folders and side by side get their own names', () => {
    const stems = outputStems(['in/a/x.jpg', 'in/b/x.jpg', 'in/x.png', 'in/x.jpg', 'in/y.jpg', 'in/x.jpg.png']);
    expect(Object.fromEntries(stems)).toEqual({
      'in/a/x.jpg': 'a/x',
      'in/b/x.jpg': 'b/x',
      'in/x.png': 'x.png',
      'in/x.jpg': 'x.jpg', // a full name, which is also x.jpg.png's stem: that one falls back too
      'in/y.jpg': 'y',
      'in/x.jpg.png': 'x.jpg.png',
    });
  });

  test('a single folder keeps the plain stems; names depend on the whole list, not on order', () => {
    expect([...outputStems(['p/q/a.jpg', 'p/q/b.jpg']).values()]).toEqual(['a', 'b']);
    expect([...outputStems(['/r/one.png']).values()]).toEqual(['one']);
    const list = ['d/1/a.jpg', 'd/2/a.jpg', 'd/a.png'];
    expect(outputStems([...list].reverse())).toEqual(outputStems(list));
  });
});

describe('shards', () => {
  test('I/N and auto from Kubernetes, Slurm and AWS Batch', () => {
    expect(parseShard('2/5')).toEqual({ index: 2, count: 5 });
    expect(parseShard('auto', 4, { JOB_COMPLETION_INDEX: '3' })).toEqual({ index: 3, count: 4 });
    expect(parseShard('auto', undefined, { SLURM_ARRAY_TASK_ID: '7', SLURM_ARRAY_TASK_MIN: '5', SLURM_ARRAY_TASK_COUNT: '3' })).toEqual({ index: 2, count: 3 });
    expect(parseShard('auto', 8, { AWS_BATCH_JOB_ARRAY_INDEX: '0' })).toEqual({ index: 0, count: 8 });
  });

  test('bad shards are RangeErrors that say why', () => {
    expect(() => parseShard('5/5')).toThrow(/shard index from 5\/5 must be an integer in \[0, 4\], got 5/);
    expect(() => parseShard('1/0')).toThrow(/count .* must be a positive integer/);
    expect(() => parseShard('1of4')).toThrow(/expected I\/N \(e\.g\. 0\/4\) or auto, got "1of4"/);
    expect(() => parseShard('1/4', 3)).toThrow(/1\/4 contradicts --shards 3/);
    expect(() => parseShard('auto', undefined, { JOB_COMPLETION_INDEX: '1' })).toThrow(/Kubernetes Indexed Job does not give the number of shards: add --shards N/);
    expect(() => parseShard('auto', 2, { SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_COUNT: '3' })).toThrow(/SLURM_ARRAY_TASK_COUNT=3 contradicts --shards 2/);
    expect(() => parseShard('auto', 2, {})).toThrow(/auto found no array-job index/);
    expect(() => parseShard('auto', 2, { AWS_BATCH_JOB_ARRAY_INDEX: 'x' })).toThrow(/AWS_BATCH_JOB_ARRAY_INDEX must be an integer/);
  });

  test('every input in exactly one shard, whatever the order given', () => {
    const inputs = Array.from({ length: 101 }, (_, i) => `f${(i * 37) % 101}.jpg`);
    const parts = [0, 1, 2, 3].map((index) => selectShard(inputs, { index, count: 4 }));
    expect(parts.flat().sort()).toEqual([...inputs].sort());
    expect(parts.map((p) => p.length)).toEqual([26, 25, 25, 25]);
    expect(selectShard([...inputs].reverse(), { index: 1, count: 4 })).toEqual(parts[1]);
  });

  test('3 shards (one by --shard auto) cover the inputs once; pgn merge joins them and names a missing or repeated input', async () => {
    const names = fs.readdirSync(demoImages).sort().slice(0, 8);
    for (const sub of ['a', 'b']) {
      fs.mkdirSync(path.join(dir, 'in', sub), { recursive: true });
      for (const name of names) fs.copyFileSync(path.join(demoImages, name), path.join(dir, 'in', sub, name));
    }
    const common = ['score', 'in', '--out', 'out', '--no-overlay', '--no-segments'];
    const runs = await Promise.all([
      pgn([...common, '--shard', '0/3', '--ndjson', 's0.ndjson']),
      pgn([...common, '--shard', 'auto', '--shards', '3', '--ndjson', 's1.ndjson'], { JOB_COMPLETION_INDEX: '1' }),
      pgn([...common, '--shard', 'auto', '--ndjson', 's2.ndjson'], { SLURM_ARRAY_TASK_ID: '3', SLURM_ARRAY_TASK_MIN: '1', SLURM_ARRAY_TASK_COUNT: '3' }),
    ]);
    expect(runs.map((r) => r.code)).toEqual([0, 0, 0]);
    const shards = ['s0', 's1', 's2'].map((s) => records(path.join(dir, `${s}.ndjson`)));
    expect(shards.map((s) => s.length)).toEqual([6, 5, 5]);
    const all = shards.flat().map((r) => r.file);
    expect(new Set(all).size).toBe(16);
    const outputs = shards.flat().flatMap((r) => r.outputs);
    expect(new Set(outputs).size).toBe(32); // a/x and b/x: their own .npy and prediction PNG
    for (const o of outputs) expect(fs.existsSync(path.join(dir, o))).toBe(true);

    const merged = await pgn(['merge', 's0.ndjson', 's1.ndjson', 's2.ndjson', '--out', 'all.ndjson', '--inputs', 'in']);
    expect(merged.code).toBe(0);
    expect(merged.stderr).toMatch(/16 inputs from 3 journals: 16 scored, 0 failed/);
    expect(records(path.join(dir, 'all.ndjson')).map((r) => r.file)).toEqual([...all].sort());

    // A shard's line lost, and a line repeated in another shard.
    const s1 = fs.readFileSync(path.join(dir, 's1.ndjson'), 'utf8').split('\n');
    fs.writeFileSync(path.join(dir, 's1.ndjson'), s1.slice(1).join('\n'));
    fs.appendFileSync(path.join(dir, 's2.ndjson'), `${fs.readFileSync(path.join(dir, 's0.ndjson'), 'utf8').split('\n')[0]}\n`);
    const bad = await pgn(['merge', 's0.ndjson', 's1.ndjson', 's2.ndjson', '--out', 'bad.ndjson', '--inputs', 'in']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(`PGN_JOURNAL: not merged: 1 input(s) missing: ${JSON.parse(s1[0]).file}; 1 input(s) repeated: ${shards[0][0].file} (in s0.ndjson, s2.ndjson)`);
    expect(fs.existsSync(path.join(dir, 'bad.ndjson'))).toBe(false);
  }, 300000);
});
