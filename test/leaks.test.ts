/**
 * No native memory leaks over thousands of calls: test/helpers/native-loop.js runs every native entry
 * point (scores, refused and rejected calls, upsample, upsampleArgmax, components and the grid
 * emulation, second-layer scores, both metrics accumulators, one dropped unfinished) 600 times,
 * about 6500 native calls, in a child `node --expose-gc` (Jest cannot pass --expose-gc to its
 * workers), collecting garbage between iterations. After a warm-up:
 *  - external memory and ArrayBuffer bytes (what the addon hands to V8) return exactly to their level;
 *  - RSS stays within 10 % of its level (allocator caches and V8's code space move it a little; a
 *    leaked 16 KiB result per call would add ~100 MB).
 * scripts/valgrind.sh runs the same loop under memcheck for leaks below that resolution.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';

interface Checkpoint {
  iteration: number;
  rss: number;
  external: number;
  arrayBuffers: number;
}

const ITERATIONS = 600;
const WARMUP = 150;

test(`${ITERATIONS} iterations over every native entry point keep RSS and external memory flat`, async () => {
  const script = path.join(__dirname, 'helpers', 'native-loop.js');
  const stdout = await new Promise<string>((resolve, reject) =>
    execFile('node', ['--expose-gc', script, String(ITERATIONS), '50'], { timeout: 300000, maxBuffer: 1 << 20 }, (err, out, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(out)));
  const lines = stdout.trim().split('\n').map((l) => JSON.parse(l));
  const done = lines.pop() as { done: boolean; calls: number };
  expect(done.done).toBe(true);
  expect(done.calls).toBeGreaterThanOrEqual(5000);
  const points = lines as Checkpoint[];
  const base = points.find((p) => p.iteration >= WARMUP)!;
  const after = points.filter((p) => p.iteration > WARMUP);
  expect(after.length).toBeGreaterThanOrEqual(8);
  const mb = (b: number) => `${(b / 2 ** 20).toFixed(1)} MB`;
  const report = after.map((p) => `${p.iteration}: rss ${mb(p.rss)}, external ${p.external}`).join('; ');
  // One result array may be alive at a checkpoint (a pending microtask's), hence the small slack.
  const grew = after.filter((p) => p.external - base.external > 128 * 1024 || p.arrayBuffers - base.arrayBuffers > 128 * 1024 || p.rss > base.rss * 1.1);
  if (grew.length > 0) throw new Error(`memory grew after the warm-up (base at ${base.iteration}: rss ${mb(base.rss)}, external ${base.external}): ${report}`);
  expect(Math.max(...after.map((p) => p.rss)) / base.rss).toBeLessThanOrEqual(1.1);
});
