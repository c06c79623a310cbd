/**
 * Large outputs (≥ 2 MiB) live in mappings that are reused once their ArrayBuffer is collected
 * (native/core/huge_pages.h). In a child `node --expose-gc`: every output that may reuse dirty memory
 * (upsample, upsampleArgmax, normalizeImages, score maps, the label image) is still exactly the one
 * computed into fresh memory after an output of its size was filled with NaN / -1 and dropped.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';

const script = `
const { native } = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'addon'))});
const settle = () => new Promise((r) => setImmediate(r));
async function collect() {
  for (let i = 0; i < 3; i++) { global.gc(); await settle(); }
}
(async () => {
  const [h, w, H, W, C] = [128, 256, 1024, 1024, 3];
  const map = Float32Array.from({ length: h * w }, (_, i) => Math.sin(i * 0.37) * 10);
  const logits = Float32Array.from({ length: C * h * w }, (_, i) => Math.cos(i * 0.11) * 5);
  const rgb = Uint8Array.from({ length: H * W * 3 }, (_, i) => (i * 7) % 256);
  const tables = Float32Array.from({ length: 768 }, (_, i) => i / 7 - 3);
  const calls = {
    upsample: () => native.upsample({ input: map, dims: [1, h, w], size: [H, W] }),
    upsampleArgmax: () => native.upsampleArgmax({ logits, dims: [1, C, h, w], size: [H, W] }),
    normalizeImages: () => native.normalizeImages({ images: [rgb], plane: H * W, tables, source: [0, 1, 2] }),
    scores: async () => (await native.scores({ logits: new Float32Array(2 * 1024 * 1024).map((_, i) => (i % 13) - 6), logitsDims: [1, 2, 1024, 1024], scores: [{ kind: 'entropy' }], prediction: false })).maps[0],
  };
  const out = {};
  for (const [name, call] of Object.entries(calls)) {
    await collect();
    const fresh = Array.from(await call()); // computed into memory that no output used before
    let poisoned = await call();
    poisoned.fill(name === 'upsampleArgmax' ? -1 : NaN); // a caller may write its results
    poisoned = null;
    await collect();
    const again = await call();
    let same = again.length === fresh.length;
    for (let i = 0; same && i < fresh.length; i++) same = Object.is(again[i], fresh[i]);
    out[name] = { same };
  }
  let dirty = (await native.components({ scores: new Float32Array(H * W).fill(3), dims: [1, H, W], threshold: 2 })).labels;
  dirty.fill(7);
  dirty = null;
  await collect();
  const seg = await native.components({ scores: new Float32Array(H * W).fill(1), dims: [1, H, W], threshold: 2 });
  out.labels = { allZero: seg.labels.every((v) => v === 0) };
  process.stdout.write(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
`;

test('outputs written into reused memory never show what it held', async () => {
  const stdout = await new Promise<string>((resolve, reject) =>
    execFile('node', ['--expose-gc', '-e', script], { timeout: 120000 }, (err, out, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(out))));
  const r = JSON.parse(stdout);
  for (const name of ['upsample', 'upsampleArgmax', 'normalizeImages', 'scores']) expect({ name, same: r[name].same }).toEqual({ name, same: true });
  expect(r.labels).toEqual({ allZero: true });
}, 120000);
