/**
 * Hostile buffer handling of every native entry point that reads caller memory, run in a child
 * process by test/hostile-buffers.test.ts (a crash here would kill Jest):
 *
 *   node --expose-gc test/helpers/hostile-buffers.js CASE
 *
 * Prints one JSON line { case, results: [...] } and exits 0, or dies with the signal of the crash.
 * CASE: resizable | transfer | writes | getter | growable. Honors PGN_OOD_ADDON (dist/addon).
 */
'use strict';
const { native } = require('../../dist/addon');

const H = 512, W = 512, PLANE = H * W;
const C = 19, F = 64, FH = 128, FW = 128, FPLANE = FH * FW;

function fill(n, f) {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = f(i);
  return a;
}
const logitsOf = () => fill(C * FPLANE, (i) => Math.sin(i * 0.37) * 4);
const featuresOf = () => fill(F * FPLANE, (i) => Math.abs(Math.cos(i * 0.11)));
const scoreMap = () => fill(PLANE, (i) => ((i * 7919) % 13) / 12);
const labelsOf = () => Uint8Array.from({ length: PLANE }, (_, i) => ((i * 31) % 7 === 0 ? 1 : (i % 5 === 0 ? 255 : 0)));

// One call per entry point, on arrays the caller provides (fresh ones by default).
const calls = {
  scores: (a = {}) => native.scores({ logits: a.logits ?? logitsOf(), logitsDims: [1, C, FH, FW], features: a.features ?? featuresOf(),
    featuresDims: [1, F, FH, FW], scores: [{ kind: 'pgn-oh', p: 0.5 }, { kind: 'pgn-uni', p: 3 }], threads: 1 }),
  upsample: (a = {}) => native.upsample({ input: a.input ?? fill(2 * FPLANE, (i) => i % 101), dims: [2, FH, FW], size: [H, W], threads: 1 }),
  upsampleArgmax: (a = {}) => native.upsampleArgmax({ logits: a.logits ?? logitsOf(), dims: [1, C, FH, FW], size: [H, W], threads: 1 }),
  components: (a = {}) => native.components({ scores: a.scores ?? scoreMap(), dims: [1, H, W], threshold: 0.5, roi: a.roi,
    prediction: a.prediction ?? new Int32Array(PLANE).fill(3), threads: 1 }),
  pixelMetrics: (a = {}) => new native.PixelMetricsAccumulator({ chunkValues: 1 << 16 }).add(a.scores ?? scoreMap(), a.labels ?? labelsOf(), [H, W]),
  binnedMetrics: (a = {}) => new native.PixelMetricsAccumulator({ mode: 'binned' }).add(a.scores ?? scoreMap(), a.labels ?? labelsOf(), [H, W]),
  instanceMetrics: (a = {}) => new native.InstanceMetricsAccumulator({ threshold: 0.5, minPredictedSize: 1, minGtSize: 1 })
    .add(a.scores ?? scoreMap(), a.labels ?? labelsOf(), [H, W]),
  secondLayer: (a = {}) => native.secondLayerScores({ logits: a.logits ?? logitsOf(), logitsDims: [1, C, FH, FW], features: featuresOf(),
    featuresDims: [1, F, FH, FW], input: a.input ?? fill(4 * FPLANE, (i) => Math.cos(i)), inputDims: [1, 4, FH, FW],
    kernel: a.kernel ?? fill(C * F, (i) => Math.sin(i)), kernelShape: [1, 1], scores: [{ kind: 'pgn2-oh', p: 1 }], threads: 1 }),
};

// [entry, argument] pairs: every typed-array input of every entry point.
const inputs = [['scores', 'logits'], ['scores', 'features'], ['upsample', 'input'], ['upsampleArgmax', 'logits'],
  ['components', 'scores'], ['components', 'roi'], ['components', 'prediction'], ['pixelMetrics', 'scores'],
  ['pixelMetrics', 'labels'], ['instanceMetrics', 'scores'], ['instanceMetrics', 'labels'], ['secondLayer', 'logits'],
  ['secondLayer', 'input'], ['secondLayer', 'kernel']];

// A fresh array like the one the entry point would use for `arg`, placed in `buffer`.
function like(entry, arg, makeBuffer) {
  const sizes = { roi: [Uint8Array, PLANE], prediction: [Int32Array, PLANE], labels: [Uint8Array, PLANE] };
  const defaults = {
    scores: { logits: logitsOf(), features: featuresOf() }, upsample: { input: fill(2 * FPLANE, (i) => i % 101) },
    upsampleArgmax: { logits: logitsOf() }, secondLayer: { logits: logitsOf(), input: fill(4 * FPLANE, (i) => Math.cos(i)), kernel: fill(C * F, (i) => Math.sin(i)) },
  };
  const source = defaults[entry]?.[arg] ?? (sizes[arg] ? new sizes[arg][0](sizes[arg][1]).fill(1) : arg === 'scores' ? scoreMap() : labelsOf());
  const copy = new source.constructor(makeBuffer(source.byteLength));
  copy.set(source);
  return copy;
}

const settle = (promise) => promise.then(() => 'resolved', (e) => `${e.constructor.name}: ${e.message}`);
const sameArrays = (a, b) => a.length === b.length && a.every((v, i) => Object.is(v, b[i]));
const burn = (ms) => { const t = Date.now(); while (Date.now() - t < ms) {} };
function collect() {
  for (let i = 0; i < 4; i++) {
    global.gc();
    new Float32Array(F * FPLANE).fill(NaN); // reuses freed memory: a stale read then sees NaN
  }
}

const cases = {
  // Views of a resizable ArrayBuffer are refused up front, with a TypeError naming the argument.
  async resizable() {
    return inputs.map(([entry, arg]) => {
      const array = like(entry, arg, (n) => new ArrayBuffer(n, { maxByteLength: 2 * n }));
      try {
        calls[entry]({ [arg]: array });
        return { entry, arg, error: null };
      } catch (e) {
        return { entry, arg, error: `${e.constructor.name}: ${e.message}` };
      }
    });
  },
  // The buffer is transferred away while the call runs and its new owner collected: the call still
  // reads the original memory, so the result equals that of an untouched call.
  async transfer() {
    const out = [];
    for (const [entry, arg] of inputs) {
      const expected = await calls[entry]({ [arg]: like(entry, arg, (n) => new ArrayBuffer(n)) });
      const array = like(entry, arg, (n) => new ArrayBuffer(n));
      const promise = calls[entry]({ [arg]: array });
      structuredClone(array.buffer, { transfer: [array.buffer] });
      collect();
      const got = await promise;
      out.push({ entry, arg, detached: array.length === 0, same: JSON.stringify(summary(got)) === JSON.stringify(summary(expected)) });
    }
    return out;
  },
  // The caller writes its arrays while the call runs (labels flipped to OoD, classes to 2^30, scores to
  // foreground or NaN): every call settles, none crashes.
  async writes() {
    const out = [];
    const writes = [['pixelMetrics', 'labels', (a) => a.fill(1)], ['pixelMetrics', 'scores', (a) => a.fill(NaN)],
      ['binnedMetrics', 'scores', (a) => a.fill(NaN)], ['instanceMetrics', 'labels', (a) => a.fill(1)],
      ['components', 'prediction', (a) => a.fill(1 << 30)], ['components', 'scores', (a) => a.fill(1)],
      ['components', 'roi', (a) => a.fill(0)]];
    for (const [entry, arg, write] of writes)
      for (let k = 0; k < 12; k++) {
        const array = like(entry, arg, (n) => new ArrayBuffer(n));
        if (arg === 'labels') array.set(labelsOf());
        const promise = calls[entry]({ [arg]: array });
        burn(k % 6);
        write(array);
        out.push({ entry, arg, outcome: await settle(promise) });
      }
    return out;
  },
  // A getter that runs after an array was validated transfers it: the call rejects, reading nothing.
  async getter() {
    const logits = logitsOf();
    const options = { logits, logitsDims: [1, C, FH, FW], prediction: true,
      get scores() { structuredClone(logits.buffer, { transfer: [logits.buffer] }); return [{ kind: 'entropy' }]; } };
    return [await settle(native.scores(options))];
  },
  // A growable SharedArrayBuffer only grows, and its memory stays where it is: accepted.
  async growable() {
    const sab = new SharedArrayBuffer(2 * FPLANE * 4, { maxByteLength: 8 * FPLANE * 4 });
    const input = new Float32Array(sab, 0, 2 * FPLANE);
    input.set(fill(2 * FPLANE, (i) => i % 101));
    const expected = await calls.upsample();
    const promise = calls.upsample({ input });
    sab.grow(8 * FPLANE * 4);
    return [{ same: sameArrays(await promise, expected) }];
  },
};

// What a result holds, as plain numbers (typed arrays summed).
function summary(value) {
  if (ArrayBuffer.isView(value)) return Array.from(value).reduce((a, v) => a + v, 0);
  if (Array.isArray(value)) return value.map(summary);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, summary(v)]));
  return value;
}

const name = process.argv[2];
cases[name]().then((results) => console.log(JSON.stringify({ case: name, results })));
