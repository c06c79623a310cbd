/**
 * Issue 15's in-process figures: the event-loop lag during one score() of the real ESPNetv2 model
 * (../shared/real/espnetv2), and 64 concurrent score() calls on 2 MP JPEGs with the demo model
 * (peak RSS, max event-loop lag, when the first and last calls finish). Each scenario runs in a
 * fresh child process so that its peak RSS (VmHWM) is its own.
 */
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { monitorEventLoopDelay, performance } = require('node:perf_hooks');
const sharp = require('sharp');

const REAL = path.join(__dirname, '..', '..', 'shared', 'real');
const ESPNET = path.join(REAL, 'espnetv2');

function peakRssMiB() {
  return Number(/VmHWM:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]) / 1024;
}

/** A 1920×1080 JPEG: the first RoadObstacle21 image when ../shared is there, else a synthetic one. */
async function image2mp() {
  const dir = path.join(REAL, 'roadobstacle21', 'images');
  if (fs.existsSync(dir)) return sharp(path.join(dir, fs.readdirSync(dir).sort()[0])).jpeg({ quality: 90 }).toBuffer();
  const raw = Buffer.alloc(1920 * 1080 * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 7 + (i >> 11) * 13) & 255;
  return sharp(raw, { raw: { width: 1920, height: 1080, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
}

/** Runs fn with an event-loop delay monitor (1 ms resolution); returns fn's value and the max lag in ms. */
async function withLag(fn) {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const value = await fn();
  h.disable();
  return { value, maxLagMs: Math.max(0, h.max / 1e6 - 1) };
}

/** One scenario, in this (child) process. */
async function scenario(name) {
  if (name === 'idle') { // the lag this shared machine adds by itself: 2 s of an idle loop
    const { maxLagMs } = await withLag(() => new Promise((resolve) => setTimeout(resolve, 2000)));
    return { maxLagMs };
  }
  const { Scorer } = require('../dist');
  const jpeg = await image2mp();
  if (name === 'espnet-one') {
    const scorer = await Scorer.create({ model: ESPNET });
    await scorer.score(jpeg); // warm-up
    const t0 = performance.now();
    const { maxLagMs } = await withLag(() => scorer.score(jpeg));
    const callMs = performance.now() - t0;
    await scorer.dispose();
    return { maxLagMs, callMs };
  }
  const n = Number(name.replace('demo-concurrent-', ''));
  const scorer = await Scorer.create({});
  await scorer.score(jpeg);
  const t0 = performance.now();
  const done = [];
  const { maxLagMs } = await withLag(() => Promise.all(Array.from({ length: n }, () => scorer.score(jpeg).then(() => done.push(performance.now() - t0)))));
  await scorer.dispose();
  return { calls: n, maxLagMs, peakRssMiB: peakRssMiB(), firstMs: Math.min(...done), lastMs: Math.max(...done) };
}

function inChild(name) {
  return JSON.parse(execFileSync(process.execPath, [__filename, name], { encoding: 'utf8' }));
}

async function run() {
  const rows = [{ name: 'idle', ...inChild('idle') }];
  if (fs.existsSync(ESPNET)) rows.push({ name: 'espnet-one', ...inChild('espnet-one') });
  else console.warn(`espnet-one skipped: ${ESPNET} not found`);
  for (const n of [1, 8, 64]) rows.push({ name: `demo-concurrent-${n}`, ...inChild(`demo-concurrent-${n}`) });
  return rows;
}

function print(rows) {
  console.log('\n## Backends: event-loop lag and memory under concurrent calls (2 MP JPEG)\n');
  console.log('| scenario | calls | max event-loop lag (ms) | call time (ms) | peak RSS (MiB) | first / last done (ms) |');
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    if (r.name === 'idle') console.log(`| idle process (the machine's own lag) | 0 | ${r.maxLagMs.toFixed(0)} | | | |`);
    else if (r.name === 'espnet-one') console.log(`| ESPNetv2, one score() | 1 | ${r.maxLagMs.toFixed(0)} | ${r.callMs.toFixed(0)} | | |`);
    else console.log(`| demo model, concurrent score() | ${r.calls} | ${r.maxLagMs.toFixed(0)} | | ${r.peakRssMiB.toFixed(0)} | ${r.firstMs.toFixed(0)} / ${r.lastMs.toFixed(0)} |`);
  }
}

module.exports = { run, print, image2mp };

if (require.main === module) {
  if (process.argv[2]) scenario(process.argv[2]).then((r) => process.stdout.write(JSON.stringify(r)));
  else run().then(print);
}
