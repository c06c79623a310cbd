/**
 * Seeded fuzzing of every entry point of the native addon (src/addon/index.ts): scores, secondLayerScores,
 * upsample, upsampleArgmax, normalizeImages, components, componentsGridEmulation, summarizeMaps, release, the PixelMetrics and InstanceMetrics
 * accumulators (constructor, add, finish, getters, misuse), cudaDeviceCount.
 *
 * Each call is a valid call with small random shapes and random values (NaN, ±Inf, ±0, huge,
 * subnormal included), with 0–3 of its fields then replaced by random values of random types,
 * lengths and shapes; or fully random arguments. Every call must settle — a result, or a TypeError,
 * RangeError or Error with a message — within a time bound: no crash, no hang. Valid calls' results
 * have the promised lengths. `PGN_FUZZ_ITERATIONS` (default 3000 calls) and `PGN_FUZZ_SEED` change
 * the run; scripts/test-asan.sh runs this file under AddressSanitizer, which turns any out-of-bounds
 * access or use-after-free into a failure.
 */
import { native } from '../src/addon';
import { rng } from './helpers/reference';

const ITERATIONS = Number(process.env.PGN_FUZZ_ITERATIONS ?? 3000);
const SEED = Number(process.env.PGN_FUZZ_SEED ?? 7);
/** A single call may take this long (ASan builds are ~3x slower); beyond, it counts as a hang. */
const CALL_TIMEOUT_MS = 20000;

type R = () => number;
type Args = Record<string, unknown>;

const int = (r: R, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
const pick = <T>(r: R, items: readonly T[]): T => items[Math.floor(r() * items.length)]!;

const SPECIAL = [NaN, Infinity, -Infinity, 0, -0, 1e38, -1e38, 3.4e38, 1e-45, -1e-45, 1e-38, 65504, -1];

/** Mostly moderate values; now and then a special one (or a whole array of them). */
function floats(r: R, n: number, special = 0.02): Float32Array {
  const a = new Float32Array(n);
  const mode = r();
  for (let i = 0; i < n; i++) {
    if (mode < 0.05) a[i] = pick(r, SPECIAL);
    else if (r() < special) a[i] = pick(r, SPECIAL);
    else a[i] = (r() - 0.5) * (mode < 0.2 ? 2e4 : 8);
  }
  return a;
}

function randomValue(r: R, depth = 0): unknown {
  const len = pick(r, [0, 1, 2, 3, 7, 16, 100]);
  switch (int(r, 0, 21)) {
    case 0: return undefined;
    case 1: return null;
    case 2: return pick(r, SPECIAL);
    case 3: return int(r, -3, 10);
    case 4: return r() * 1e12;
    case 5: return pick(r, ['cuda', 'cpu', 'exact', 'binned', 'relu', 'pgn-oh', 'pgn2-uni', '', 'x'.repeat(1000)]);
    case 6: return floats(r, len, 0.2);
    case 7: return new Float64Array(len);
    case 8: return new Int32Array(len).map(() => int(r, -5, 5));
    case 9: return new Uint8Array(len).map(() => int(r, 0, 255));
    case 10: return new Uint32Array(len);
    case 11: return Array.from({ length: int(r, 0, 5) }, () => int(r, -1, 6));
    case 12: return [2 ** 31, 2 ** 31, 4, 4];
    case 13: return [2 ** 16, 2 ** 16];
    case 14: return depth < 2 ? [randomValue(r, depth + 1), randomValue(r, depth + 1)] : [];
    case 15: return depth < 2 ? { kind: pick(r, ['pgn-oh', 'pgn2-oh', 'relu', 'prelu', 'nope']), p: randomValue(r, depth + 1), variant: randomValue(r, depth + 1) } : {};
    case 16: return Symbol('x');
    case 17: return () => 1;
    case 18: return BigInt(3);
    case 19: return r() < 0.5;
    case 20: { // a detached buffer
      const a = new Float32Array(4);
      structuredClone(a.buffer, { transfer: [a.buffer as ArrayBuffer] });
      return a;
    }
    default: return new Float32Array(new SharedArrayBuffer(4 * len)); // shared memory
  }
}

/** Replaces 0–3 fields (or adds unknown ones) with random values. */
function mutate(r: R, args: Args, extraKeys: string[]): Args {
  const keys = [...Object.keys(args), ...extraKeys];
  const count = r() < 0.3 ? 0 : int(r, 1, 3);
  for (let i = 0; i < count; i++) args[pick(r, keys)] = randomValue(r);
  return args;
}

const scoreKinds = ['pgn-oh', 'pgn-uni', 'entropy', 'msp', 'maxlogit', 'energy'];

function scoresArgs(r: R): Args {
  const [N, C, F, h, w] = [int(r, 1, 3), int(r, 2, 6), int(r, 1, 5), int(r, 1, 9), int(r, 1, 9)];
  const scores = Array.from({ length: int(r, 1, 4) }, () => ({ kind: pick(r, scoreKinds), p: pick(r, [0.1, 0.5, 1, 2, 7.5]), variant: pick(r, ['exact', 'code']) }));
  return {
    logits: floats(r, N * C * h * w, 0.001),
    logitsDims: [N, C, h, w],
    features: floats(r, N * F * h * w, 0.001).map(Math.abs),
    featuresDims: [N, F, h, w],
    scores,
    prediction: r() < 0.7,
    threads: pick(r, [0, 1, 2, 3, 64]),
  };
}

function secondLayerArgs(r: R): Args {
  const [N, C, F, Cin] = [int(r, 1, 2), int(r, 2, 5), int(r, 1, 4), int(r, 1, 3)];
  const [kh, kw, sh, sw, dh, dw] = [int(r, 1, 3), int(r, 1, 3), int(r, 1, 2), int(r, 1, 2), int(r, 1, 2), int(r, 1, 2)];
  const pads = [int(r, 0, 2), int(r, 0, 2), int(r, 0, 2), int(r, 0, 2)];
  const [oh, ow] = [int(r, 1, 6), int(r, 1, 6)];
  // the smallest input the conv maps to oh × ow (at least 1)
  const H = Math.max(1, (oh - 1) * sh + dh * (kh - 1) + 1 - pads[0] - pads[2]);
  const W = Math.max(1, (ow - 1) * sw + dw * (kw - 1) + 1 - pads[1] - pads[3]);
  const activation = pick(r, [undefined, { kind: 'relu' }, { kind: 'leakyrelu', alpha: 0.1 }, { kind: 'clip', min: 0, max: 6 }, { kind: 'prelu', slopes: floats(r, F).map(Math.abs) }]);
  return {
    logits: floats(r, N * C * oh * ow, 0.001),
    logitsDims: [N, C, oh, ow],
    features: floats(r, N * F * oh * ow, 0.001).map(Math.abs),
    featuresDims: [N, F, oh, ow],
    input: floats(r, N * Cin * H * W, 0.001),
    inputDims: [N, Cin, H, W],
    kernel: floats(r, C * F, 0),
    kernelShape: [kh, kw],
    strides: [sh, sw],
    dilations: [dh, dw],
    pads,
    ...(activation ? { activation } : {}),
    ...(r() < 0.3 ? { bnScale: floats(r, F, 0) } : {}),
    ...(r() < 0.3 ? { codeScale: floats(r, F, 0) } : {}),
    scores: Array.from({ length: int(r, 1, 3) }, () => ({ kind: pick(r, ['pgn2-oh', 'pgn2-uni']), p: pick(r, [0.5, 1, 2]), variant: pick(r, ['exact', 'code']) })),
    prediction: r() < 0.5,
    threads: pick(r, [0, 1, 2]),
  };
}

function normalizeArgs(r: R): Args {
  const [N, plane] = [int(r, 1, 3), int(r, 1, 40)];
  return {
    images: Array.from({ length: N }, () => new Uint8Array(3 * plane).map(() => int(r, 0, 255))),
    plane,
    tables: floats(r, 768),
    source: Array.from({ length: 3 }, () => int(r, 0, 2)),
    threads: pick(r, [0, 1, 3]),
  };
}

function upsampleArgs(r: R): Args {
  const [P, h, w] = [int(r, 1, 4), int(r, 1, 9), int(r, 1, 9)];
  const size = [int(r, 1, 24), int(r, 1, 24)];
  const input = floats(r, P * h * w);
  // output: a right one, the input itself (shares memory), or one of the wrong type or length
  const output = pick(r, [undefined, new Float32Array(P * size[0] * size[1]), input, new Int32Array(P * size[0] * size[1]), new Float32Array(P * size[0] * size[1] + 1)]);
  return { input, dims: [P, h, w], size, alignCorners: r() < 0.5, threads: pick(r, [0, 1, 3]), ...(output ? { output } : {}) };
}

function upsampleArgmaxArgs(r: R): Args {
  const [N, C, h, w] = [int(r, 1, 3), int(r, 1, 6), int(r, 1, 9), int(r, 1, 9)];
  const size = [int(r, 1, 24), int(r, 1, 24)];
  const logits = floats(r, N * C * h * w);
  const output = pick(r, [undefined, new Int32Array(N * size[0] * size[1]), new Int32Array(logits.buffer), new Float32Array(N * size[0] * size[1]), new Int32Array(N * size[0] * size[1] - 1)]);
  return { logits, dims: [N, C, h, w], size, alignCorners: r() < 0.5, threads: pick(r, [0, 1, 3]), ...(output ? { output } : {}) };
}

function componentsArgs(r: R): Args {
  const [N, h, w] = [int(r, 1, 3), int(r, 1, 40), int(r, 1, 40)];
  const total = N * h * w;
  return {
    scores: floats(r, total, 0.05),
    dims: [N, h, w],
    threshold: pick(r, [0, 0.5, -1, 2, Infinity, -Infinity, 1e-45, -3.4e38]),
    ...(r() < 0.3 ? { roi: new Uint8Array(r() < 0.5 ? total : h * w).map(() => (r() < 0.8 ? 1 : 0)) } : {}),
    ...(r() < 0.3 ? { prediction: new Int32Array(total).map(() => int(r, -2, 5)) } : {}),
    connectivity: pick(r, [4, 8, undefined]),
    minArea: pick(r, [0, 1, 3, 50, undefined]),
    labels: r() < 0.7,
    threads: pick(r, [0, 1, 2]),
  };
}

function gridArgs(r: R): Args {
  const args = componentsArgs(r);
  delete args.threads;
  return { ...args, blockDims: pick(r, [undefined, [1, 1], [2, 3], [8, 32], [32, 32]]), shuffleSeed: int(r, 0, 1000) };
}

/** Labels 0 / 1 / 255 mostly, sometimes other values (refused by the accumulators). */
function labels(r: R, n: number): Uint8Array {
  const bad = r() < 0.05;
  return new Uint8Array(n).map(() => (bad && r() < 0.1 ? int(r, 2, 254) : pick(r, [0, 0, 0, 1, 255])));
}

interface Accumulator {
  add(...args: unknown[]): Promise<unknown>;
  finish(...args: unknown[]): Promise<unknown>;
}

/** A session with an accumulator: constructor, several adds (some concurrent, some malformed), finish, misuse after. */
async function accumulatorSession(r: R, kind: 'pixel' | 'instance', record: (outcome: string) => void): Promise<void> {
  const options = kind === 'pixel'
    ? pick(r, [undefined, {}, { mode: 'exact', chunkValues: 1024 }, { mode: 'binned', bins: int(r, 2, 1000), float16: r() < 0.5 }, { bins: 10 }])
    : { threshold: pick(r, [0, 0.5, 1.5]), minPredictedSize: int(r, 0, 20), minGtSize: int(r, 0, 20) };
  const Ctor = (kind === 'pixel' ? native.PixelMetricsAccumulator : native.InstanceMetricsAccumulator) as unknown as new (o?: unknown) => Accumulator;
  let acc: Accumulator;
  try {
    acc = new Ctor(r() < 0.2 ? (mutate(r, { ...(options ?? {}) }, ['mode', 'bins', 'threshold']) as unknown) : options);
  } catch (err) {
    record(checkError(err));
    return;
  }
  const adds: Promise<unknown>[] = [];
  for (let i = int(r, 0, 4); i > 0; i--) {
    const [h, w] = [int(r, 1, 30), int(r, 1, 30)];
    let args: unknown[] = [floats(r, h * w, 0.05), labels(r, h * w), [h, w]];
    if (r() < 0.3) args = args.map((a) => (r() < 0.4 ? randomValue(r) : a)).slice(0, int(r, 0, 4));
    adds.push(settleCall(() => acc.add(...args)).then(record));
    if (r() < 0.5) await adds[adds.length - 1];
  }
  if (r() < 0.1) await settleCall(() => acc.finish()).then(record); // maybe while adds are running
  await Promise.all(adds);
  await settleCall(() => acc.finish(r() < 0.5 ? { threads: pick(r, [0, 1, 2]), curves: r() < 0.5 } : randomValue(r))).then(record);
  record(await settleCall(() => acc.add(new Float32Array(1), new Uint8Array(1), [1, 1]))); // after finish: refused
  for (const getter of ['images', 'pending', 'bytes', 'finished']) void (acc as unknown as Record<string, unknown>)[getter];
}

function checkError(err: unknown): string {
  const e = err as Error;
  if (!(e instanceof Error) || !['TypeError', 'RangeError', 'Error'].includes(e.name)) throw new Error(`unexpected throw: ${String(err)}`);
  if (typeof e.message !== 'string' || e.message.length < 5) throw new Error(`vague message: ${e.name}: ${e.message}`);
  return e.name;
}

/** Runs one call: 'ok' with the result checked by `check`, or the error's name; a hang fails. */
async function settleCall(fn: () => unknown, check?: (out: unknown) => void): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const out = fn();
    if (out && typeof (out as Promise<unknown>).then === 'function') {
      const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(Object.assign(new Error('hang'), { hang: true })), CALL_TIMEOUT_MS);
      });
      const value = await Promise.race([out, timeout]);
      check?.(value);
    } else check?.(out);
    return 'ok';
  } catch (err) {
    if ((err as { hang?: boolean }).hang) throw new Error(`a native call did not settle within ${CALL_TIMEOUT_MS} ms`);
    return checkError(err);
  } finally {
    clearTimeout(timer);
  }
}

const plane = (dims: unknown, drop: number[]) => (dims as number[]).filter((_, i) => !drop.includes(i)).reduce((a, b) => a * b, 1);

/** Results of calls that succeeded have the lengths the call promised. */
function expectScores(args: Args, out: unknown) {
  const o = out as { maps: Float32Array[]; prediction: Int32Array | null };
  const n = plane(args.logitsDims, [1]);
  expect(o.maps).toHaveLength((args.scores as unknown[]).length);
  for (const m of o.maps) expect(m).toHaveLength(n);
  if (args.prediction === false) expect(o.prediction).toBeNull();
  else expect(o.prediction).toHaveLength(n);
}

interface EntryPoint {
  name: string;
  call(r: R): { run: () => unknown; check?: (out: unknown) => void };
}

const entryPoints: EntryPoint[] = [
  {
    name: 'scores',
    call(r) {
      const args = mutate(r, scoresArgs(r), ['backend', 'extra']);
      return { run: () => native.scores(args as never), check: (o) => expectScores(args, o) };
    },
  },
  {
    name: 'secondLayerScores',
    call(r) {
      const args = mutate(r, secondLayerArgs(r), ['backend', 'activation', 'bnScale', 'codeScale']);
      return { run: () => native.secondLayerScores(args as never), check: (o) => expectScores(args, o) };
    },
  },
  {
    name: 'upsample',
    call(r) {
      const args = mutate(r, upsampleArgs(r), ['output']);
      return { run: () => native.upsample(args as never), check: (o) => expect(o).toHaveLength((args.dims as number[])[0] * (args.size as number[])[0] * (args.size as number[])[1]) };
    },
  },
  {
    name: 'upsampleArgmax',
    call(r) {
      const args = mutate(r, upsampleArgmaxArgs(r), ['output']);
      return { run: () => native.upsampleArgmax(args as never), check: (o) => expect(o).toHaveLength((args.dims as number[])[0] * (args.size as number[])[0] * (args.size as number[])[1]) };
    },
  },
  {
    name: 'normalizeImages',
    call(r) {
      const args = mutate(r, normalizeArgs(r), []);
      return { run: () => native.normalizeImages(args as never), check: (o) => expect(o).toHaveLength((args.images as unknown[]).length * 3 * (args.plane as number)) };
    },
  },
  {
    name: 'components',
    call(r) {
      const args = mutate(r, componentsArgs(r), ['backend', 'roi', 'prediction']);
      return {
        run: () => native.components(args as never),
        check: (o) => {
          const res = o as { labels: Uint32Array | null; segments: { counts: Uint32Array; area: Uint32Array } };
          expect(res.segments.counts).toHaveLength((args.dims as number[])[0]);
          expect(res.segments.area).toHaveLength(res.segments.counts.reduce((a, b) => a + b, 0));
          if (res.labels) expect(res.labels).toHaveLength(plane(args.dims, []));
        },
      };
    },
  },
  {
    name: 'componentsGridEmulation',
    call(r) {
      const args = mutate(r, gridArgs(r), ['blockDims', 'shuffleSeed']);
      return { run: () => native.componentsGridEmulation(args as never) };
    },
  },
  {
    name: 'summarizeMaps',
    call(r) {
      const args = mutate(r, { maps: Array.from({ length: int(r, 0, 3) }, () => floats(r, int(r, 1, 50), 0.2)), threads: int(r, 0, 3) }, []);
      return {
        run: () => native.summarizeMaps(args as never),
        check: (o) => {
          expect(o).toHaveLength((args.maps as unknown[]).length);
          for (const s of o as { min: number; max: number; mean: number }[]) expect(typeof s.min === 'number' && typeof s.max === 'number' && typeof s.mean === 'number').toBe(true);
        },
      };
    },
  },
  {
    name: 'release',
    call(r) {
      const whole = () => pick(r, [() => floats(r, int(r, 1, 20)), () => new Int32Array(int(r, 0, 9)), () => new Uint8Array(int(r, 0, 9))])();
      const list = Array.from({ length: int(r, 0, 3) }, () => (r() < 0.8 ? whole() : randomValue(r)));
      const arrays = r() < 0.85 ? list : randomValue(r);
      return {
        run: () => native.release(arrays as never),
        check: () => {
          for (const a of arrays as ArrayBufferView[]) expect(a.byteLength).toBe(0); // accepted: every array now empty
        },
      };
    },
  },
  {
    name: 'random arguments',
    call(r) {
      const fns = [native.scores, native.secondLayerScores, native.upsample, native.upsampleArgmax, native.normalizeImages, native.components, native.componentsGridEmulation, native.cudaDeviceCount, native.summarizeMaps, native.release] as unknown as ((...a: unknown[]) => unknown)[];
      const fn = pick(r, fns);
      const args = Array.from({ length: int(r, 0, 3) }, () => randomValue(r));
      return { run: () => fn(...args) };
    },
  },
  {
    name: 'methods on a foreign this',
    call(r) {
      const protos = [native.PixelMetricsAccumulator.prototype, native.InstanceMetricsAccumulator.prototype] as unknown as Record<string, unknown>[];
      const proto = pick(r, protos);
      const name = pick(r, ['add', 'finish', 'images', 'pending', 'bytes', 'finished'].filter((n) => n in proto));
      const self = pick(r, [undefined, null, {}, 1, 'x', Object.create(proto)]);
      return {
        run: () => {
          const d = Object.getOwnPropertyDescriptor(proto, name);
          if (d?.get) return d.get.call(self);
          return (proto[name] as (...a: unknown[]) => unknown).call(self, new Float32Array(1), new Uint8Array(1), [1, 1]);
        },
      };
    },
  },
];

describe('fuzzing every native entry point', () => {
  test(`${ITERATIONS} calls (seed ${SEED}): each settles with a result or a TypeError/RangeError/Error, none crashes or hangs`, async () => {
    const r = rng(SEED);
    const outcomes: Record<string, Record<string, number>> = {};
    const record = (name: string) => (outcome: string) => {
      outcomes[name] ??= {};
      outcomes[name][outcome] = (outcomes[name][outcome] ?? 0) + 1;
    };
    const accumulators = ['PixelMetricsAccumulator', 'InstanceMetricsAccumulator'];
    const slots = entryPoints.length + accumulators.length;
    let calls = 0;
    for (let i = 0; calls < ITERATIONS; i++) {
      const slot = i % slots;
      if (slot < entryPoints.length) {
        const e = entryPoints[slot]!;
        const { run, check } = e.call(r);
        record(e.name)(await settleCall(run, check));
        calls++;
      } else {
        const name = accumulators[slot - entryPoints.length]!;
        const before = Object.values(outcomes[name] ?? {}).reduce((a, b) => a + b, 0);
        await accumulatorSession(r, name === accumulators[0] ? 'pixel' : 'instance', record(name));
        calls += Math.max(1, Object.values(outcomes[name] ?? {}).reduce((a, b) => a + b, 0) - before);
      }
    }
    // Every entry point must have been reached both with calls it accepts and with calls it refuses.
    for (const name of [...entryPoints.map((e) => e.name).filter((n) => n !== 'random arguments' && n !== 'methods on a foreign this'), ...accumulators]) {
      expect({ name, ok: (outcomes[name]?.ok ?? 0) > 0 }).toEqual({ name, ok: true });
      const refused = (outcomes[name]?.TypeError ?? 0) + (outcomes[name]?.RangeError ?? 0) + (outcomes[name]?.Error ?? 0);
      expect({ name, refused: refused > 0 }).toEqual({ name, refused: true });
    }
    if (process.env.PGN_FUZZ_VERBOSE) console.log(JSON.stringify(outcomes, null, 1));
  });

  test('a typed array transferred away before the call is refused, not read', async () => {
    for (const [fn, args, key] of [
      [native.scores, scoresArgs(rng(1)), 'logits'],
      [native.upsample, upsampleArgs(rng(2)), 'input'],
      [native.upsampleArgmax, upsampleArgmaxArgs(rng(3)), 'logits'],
      [native.normalizeImages, normalizeArgs(rng(6)), 'tables'],
      [native.components, componentsArgs(rng(4)), 'scores'],
      [native.secondLayerScores, secondLayerArgs(rng(5)), 'input'],
    ] as [(a: unknown) => unknown, Args, string][]) {
      const a = args[key] as Float32Array;
      structuredClone(a.buffer, { transfer: [a.buffer as ArrayBuffer] });
      expect(await settleCall(() => fn(args))).toBe('TypeError');
    }
  });
});
