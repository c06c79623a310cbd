/**
 * Evaluation across machines on the demo set: 3 shards save pixel states, their merge gives the
 * thresholds, the shards save component states at them, and the merge of all equals a single run of
 * `evaluate`: exactly in binned mode, to 1e-12 in exact mode, pixel and component figures alike. Bad
 * merges (a shard missing or repeated, states of another mode, another format version, component
 * states at other thresholds) are clear errors.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { JournalError } from '../src/common/errors';
import { evaluate } from '../src/eval/evaluate';
import { componentThresholds, mergeStates, saveShardState } from '../src/eval/shard-state';
import { PixelMetricsMode } from '../src/eval/metrics';

const dataset = path.join(__dirname, '..', 'models', 'demo', 'eval');
const scores = ['pgn-oh:p=0.5', 'entropy'];
let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgn-eval-merge-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Every number of the figures (curves aside), flattened with its path. */
function numbers(value: unknown, at = ''): [string, number][] {
  if (typeof value === 'number') return [[at, value]];
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).filter(([k]) => k !== 'curves').flatMap(([k, v]) => numbers(v, `${at}.${k}`));
}

async function shardedRun(mode: PixelMetricsMode): Promise<{ pixelFiles: string[]; componentFiles: string[] }> {
  const base = { dataset, scores, mode, track: 'anomaly' as const, executionProviders: ['cpu' as const] };
  const pixelFiles = [0, 1, 2].map((i) => path.join(dir, `${mode}.pixels.${i}`));
  for (const [i, file] of pixelFiles.entries()) await saveShardState({ ...base, shard: { index: i, count: 3 } }, file);
  const thresholds = componentThresholds((await mergeStates(pixelFiles)).rows.map((r) => r.pixel));
  const componentFiles = [0, 1, 2].map((i) => path.join(dir, `${mode}.components.${i}`));
  for (const [i, file] of componentFiles.entries()) await saveShardState({ ...base, shard: { index: i, count: 3 }, thresholds }, file);
  return { pixelFiles, componentFiles };
}

describe.each(['exact', 'binned'] as const)('%s mode', (mode) => {
  let files: { pixelFiles: string[]; componentFiles: string[] };
  beforeAll(async () => {
    files = await shardedRun(mode);
  }, 300000);

  test('the merge of 3 shards equals a single run (pixel and component figures)', async () => {
    const single = await evaluate({ dataset, scores, mode, track: 'anomaly', executionProviders: ['cpu'] });
    const merged = await mergeStates([...files.componentFiles.reverse(), ...files.pixelFiles]); // any order
    expect(merged.images).toBe(40);
    for (const [k, row] of single.rows.entries()) {
      expect(merged.rows[k].label).toBe(row.label);
      const want = numbers({ pixel: row.pixel, instance: row.instance });
      const got = new Map(numbers({ pixel: merged.rows[k].pixel, instance: merged.rows[k].instance }));
      expect(want.length).toBeGreaterThan(15);
      expect([...got.keys()].sort()).toEqual(want.map(([p]) => p).sort());
      for (const [at, value] of want) {
        if (mode === 'binned') expect([at, got.get(at)]).toEqual([at, value]);
        else expect(Math.abs(got.get(at)! - value)).toBeLessThanOrEqual(1e-12);
      }
    }
  }, 300000);

  test('a missing or repeated shard is named', async () => {
    await expect(mergeStates(files.pixelFiles.slice(0, 2))).rejects.toThrow(/pixels states do not cover the data set once: 13 image\(s\) missing \(indices 2, 5, 8/);
    await expect(mergeStates([...files.pixelFiles, files.pixelFiles[1]])).rejects.toThrow(/13 repeated: demo_001/);
  });
});

test('states of different runs, another version, other thresholds, or no state at all are JournalErrors', async () => {
  const exact = [0, 1, 2].map((i) => path.join(dir, `exact.pixels.${i}`));
  const binned = path.join(dir, 'binned.pixels.1');
  await expect(mergeStates([exact[0], binned, exact[2]])).rejects.toThrow(/its mode \(binned\) differ from .*exact\.pixels\.0's \(exact\)/);
  // Component states of the binned run against the exact pixel states: other thresholds.
  const comps = [0, 1, 2].map((i) => path.join(dir, `binned.components.${i}`));
  await expect(mergeStates([...exact, ...comps])).rejects.toThrow(/component states used thresholds .* run step 2 with --thresholds of this merge/);
  const old = path.join(dir, 'old');
  const bytes = fs.readFileSync(exact[0]);
  bytes.writeUInt32LE(99, 8);
  fs.writeFileSync(old, bytes);
  await expect(mergeStates([old, exact[1], exact[2]])).rejects.toThrow(/state format version 99; this pgn-ood reads version 1/);
  fs.writeFileSync(old, fs.readFileSync(exact[0]).subarray(0, 5000));
  await expect(mergeStates([old])).rejects.toThrow(/truncated/);
  fs.writeFileSync(old, 'hello');
  await expect(mergeStates([old])).rejects.toThrow(JournalError);
  await expect(mergeStates(comps)).rejects.toThrow(/no pixel state among the files/);
});

test('pgn eval merge: the --json of a single run (same shape, same figures) and an HTML report', async () => {
  const cli = path.join(__dirname, '..', 'dist', 'cli', 'index.js');
  const exec = (args: string[]) => new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    execFile('node', [cli, ...args], { timeout: 120000 }, (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code) : 0, stdout, stderr })));
  const single = path.join(dir, 'single.json');
  const merged = path.join(dir, 'merged.json');
  const states = ['pixels', 'components'].flatMap((kind) => [0, 1, 2].map((i) => path.join(dir, `exact.${kind}.${i}`)));
  expect((await exec(['eval', dataset, ...scores.flatMap((s) => ['--score', s]), '--json', single])).code).toBe(0);
  const r = await exec(['eval', 'merge', ...states, '--json', merged, '--report', path.join(dir, 'report')]);
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/pgn-oh:p=0\.5 \| 92\.\d\d/);
  const shape = (v: unknown): unknown => (v !== null && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, shape(x)])) : typeof v);
  const a = JSON.parse(fs.readFileSync(single, 'utf8'));
  const b = JSON.parse(fs.readFileSync(merged, 'utf8'));
  expect(shape(b)).toEqual(shape(a));
  expect(b.scores).toEqual(a.scores);
  expect(fs.readFileSync(path.join(dir, 'report', 'index.html'), 'utf8')).toContain('entropy');
}, 300000);
