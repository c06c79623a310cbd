/**
 * Inference runs off the main thread (issue 15): while a slow generated network (>= 200 ms per
 * inference) scores an image, the event loop keeps turning.
 */
import fs from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import sharp from 'sharp';
import { Scorer } from '../src/run/scorer';
import { writeSlowModel } from './helpers/slow-model';

const dir = writeSlowModel({ layers: 64, channels: 64, size: 256 }) // ~400 ms idle, well above the premise;
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('the event loop stays responsive during a slow inference', async () => {
  const image = await sharp({ create: { width: 160, height: 120, channels: 3, background: { r: 90, g: 140, b: 30 } } }).png().toBuffer();
  const scorer = await Scorer.create({ model: dir, intraOpThreads: 1 });
  try {
    await scorer.score(image); // warm-up
    const lag = monitorEventLoopDelay({ resolution: 1 });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    lag.enable();
    const result = await scorer.score(image);
    lag.disable();
    clearInterval(timer);
    const maxLagMs = lag.max / 1e6;
    console.log(`slow model: inference ${result.timings.inference.toFixed(0)} ms, max event-loop lag ${maxLagMs.toFixed(1)} ms, ${ticks} timer ticks`);
    expect(result.timings.inference).toBeGreaterThanOrEqual(200); // the premise: a slow inference
    // On the main thread the lag would be the whole inference; a loaded shared machine adds some.
    expect(maxLagMs).toBeLessThan(result.timings.inference / 3);
    expect(ticks).toBeGreaterThanOrEqual(result.timings.inference / 5 / 4);
  } finally {
    await scorer.dispose();
  }
});
