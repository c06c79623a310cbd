/**
 * OoD segments benchmark (issues 4, 18): connected components with statistics of 1024×2048 maps,
 * ours through the public findSegments (threshold of the float32 score map + labeling + area, bbox,
 * centroid, mean and max score, the label image handed to JavaScript) next to OpenCV's
 * cv2.connectedComponentsWithStats (8-connectivity, CV_32S labels, on the already thresholded uint8
 * mask) in the same run, same masks, same threads. findSegments builds the Segment objects on the
 * first read of result.segments: "+ objects" times the call and that read (every segment as an object).
 *
 * Masks: uniform random at densities 0.1, 0.5, 0.9, and blobs (box-blurred noise thresholded at
 * the 50% and 90% quantiles). OpenCV runs in a python3 child (Debian's python3-opencv) on the masks
 * written to a temporary .npy; only the call is timed (file I/O excluded). Rounds alternate between
 * ours and OpenCV; wall clock (median and min) and CPU time are reported, the latter being the
 * robust figure on a shared machine: all threads of the process, garbage collection included, as
 * the median over the calls and as the median over the rounds of a round's mean per call (V8
 * collects every few calls: a per-call median charges each call either all of a collection or none).
 * A full garbage collection before each series (untimed) keeps one series' garbage (10^5 segment
 * objects) from being collected during the next; what a series' own calls make V8 collect counts.
 * Env: PGN_THREADS (default: 1 and all cores), PGN_BENCH_REPS (default 9 per round), PGN_BENCH_ROUNDS (3),
 * PGN_PYTHON (default /usr/bin/python3).
 */
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const v8 = require('node:v8');
const vm = require('node:vm');
const { findSegments } = require('../dist/scoring/segments');
const { native } = require('../dist/addon');
const { encodeNpy } = require('../dist/common/npy');

const H = 1024, W = 2048;
const PYTHON = process.env.PGN_PYTHON ?? '/usr/bin/python3';

function random(seed) {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 4294967296;
  };
}

// Uniform scores in [0, 1): score > 1 − d has density d.
function uniformMap(seed) {
  const r = random(seed);
  return Float32Array.from({ length: H * W }, () => r());
}

// Noise box-blurred three times (radius 6): smooth blobs; rank-normalized so that score > 1 − d
// again has density d.
function blobMap(seed) {
  const r = random(seed);
  let a = Float32Array.from({ length: H * W }, () => r());
  const rad = 6;
  for (let pass = 0; pass < 3; pass++) {
    const b = new Float32Array(H * W);
    for (let y = 0; y < H; y++) {
      let acc = 0;
      for (let x = -rad; x <= rad; x++) acc += a[y * W + Math.min(W - 1, Math.max(0, x))];
      for (let x = 0; x < W; x++) {
        b[y * W + x] = acc / (2 * rad + 1);
        acc += a[y * W + Math.min(W - 1, x + rad + 1)] - a[y * W + Math.max(0, x - rad)];
      }
    }
    for (let x = 0; x < W; x++) {
      let acc = 0;
      for (let y = -rad; y <= rad; y++) acc += b[Math.min(H - 1, Math.max(0, y)) * W + x];
      for (let y = 0; y < H; y++) {
        a[y * W + x] = acc / (2 * rad + 1);
        acc += b[Math.min(H - 1, y + rad + 1) * W + x] - b[Math.max(0, y - rad) * W + x];
      }
    }
  }
  const order = Uint32Array.from({ length: H * W }, (_, i) => i).sort((i, j) => a[i] - a[j]);
  const ranks = new Float32Array(H * W);
  order.forEach((i, k) => (ranks[i] = k / (H * W)));
  return ranks;
}

// A persistent python3 child: one JSON command per line ({ file, threads, reps }), one JSON answer.
// Times cv2.connectedComponentsWithStats alone: wall clock and the process's CPU time.
const PY = `
import json, sys, time
import numpy as np, cv2
print(json.dumps({"version": cv2.__version__}), flush=True)
for line in sys.stdin:
    cmd = json.loads(line)
    cv2.setNumThreads(cmd["threads"])
    m = np.load(cmd["file"])
    cv2.connectedComponentsWithStats(m, connectivity=8, ltype=cv2.CV_32S)
    wall, cpu = [], []
    for _ in range(cmd["reps"]):
        t, c = time.perf_counter(), time.process_time()
        n, labels, stats, centroids = cv2.connectedComponentsWithStats(m, connectivity=8, ltype=cv2.CV_32S)
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - t)
    print(json.dumps({"wall": wall, "cpu": cpu, "components": int(n) - 1}), flush=True)
`;

class OpenCV {
  constructor() {
    this.child = spawn(PYTHON, ['-c', PY], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.buffer = '';
    this.waiting = [];
    this.stderr = '';
    this.child.stdout.on('data', (chunk) => {
      this.buffer += chunk;
      let nl;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, nl);
        this.buffer = this.buffer.slice(nl + 1);
        this.waiting.shift()?.resolve(JSON.parse(line));
      }
    });
    this.child.stderr.on('data', (chunk) => (this.stderr += chunk));
    this.child.on('exit', () => {
      for (const w of this.waiting.splice(0)) w.reject(new Error(`OpenCV unavailable (${PYTHON} with cv2 and numpy): ${this.stderr.trim().split('\n').pop()}`));
    });
    this.child.on('error', () => undefined);
    this.ready = this.next();
  }
  next() {
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }
  async run(file, threads, reps) {
    await this.ready;
    const answer = this.next();
    this.child.stdin.write(JSON.stringify({ file, threads, reps }) + '\n');
    return answer;
  }
  close() {
    this.child.stdin.end();
  }
}

// Wall-clock and CPU seconds of each call (CPU: the whole process, i.e. all threads of the call, as
// the machine may be shared and wall clock then measures the neighbours too).
v8.setFlagsFromString('--expose-gc');
const collectGarbage = vm.runInNewContext('gc');

async function timeOurs(fn, reps) {
  await fn();
  collectGarbage();
  const wall = [], cpu = [];
  for (let i = 0; i < reps; i++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await fn();
    wall.push(Number(process.hrtime.bigint() - t0) / 1e9);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1e6);
  }
  return { wall, cpu };
}

const pause = () => new Promise((resolve) => setTimeout(resolve, 200));

const mean = (a) => a.reduce((x, y) => x + y, 0) / a.length;

function median(a) {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)];
}

async function run({ threads, reps = Number(process.env.PGN_BENCH_REPS ?? 9), rounds = Number(process.env.PGN_BENCH_ROUNDS ?? 3) } = {}) {
  const threadList = threads !== undefined ? [threads] : process.env.PGN_THREADS ? [Number(process.env.PGN_THREADS)] : [...new Set([1, native.defaultThreads])];
  const masks = [
    ['random d=0.1', () => uniformMap(1), 0.1],
    ['random d=0.5', () => uniformMap(2), 0.5],
    ['random d=0.9', () => uniformMap(3), 0.9],
    ['blobs d=0.5', () => blobMap(4), 0.5],
    ['blobs d=0.1', () => blobMap(5), 0.1],
  ];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgn-bench-components-'));
  const cv = new OpenCV();
  const rows = [];
  try {
    const version = await cv.ready.then((v) => v.version, () => null);
    for (const [name, make, density] of masks) {
      const scores = { data: make(), dims: [1, H, W] };
      const threshold = 1 - density;
      const mask = Uint8Array.from(scores.data, (v) => (v > threshold ? 1 : 0));
      const file = path.join(dir, 'mask.npy');
      fs.writeFileSync(file, encodeNpy(mask, [H, W]));
      for (const t of threadList) {
        const options = { threshold, threads: t };
        // cpu: every call's; series: each round's mean per call.
        const ours = { wall: [], cpu: [], series: [] }, objects = { wall: [], cpu: [], series: [] }, opencv = { wall: [], cpu: [], series: [] };
        let cvComponents = null, error = null;
        // Rounds alternate between the two, so that both see the same load; a pause after each
        // lets the other side's idle workers (TBB's spin before sleeping) settle.
        for (let round = 0; round < rounds; round++) {
          await pause();
          const a = await timeOurs(() => findSegments(scores, options), reps);
          ours.wall.push(...a.wall);
          ours.cpu.push(...a.cpu);
          ours.series.push(mean(a.cpu));
          const b = await timeOurs(async () => (await findSegments(scores, options)).segments, Math.max(1, Math.floor(reps / 3)));
          objects.wall.push(...b.wall);
          objects.series.push(mean(b.cpu));
          if (error) continue;
          try {
            await pause();
            const c = await cv.run(file, t, reps);
            opencv.wall.push(...c.wall);
            opencv.cpu.push(...c.cpu);
            opencv.series.push(mean(c.cpu));
            cvComponents = c.components;
          } catch (err) {
            error = err.message;
          }
        }
        const { segments } = await findSegments(scores, options);
        const px = H * W, ns = (sec) => (sec / px) * 1e9;
        rows.push({
          mask: name, threads: t, components: segments[0].length,
          oursNsPerPx: ns(median(ours.wall)), oursMinNsPerPx: ns(Math.min(...ours.wall)), oursCpuNsPerPx: ns(median(ours.cpu)), oursSeriesNsPerPx: ns(median(ours.series)),
          objectsNsPerPx: ns(median(objects.wall)), objectsSeriesNsPerPx: ns(median(objects.series)),
          opencvNsPerPx: error ? null : ns(median(opencv.wall)), opencvMinNsPerPx: error ? null : ns(Math.min(...opencv.wall)),
          opencvCpuNsPerPx: error ? null : ns(median(opencv.cpu)), opencvSeriesNsPerPx: error ? null : ns(median(opencv.series)),
          opencvComponents: cvComponents, opencvVersion: version, error,
        });
      }
    }
  } finally {
    cv.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

function print(rows) {
  const version = rows.find((r) => r.opencvVersion)?.opencvVersion;
  console.log(`\n## Connected components with statistics: 1024×2048, 8-connectivity (ns per pixel; OpenCV ${version ?? 'n/a'} connectedComponentsWithStats)`);
  console.log('| mask | threads | components | ours wall (median / min) | ours CPU (call median / series mean) | OpenCV wall (median / min) | OpenCV CPU (call median / series mean) | ours / OpenCV: wall min | CPU call median | CPU series mean | ours + objects: wall / CPU series mean | ours + objects / OpenCV (CPU series mean) |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const agree = r.opencvComponents === null || r.opencvComponents === r.components ? '' : ` (OpenCV: ${r.opencvComponents}!)`;
    const f = (v) => v.toFixed(2);
    const cv = r.error
      ? [r.error, '–', '–', '–', '–', '–']
      : [`${f(r.opencvNsPerPx)} / ${f(r.opencvMinNsPerPx)}`, `${f(r.opencvCpuNsPerPx)} / ${f(r.opencvSeriesNsPerPx)}`, `${f(r.oursMinNsPerPx / r.opencvMinNsPerPx)}×`,
        `${f(r.oursCpuNsPerPx / r.opencvCpuNsPerPx)}×`, `${f(r.oursSeriesNsPerPx / r.opencvSeriesNsPerPx)}×`, `${f(r.objectsSeriesNsPerPx / r.opencvSeriesNsPerPx)}×`];
    console.log(`| ${r.mask} | ${r.threads} | ${r.components}${agree} | ${f(r.oursNsPerPx)} / ${f(r.oursMinNsPerPx)} | ${f(r.oursCpuNsPerPx)} / ${f(r.oursSeriesNsPerPx)} | ${cv[0]} | ${cv[1]} | ${cv[2]} | ${cv[3]} | ${cv[4]} | ${f(r.objectsNsPerPx)} / ${f(r.objectsSeriesNsPerPx)} | ${cv[5]} |`);
  }
  console.log('ours: the public findSegments from the float32 score map, labels on (threshold, labels, statistics incl. mean/max');
  console.log('score, label image); + objects: and the read of result.segments (the Segment objects built). OpenCV: from the uint8');
  console.log('mask, in a python3 child, same masks, rounds interleaved. CPU = CPU time of the whole process (all threads, GC');
  console.log('included), robust when the machine is shared. Ratio < 1: ours faster.');
}

module.exports = { run, print };

if (require.main === module) {
  run().then(print, (err) => {
    console.error(err);
    process.exit(1);
  });
}
