/**
 * Issue 16's figure: the cost of the journal. `pgn score` over the demo set (40 images, 512×256)
 * repeated in `PGN_JOURNAL_COPIES` folders, with --out, its NDJSON lines to stdout (redirected to a
 * file) or appended to a journal (--ndjson: one write per line, fdatasync per batch and per second),
 * at --batch 1 and 4. Images/s over the whole run, start-up included; the median of 5 interleaved runs.
 */
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');
const cli = path.join(root, 'dist', 'cli', 'index.js');
const demo = path.join(root, 'models', 'demo', 'eval', 'images');
const COPIES = Number(process.env.PGN_JOURNAL_COPIES ?? 3);

function timed(args, stdoutFile) {
  const t0 = process.hrtime.bigint();
  const out = fs.openSync(stdoutFile, 'w');
  execFileSync('node', [cli, 'score', ...args], { stdio: ['ignore', out, 'ignore'] });
  fs.closeSync(out);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function run() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgn-journal-bench-'));
  try {
    for (let c = 0; c < COPIES; c++) fs.cpSync(demo, path.join(dir, 'in', `copy${c}`), { recursive: true });
    const n = fs.readdirSync(demo).length * COPIES;
    const rows = [];
    const RUNS = Number(process.env.PGN_JOURNAL_RUNS ?? 5);
    for (const batch of [1, 4]) {
      // Interleaved (stdout, journal, stdout, …): the load of a shared machine drifts over minutes.
      const times = { false: [], true: [] };
      for (let k = 0; k < RUNS; k++)
        for (const journal of [false, true]) {
          fs.rmSync(path.join(dir, 'out'), { recursive: true, force: true });
          const file = path.join(dir, 'run.ndjson');
          fs.rmSync(file, { force: true });
          const args = [path.join(dir, 'in'), '--out', path.join(dir, 'out'), '--batch', String(batch), ...(journal ? ['--ndjson', file] : [])];
          times[journal].push(timed(args, journal ? '/dev/null' : file));
        }
      for (const journal of [false, true]) {
        const median = times[journal].sort((a, b) => a - b)[Math.floor(RUNS / 2)];
        rows.push({ batch, journal, images: n, seconds: median, rate: n / median });
      }
    }
    return rows;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function print(rows) {
  console.log('\n| --batch | NDJSON | images | s (median) | images/s |\n|---:|---|---:|---:|---:|');
  for (const r of rows) console.log(`| ${r.batch} | ${r.journal ? '--ndjson journal' : 'stdout'} | ${r.images} | ${r.seconds.toFixed(2)} | ${r.rate.toFixed(1)} |`);
}

module.exports = { run, print };
if (require.main === module) run().then(print);
