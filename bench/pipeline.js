/**
 * Issue 6's figures: `pgn bench` on the demo model at 512×1024 and 1024×2048 (per-stage latency,
 * throughput, scoring overhead), and a soak run of `pgn score` over 2000 images whose resident
 * memory is sampled after the first 100 and at the end.
 */
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const sharp = require('sharp');
const { runBench, benchTable } = require('../dist/cli/bench');

const MODEL = process.env.PGN_BENCH_MODEL ?? path.join(__dirname, '..', 'models', 'demo');
const SOAK_IMAGES = Number(process.env.PGN_SOAK_IMAGES ?? 2000);

function rssOf(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)[1]) / 1024; // MiB
}

async function soak() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgn-soak-'));
  try {
    const distinct = 20;
    const sources = await Promise.all(Array.from({ length: distinct }, (_, k) => {
      const raw = Buffer.alloc(512 * 256 * 3);
      for (let i = 0; i < raw.length; i++) raw[i] = (i * (k + 3) + (i >> 9) * 7) & 255;
      return sharp(raw, { raw: { width: 512, height: 256, channels: 3 } }).jpeg().toBuffer();
    }));
    for (let i = 0; i < SOAK_IMAGES; i++) fs.writeFileSync(path.join(dir, `img${String(i).padStart(5, '0')}.jpg`), sources[i % distinct]);
    const out = path.join(dir, 'out');
    const child = spawn(process.execPath, [path.join(__dirname, '..', 'dist', 'cli', 'index.js'), 'score', dir, '--model', MODEL, '--out', out, '--no-npy', '--batch', '4'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let lines = 0;
    let after100 = NaN;
    let peak = 0;
    const t0 = performance.now();
    for await (const line of readline.createInterface({ input: child.stdout })) {
      if (!line) continue;
      lines++;
      const rss = rssOf(child.pid);
      peak = Math.max(peak, lines >= 100 ? rss : 0);
      if (lines === 100) after100 = rss;
      if (lines === SOAK_IMAGES) break;
    }
    const end = rssOf(child.pid);
    await new Promise((resolve) => child.on('close', resolve));
    return { images: lines, after100, end, peak, seconds: (performance.now() - t0) / 1000 };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function run() {
  const benches = [];
  for (const size of [[512, 1024], [1024, 2048]])
    benches.push(await runBench({ model: MODEL, size, batch: 1, iterations: 20, warmup: 2, segments: true }));
  return { benches, soak: await soak() };
}

function print({ benches, soak: s }) {
  for (const b of benches) console.log(`\n## pgn bench, ${b.size[0]}×${b.size[1]}\n\n${benchTable(b)}`);
  console.log(`\n## Soak: pgn score over ${s.images} images (256×512 JPEG, batch 4, overlays and predictions written)`);
  console.log('| RSS after 100 (MiB) | peak after 100 (MiB) | RSS at the end (MiB) | growth after 100 | images/s |');
  console.log('|---:|---:|---:|---:|---:|');
  console.log(`| ${s.after100.toFixed(0)} | ${s.peak.toFixed(0)} | ${s.end.toFixed(0)} | ${(100 * (s.peak / s.after100 - 1)).toFixed(1)} % | ${(s.images / s.seconds).toFixed(1)} |`);
}

module.exports = { run, print };

if (require.main === module) run().then(print);
