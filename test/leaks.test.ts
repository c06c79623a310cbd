/**
 * No native memory leaks over thousands of calls: test/helpers/native-loop.js runs every native entry
 * point (scores, refused and rejected calls, upsample, upsampleArgmax, normalizeImages, components and the grid
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

// Outputs of 2 MiB and more live in mappings of their own (native/binding/args.cc), unmapped by
// their finalizers: 300 of 2.1 MiB must not leave 630 MiB mapped. The child sums the sizes of its
// anonymous read-write mappings (/proc/self/maps) after collecting garbage and letting finalizers run.
test('mapped outputs are unmapped once collected: 300 outputs of 2.1 MiB leave the mapped total flat', async () => {
  const addon = path.join(__dirname, '..', 'dist', 'addon');
  const script = `
    const { native } = require(${JSON.stringify(addon)});
    const fs = require('fs');
    const mapped = () => fs.readFileSync('/proc/self/maps', 'utf8').split('\\n').filter((l) => / rw-p 00000000 00:00 0 /.test(l))
      .reduce((sum, l) => { const [a, b] = l.split(' ')[0].split('-').map((x) => parseInt(x, 16)); return sum + (b - a); }, 0);
    const settle = async () => { gc(); await new Promise((r) => setImmediate(r)); gc(); };
    (async () => {
      const logits = new Float32Array(3 * 8 * 8).map(Math.random);
      const run = (n) => Promise.all(Array.from({ length: n }, () => native.upsampleArgmax({ logits, dims: [1, 3, 8, 8], size: [730, 730] }))).then((a) => a.length);
      await run(20);
      await settle();
      const before = mapped();
      for (let i = 0; i < 30; i++) { await run(10); await settle(); }
      console.log(JSON.stringify({ before, after: mapped() }));
    })();`;
  const stdout = await new Promise<string>((resolve, reject) =>
    execFile('node', ['--expose-gc', '-e', script], { timeout: 120000 }, (err, out, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(out))));
  const { before, after } = JSON.parse(stdout) as { before: number; after: number };
  expect(after - before).toBeLessThan(40 * 2 ** 20);
});
