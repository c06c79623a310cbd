/**
 * FprThreshold (pgn calibrate's streaming threshold): time and memory over many 2-megapixel maps.
 * Memory stays flat whatever the number of pixels (two 65536-entry tables and a 4 MiB chunk; the
 * values go to a temporary file), where thresholdAtFpr on all maps at once needs them all in memory.
 */
const { FprThreshold } = require('../dist/scoring/fpr-threshold');

async function run() {
  const rows = [];
  const size = 1024 * 2048;
  const map = new Float32Array(size);
  for (const images of [5, 25]) {
    global.gc?.();
    const rss0 = process.memoryUsage().rss;
    let peak = rss0;
    const t = new FprThreshold(0.05);
    const t0 = performance.now();
    let seed = 1;
    for (let i = 0; i < images; i++) {
      for (let j = 0; j < size; j++) map[j] = ((seed = (seed * 1103515245 + 12345) >>> 0) / 4294967296) * 1000;
      await t.add(map);
      peak = Math.max(peak, process.memoryUsage().rss);
    }
    const threshold = await t.finish();
    const ms = performance.now() - t0;
    rows.push({ images, pixels: images * size, ms, threshold, rssGrowthMiB: (peak - rss0) / 2 ** 20 });
  }
  return rows;
}

function print(rows) {
  console.log('\n### FprThreshold: exact streaming threshold over 1024×2048 maps (fpr 0.05)\n');
  console.log('| maps | pixels | total ms (incl. making the maps) | ms per map | peak RSS growth | all-in-memory need (maps + sorted copy) |');
  console.log('|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) console.log(`| ${r.images} | ${r.pixels} | ${r.ms.toFixed(0)} | ${(r.ms / r.images).toFixed(0)} | ${r.rssGrowthMiB.toFixed(0)} MiB | ${((r.pixels * 8) / 2 ** 20).toFixed(0)} MiB |`);
}

module.exports = { run, print };
if (require.main === module) run().then(print);
