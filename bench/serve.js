/**
 * Issue 15's load figures: `pgn serve` on loopback under autocannon at concurrency 1, 8 and 32
 * (throughput, latency p50/p95/p99, errors, /healthz latency while loaded, the server's peak RSS),
 * the same closed loop of concurrent callers on the in-process API (Scorer.score), and the offline
 * `pgn bench` throughput of the same model, on a 1920×1080 JPEG. The demo model always; the real
 * ESPNetv2 (../shared/real/espnetv2) when present. Every run is bounded (PGN_SERVE_SECONDS each,
 * after PGN_SERVE_WARMUP seconds of the same load that are not measured).
 */
const { execFileSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const { monitorEventLoopDelay, performance } = require('node:perf_hooks');
const autocannon = require('autocannon');
const { image2mp } = require('./backend');

const CLI = path.join(__dirname, '..', 'dist', 'cli', 'index.js');
const ESPNET = path.join(__dirname, '..', '..', 'shared', 'real', 'espnetv2');
const SECONDS = Number(process.env.PGN_SERVE_SECONDS ?? 10);
const WARMUP = Number(process.env.PGN_SERVE_WARMUP ?? 3);
const CONCURRENCY = (process.env.PGN_SERVE_CONCURRENCY ?? '1,8,32').split(',').map(Number);

function percentiles(values) {
  const s = [...values].sort((a, b) => a - b);
  const at = (q) => (s.length ? s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)] : NaN);
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99), max: s[s.length - 1] ?? NaN };
}

/** Peak RSS of `pgn serve`'s server: the launched process's child (src/cli/serve.ts starts the server again under a heap flag). */
function peakRss(pid) {
  const children = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  const server = children.length === 1 ? children[0] : pid;
  return Number(/VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${server}/status`, 'utf8'))[1]) / 1024;
}

async function startServer(model, extra) {
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--model', model, '--max-queue', '256', ...extra], { stdio: ['ignore', 'pipe', 'inherit'] });
  for await (const line of readline.createInterface({ input: child.stdout })) {
    const m = /^listening on (\S+)$/.exec(line);
    if (m) return { url: m[1], child };
  }
  throw new Error('pgn serve did not start');
}

/**
 * GET /healthz every 50 ms until stopped: its latencies. The probe is a process of its own, as a
 * health checker is: inside the load generator it would also time the generator's own event loop.
 */
function probeHealth(url) {
  const child = spawn(process.execPath, [__filename, 'probe', url], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const exited = new Promise((r) => child.on('exit', r));
  return async () => {
    child.stdin.end();
    await exited;
    return JSON.parse(out);
  };
}

/** The probe process: /healthz every 50 ms until stdin closes, then its percentiles on stdout. */
async function probe(url) {
  const times = [];
  let on = true;
  process.stdin.on('end', () => (on = false)).resume();
  while (on) {
    const t0 = performance.now();
    await fetch(`${url}/healthz`).then((r) => r.arrayBuffer());
    times.push(performance.now() - t0);
    await new Promise((r) => setTimeout(r, 50));
  }
  process.stdout.write(JSON.stringify(percentiles(times)));
}

async function served(model, connections, jpeg, extra = []) {
  const { url, child } = await startServer(model, extra);
  const load = { url: `${url}/v1/score`, method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: jpeg, connections, timeout: 120 };
  // Warm-up at the same concurrency (first batches of each size, JIT, pools), then the measured
  // window: its figures are the saturated steady state. Reading /metrics resets the lag histogram.
  await autocannon({ ...load, duration: WARMUP });
  await fetch(`${url}/metrics`).then((r) => r.text());
  const latencies = [];
  const stopProbe = probeHealth(url);
  const t0 = performance.now();
  const instance = autocannon({ ...load, duration: SECONDS });
  instance.on('response', (_client, status, _bytes, ms) => status === 200 && latencies.push(ms));
  const result = await instance;
  const elapsed = (performance.now() - t0) / 1000;
  const health = await stopProbe();
  const metrics = await (await fetch(`${url}/metrics`)).text();
  const serverLag = 1000 * Number(/^nodejs_eventloop_lag_max_seconds (\S+)$/m.exec(metrics)?.[1]);
  const rss = peakRss(child.pid);
  child.kill('SIGTERM');
  await new Promise((r) => child.on('exit', r));
  const errors = result.errors + result.non2xx + result.timeouts;
  return { connections, perSecond: latencies.length / elapsed, ...percentiles(latencies), errors, healthP99: health.p99, healthMax: health.max, maxLag: serverLag, rss };
}

/** The in-process API: `connections` callers each looping on scorer.score() for SECONDS (in a child). */
async function inProcess(model, connections) {
  const { Scorer } = require('../dist');
  const jpeg = await image2mp();
  const scorer = await Scorer.create({ model, maxQueue: 256, segments: { minArea: 100 } }); // as pgn serve
  await scorer.score(jpeg);
  const lag = monitorEventLoopDelay({ resolution: 1 });
  lag.enable();
  const latencies = [];
  const t0 = performance.now();
  const end = t0 + SECONDS * 1000;
  await Promise.all(Array.from({ length: connections }, async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      await scorer.score(jpeg);
      latencies.push(performance.now() - t0);
    }
  }));
  lag.disable();
  const elapsed = (performance.now() - t0) / 1000;
  await scorer.dispose();
  const rss = Number(/VmHWM:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]) / 1024;
  return { connections, perSecond: latencies.length / elapsed, ...percentiles(latencies), maxLag: lag.max / 1e6, rss };
}

function offline(model, batch) {
  const { runBench } = require('../dist/cli/bench');
  return runBench({ model, size: [1080, 1920], batch, iterations: Math.max(16, 4 * batch), warmup: 1, segments: true }).then((r) => ({ batch, perSecond: r.imagesPerSecond }));
}

async function run() {
  const jpeg = await image2mp();
  const models = [['demo', path.join(__dirname, '..', 'models', 'demo')]];
  if (process.env.PGN_SERVE_DEMO_ONLY) console.warn('ESPNetv2 skipped: PGN_SERVE_DEMO_ONLY');
  else if (fs.existsSync(ESPNET)) models.push(['ESPNetv2', ESPNET]);
  else console.warn(`ESPNetv2 skipped: ${ESPNET} not found`);
  const rows = [];
  for (const [name, model] of models) {
    const offlineRows = [await offline(model, 1)];
    if (name === 'demo') offlineRows.push(await offline(model, 4));
    const servedRows = [];
    for (const c of CONCURRENCY) servedRows.push(await served(model, c, jpeg));
    if (name === 'demo') {
      // The batched case with the server's threads at the event loop's priority, for comparison.
      const batched = ['--max-batch', '4', '--max-delay-ms', '5'];
      servedRows.push({ ...(await served(model, 32, jpeg, batched)), note: '--max-batch 4' });
      servedRows.push({ ...(await served(model, 32, jpeg, [...batched, '--worker-nice', '0'])), note: '--max-batch 4 --worker-nice 0' });
    }
    const apiRows = CONCURRENCY.map((c) => JSON.parse(execFileSync(process.execPath, [__filename, 'api', model, String(c)], { encoding: 'utf8' })));
    rows.push({ name, offline: offlineRows, served: servedRows, api: apiRows, load: os.loadavg()[0] });
  }
  return rows;
}

const f = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '–');

function print(rows) {
  for (const r of rows) {
    console.log(`\n## Serving, ${r.name} model, 1920×1080 JPEG, ${SECONDS} s per run (load average ${f(r.load, 1)} on ${os.cpus().length} cores)\n`);
    console.log(`Offline \`pgn bench\`: ${r.offline.map((o) => `batch ${o.batch}: ${f(o.perSecond, 2)} images/s`).join(', ')}\n`);
    console.log('| | concurrency | images/s | p50 (ms) | p95 (ms) | p99 (ms) | errors | /healthz p99 / max (ms) | max lag (ms) | peak RSS (MiB) |');
    console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const s of r.served) console.log(`| pgn serve${s.note ? ` ${s.note}` : ''} | ${s.connections} | ${f(s.perSecond, 2)} | ${f(s.p50)} | ${f(s.p95)} | ${f(s.p99)} | ${s.errors} | ${f(s.healthP99)} / ${f(s.healthMax)} | ${f(s.maxLag)} | ${f(s.rss)} |`);
    for (const a of r.api) console.log(`| API, Scorer.score() | ${a.connections} | ${f(a.perSecond, 2)} | ${f(a.p50)} | ${f(a.p95)} | ${f(a.p99)} | 0 | | ${f(a.maxLag)} | ${f(a.rss)} |`);
  }
}

module.exports = { run, print };

if (require.main === module) {
  if (process.argv[2] === 'api') inProcess(process.argv[3], Number(process.argv[4])).then((r) => process.stdout.write(JSON.stringify(r)));
  else if (process.argv[2] === 'probe') probe(process.argv[3]);
  else run().then(print);
}
