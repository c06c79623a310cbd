/**
 * Admission control of Scorer.score() (issue 15): a bounded number of images in flight, a bounded
 * first-in first-out queue of encoded images, OverloadedError at once beyond it, per-call timeouts
 * and abort signals; the scorer keeps serving after each of them. A generated slow network keeps
 * calls in flight long enough to fill the queue.
 */
import fs from 'node:fs';
import sharp from 'sharp';
import { OverloadedError } from '../src/common/errors';
import { Scorer } from '../src/run/scorer';
import { writeSlowModel } from './helpers/slow-model';

const dir = writeSlowModel({ layers: 12, channels: 48, size: 160 });
let image: Buffer;
beforeAll(async () => {
  image = await sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 200, g: 40, b: 90 } } }).png().toBuffer();
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function withScorer(options: Parameters<typeof Scorer.create>[0], fn: (s: Scorer) => Promise<void>): Promise<void> {
  const scorer = await Scorer.create({ model: dir, intraOpThreads: 1, ...options });
  try {
    await fn(scorer);
  } finally {
    await scorer.dispose();
  }
}

test('beyond maxInFlight + maxQueue a call fails at once with OverloadedError; the others finish first in, first out', async () => {
  await withScorer({ maxInFlight: 1, maxQueue: 2 }, async (scorer) => {
    const order: number[] = [];
    const calls = [0, 1, 2].map((k) => scorer.score(image).then((r) => (order.push(k), r)));
    expect(scorer.load).toEqual({ queued: 2, inFlight: 1 });
    const t0 = performance.now();
    const refused = await scorer.score(image).catch((e: unknown) => e);
    expect(performance.now() - t0).toBeLessThan(50); // not queued, not waited for
    expect(refused).toBeInstanceOf(OverloadedError);
    expect((refused as OverloadedError).code).toBe('PGN_OVERLOADED');
    expect((refused as Error).message).toMatch(/maxInFlight 1.*maxQueue 2/);
    const results = await Promise.all(calls);
    expect(order).toEqual([0, 1, 2]);
    expect(results.every((r) => r.width === 64 && r.height === 48 && r.batchSize === 1)).toBe(true);
    expect(scorer.load).toEqual({ queued: 0, inFlight: 0 });
    expect((await scorer.score(image)).width).toBe(64); // still serving
  });
});

test('in-flight images never exceed maxInFlight, whatever the number of callers', async () => {
  await withScorer({ maxInFlight: 2, maxQueue: 100 }, async (scorer) => {
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, scorer.load.inFlight)), 2);
    const calls = Array.from({ length: 12 }, () => scorer.score(image));
    expect(scorer.load).toEqual({ queued: 10, inFlight: 2 });
    await Promise.all(calls);
    clearInterval(sampler);
    expect(peak).toBe(2);
  });
});

test('timeoutMs and signal fail a queued call with their reason; the queue goes on', async () => {
  await withScorer({ maxInFlight: 1 }, async (scorer) => {
    const first = scorer.score(image);
    const timedOut = scorer.score(image, { timeoutMs: 5 }).catch((e: unknown) => e);
    const controller = new AbortController();
    const aborted = scorer.score(image, { signal: controller.signal }).catch((e: unknown) => e);
    const last = scorer.score(image);
    expect(scorer.load.queued).toBe(3);
    controller.abort();
    expect(await aborted).toMatchObject({ name: 'AbortError' });
    expect(await timedOut).toMatchObject({ name: 'TimeoutError' });
    expect(scorer.load.queued).toBe(1); // both left the queue
    expect((await first).width).toBe(64);
    expect((await last).width).toBe(64);
    await expect(scorer.score(image, { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
  });
});

test('bad admission options and call options are RangeError / TypeError naming the option', async () => {
  for (const [options, pattern] of [
    [{ maxInFlight: 0 }, /maxInFlight must be a positive integer/],
    [{ maxQueue: 1.5 }, /maxQueue must be a positive integer/],
    [{ maxBatch: -1 }, /maxBatch must be a positive integer/],
    [{ maxDelayMs: Number.NaN }, /maxDelayMs must be a finite number/],
  ] as const) await expect(Scorer.create({ model: dir, ...options })).rejects.toThrow(pattern);
  await withScorer({}, async (scorer) => {
    expect(scorer.admission).toEqual({ maxInFlight: 2, maxQueue: 1024, maxBatch: 1, maxDelayMs: 0 });
    await expect(scorer.score(image, { timeoutMs: 0 })).rejects.toThrow(RangeError);
    await expect(scorer.score(image, { signal: 'soon' as unknown as AbortSignal })).rejects.toThrow(TypeError);
  });
});
