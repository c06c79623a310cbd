/**
 * Throws malformed calls at the raw binding: every one must end in a TypeError, RangeError or Error
 * (thrown or as a rejection), never a crash. Seeded; PGN_FUZZ_ITERATIONS raises the count.
 */
import { native } from '../src/addon';
import { rng } from './helpers/reference';
import { expectRejection, expectThrow } from './helpers/errors';
import { settle } from './helpers/fuzz';

const ITERATIONS = Number(process.env.PGN_FUZZ_ITERATIONS ?? 1500);

function randomValue(r: () => number, depth = 0): unknown {
  const pick = Math.floor(r() * 16);
  const len = Math.floor(r() * 40);
  switch (pick) {
    case 0: return undefined;
    case 1: return null;
    case 2: return r() < 0.5 ? NaN : Infinity;
    case 3: return Math.floor(r() * 10) - 3;
    case 4: return r() * 1e12;
    case 5: return 'cuda';
    case 6: return new Float32Array(len).map(() => (r() < 0.1 ? NaN : r()));
    case 7: return new Float64Array(len);
    case 8: return new Int32Array(len);
    case 9: return Array.from({ length: Math.floor(r() * 5) }, () => Math.floor(r() * 6) - 1);
    case 10: return [2 ** 31, 2 ** 31, 4, 4];
    case 11: return depth < 2 ? [randomValue(r, depth + 1), randomValue(r, depth + 1)] : [];
    case 12: return depth < 2 ? { kind: r() < 0.5 ? 'pgn-oh' : 'nope', p: randomValue(r, depth + 1), variant: randomValue(r, depth + 1) } : {};
    case 13: return Symbol('x');
    case 14: return () => 1;
    default: return BigInt(3);
  }
}

// A valid call, then one field replaced at random: exercises each check behind the others.
function mutatedScoresArgs(r: () => number): Record<string, unknown> {
  const N = 1, C = 3, F = 2, h = 2, w = 2;
  const args: Record<string, unknown> = {
    logits: new Float32Array(N * C * h * w),
    logitsDims: [N, C, h, w],
    features: new Float32Array(N * F * h * w),
    featuresDims: [N, F, h, w],
    scores: [{ kind: 'pgn-oh', p: 0.5 }, { kind: 'entropy' }],
    prediction: true,
    threads: 1,
  };
  const keys = [...Object.keys(args), 'backend'];
  const count = 1 + Math.floor(r() * 3);
  for (let i = 0; i < count; i++) args[keys[Math.floor(r() * keys.length)]] = randomValue(r);
  return args;
}

describe('binding fuzz', () => {
  test('300 random values for setSpinWait() are taken or refused with a typed error, never a crash', async () => {
    const r = rng(77);
    const outcomes: Record<string, number> = {};
    try {
      for (let i = 0; i < 300; i++) {
        const outcome = await settle(() => native.setSpinWait(randomValue(r) as never));
        outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
        expect(Number.isInteger(native.spinWait()) && native.spinWait() >= 0 && native.spinWait() <= 1e6).toBe(true);
      }
    } finally {
      native.setSpinWait(1000);
    }
    expect(outcomes.TypeError).toBeGreaterThan(0);
    expect(Object.keys(outcomes).every((k) => ['ok', 'TypeError', 'RangeError'].includes(k))).toBe(true);
  });

  test(`${ITERATIONS} malformed scores() and upsample() calls never crash`, async () => {
    const r = rng(2024);
    const outcomes: Record<string, number> = {};
    for (let i = 0; i < ITERATIONS; i++) {
      const calls: (() => unknown)[] = [
        () => native.scores(mutatedScoresArgs(r) as never),
        () => native.scores(randomValue(r) as never),
        () => native.upsample({ input: randomValue(r), dims: randomValue(r), size: randomValue(r), alignCorners: randomValue(r) } as never),
        () => (native.scores as (...a: unknown[]) => unknown)(),
      ];
      const outcome = await settle(calls[i % calls.length]);
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
    }
    // The mutations must reach the validation paths, and some calls must still be valid.
    expect(outcomes.TypeError).toBeGreaterThan(ITERATIONS / 10);
    expect(outcomes.RangeError).toBeGreaterThan(ITERATIONS / 50);
    expect(outcomes.ok).toBeGreaterThan(0);
  });

  const base = () => ({ logits: new Float32Array(12), logitsDims: [1, 3, 2, 2], features: new Float32Array(8), featuresDims: [1, 2, 2, 2], scores: [{ kind: 'pgn-oh', p: 1 }] });

  test('specific malformed inputs give precise errors', async () => {
    expectThrow(() => native.scores({ ...base(), logitsDims: [1, 3, 2] }), 'RangeError', /logitsDims must have 4 dimensions, got 3/);
    expectThrow(() => native.scores({ ...base(), logitsDims: [1, 1, 2, 6] }), 'RangeError', /classes\) must be >= 2/);
    expectThrow(() => native.scores({ ...base(), logitsDims: [2 ** 20, 2 ** 20, 2 ** 20, 2] }), 'RangeError', /more than 2\^31 elements/);
    expectThrow(() => native.scores({ ...base(), featuresDims: [2, 2, 2, 2], features: new Float32Array(16) }), 'RangeError', /must match logitsDims/);
    expectThrow(() => native.scores({ ...base(), features: new Float32Array(7) }), 'RangeError', /features has 7 elements but its dims call for 8/);
    expectThrow(() => native.scores({ ...base(), logits: new Float64Array(12) as never }), 'TypeError', /logits must be a Float32Array/);
    expectThrow(() => native.scores({ ...base(), scores: [{ kind: 'pgn-oh', p: 0 }] }), 'RangeError', /scores\[0\]\.p must be a number in \(0, 1e6\]/);
    expectThrow(() => native.scores({ ...base(), scores: [{ kind: 'pgn-oh', p: NaN }] }), 'RangeError', /scores\[0\]\.p/);
    expectThrow(() => native.scores({ ...base(), scores: [{ kind: 'gradnorm' }] }), 'RangeError', /scores\[0\]\.kind must be one of/);
    expectThrow(() => native.scores({ ...base(), threads: 1.5 }), 'RangeError', /threads must be an integer/);
    expectThrow(() => native.scores({ ...base(), backend: 'tpu' }), 'RangeError', /backend must be "cpu" or "cuda"/);
    expectThrow(() => native.scores({ ...base(), backend: 'cuda' }), 'Error', /cuda/);
    expectThrow(() => native.scores({ ...base(), featuresDims: [1, 0, 2, 2], features: new Float32Array(0) }), 'RangeError', /featuresDims\[1\] must be a positive integer/);
  });

  test('a detached buffer is refused, not read', () => {
    const args = base();
    structuredClone(args.logits.buffer, { transfer: [args.logits.buffer] });
    expectThrow(() => native.scores(args), 'TypeError', /logits is empty or its buffer was detached/);
  });

  test('NaN and Inf in logits or features reject with the flat index', async () => {
    const a = base();
    a.logits[5] = NaN;
    await expectRejection(native.scores(a), 'RangeError', /logits contain a non-finite value \(NaN or Inf\) at flat index 5/);
    const b = base();
    b.features[6] = -Infinity;
    await expectRejection(native.scores(b), 'RangeError', /features contain a non-finite value \(NaN or Inf\) at flat index 6/);
  });
});
