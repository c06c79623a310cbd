/**
 * `pgn serve` over real HTTP on loopback (issue 15): the real CLI process on a free port, real
 * images scored with the same results as the API, bad bodies refused with the documented status
 * and code, overload answered 503 + Retry-After while the process keeps serving, timeouts 408,
 * SIGTERM draining the requests in flight, /metrics in Prometheus text, /openapi.json.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import sharp from 'sharp';
import { parseNpy } from '../src/common/npy';
import { Scorer } from '../src/run/scorer';
import { buildServer } from '../src/serve/server';
import { summarizeMaps } from '../src/scoring/summary';
import { overlayPng, robustRange } from '../src/image/segment-images';
import { writeSlowModel } from './helpers/slow-model';

const cli = path.join(__dirname, '..', 'dist', 'cli', 'index.js');
const slow = writeSlowModel({ layers: 16, channels: 64, size: 256 });
const servers: ChildProcess[] = [];
afterAll(() => {
  for (const s of servers) if (s.exitCode === null) s.kill('SIGKILL');
  fs.rmSync(slow, { recursive: true, force: true });
});

interface Server {
  url: string;
  child: ChildProcess;
  exit: Promise<number | null>;
}

/** Starts `pgn serve --port 0 ...args` and waits for its "listening on" line. */
async function start(args: string[]): Promise<Server> {
  const child = spawn(process.execPath, [cli, 'serve', '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  servers.push(child);
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  for await (const line of readline.createInterface({ input: child.stdout! })) {
    const m = /^listening on (http:\/\/127\.0\.0\.1:\d+)$/.exec(line);
    if (m) return { url: m[1]!, child, exit };
  }
  throw new Error('pgn serve exited before listening');
}

function post(url: string, body: Buffer | string, type = 'image/png', headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { method: 'POST', body, headers: { 'content-type': type, ...headers } });
}

async function errorOf(res: Response): Promise<{ status: number; code: string; message: string }> {
  const body = (await res.json()) as { error: { code: string; message: string } };
  return { status: res.status, ...body.error };
}

async function noisyImage(width: number, height: number, format: 'png' | 'jpeg'): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = ((i % (width * 3)) * 7 + Math.floor(i / (width * 3)) * 3 + ((i * 2654435761) >>> 27)) & 255;
  return sharp(raw, { raw: { width, height, channels: 3 } })[format]().toBuffer();
}

describe('pgn serve, demo model', () => {
  let server: Server;
  beforeAll(async () => {
    server = await start(['--max-body', '256k']);
  });
  afterAll(async () => {
    server.child.kill('SIGTERM');
    expect(await server.exit).toBe(0);
  });

  test('scores real images: the same scores and segments as the API; .npy and overlay outputs', async () => {
    const png = await noisyImage(320, 200, 'png');
    const jpeg = await noisyImage(300, 180, 'jpeg');
    const scorer = await Scorer.create({ segments: { minArea: 100 } });
    try {
      for (const [image, type] of [[png, 'image/png'], [jpeg, 'application/octet-stream']] as const) {
        const res = await post(`${server.url}/v1/score`, image, type);
        expect(res.status).toBe(200);
        const body = (await res.json()) as Record<string, unknown>;
        const local = await scorer.score(image);
        expect(body).toMatchObject({ width: local.width, height: local.height, batchSize: 1 });
        expect(body.scores).toEqual({ [local.maps[0]!.name]: (await summarizeMaps([local.maps[0]!.data]))[0] });
        expect(body.segments).toEqual(JSON.parse(JSON.stringify(local.segments)));
        expect(Object.keys(body.timings as object).sort()).toEqual(Object.keys(local.timings).sort());
      }
      const npy = await post(`${server.url}/v1/score`, png, 'image/png', { accept: 'application/x-npy' });
      expect(npy.headers.get('content-type')).toBe('application/x-npy');
      const map = parseNpy(Buffer.from(await npy.arrayBuffer()));
      expect(map.dims).toEqual([200, 320]);
      expect(Buffer.from((map.data as Float32Array).buffer).equals(Buffer.from((await scorer.score(png)).maps[0]!.data.buffer))).toBe(true);
      const overlay = await post(`${server.url}/v1/score?output=overlay&threshold=1e9`, png);
      expect(overlay.headers.get('content-type')).toBe('image/png');
      expect(await sharp(Buffer.from(await overlay.arrayBuffer())).metadata()).toMatchObject({ width: 320, height: 200, format: 'png' });
      const none = (await (await post(`${server.url}/v1/score?threshold=1e9&minArea=0`, png)).json()) as { segments: unknown[] };
      expect(none.segments).toEqual([]); // the query's threshold, not the server's
      // The server's own segments outlined on an overlay: its scorer makes no label image, so the
      // overlay asks for one under the server's settings (min area 100 included): the API's bytes.
      const local = await scorer.score(png);
      expect(local.segments!.length).toBeGreaterThan(0);
      const dims: [number, number, number] = [1, 200, 320];
      const drawn = await overlayPng(png, { data: local.maps[0]!.data, dims }, { data: local.segmentLabels!, dims }, { range: robustRange(local.maps[0]!.data) });
      const own = await post(`${server.url}/v1/score?output=overlay`, png);
      expect(Buffer.from(await own.arrayBuffer()).equals(drawn)).toBe(true);
      // A query that names only a threshold keeps the server's min area.
      const lower = (await (await post(`${server.url}/v1/score?threshold=700`, png)).json()) as { segments: unknown[] };
      const expected = await scorer.segmentsOf(local, { threshold: 700, minArea: 100 });
      expect(lower.segments).toEqual(JSON.parse(JSON.stringify(expected.segments)));
      expect((await scorer.segmentsOf(local, { threshold: 700, minArea: 0 })).segments.length).toBeGreaterThan(expected.segments.length);
    } finally {
      await scorer.dispose();
    }
  });

  test('bad bodies and queries: 400 / 413 / 415 with { error: { code, message } }, and the server keeps serving', async () => {
    const png = await noisyImage(64, 48, 'png');
    const huge = Buffer.from(png); // IHDR claims 100000 x 100000
    huge.writeUInt32BE(100000, 16);
    huge.writeUInt32BE(100000, 20);
    const cases: [Buffer | string, string, number, string, RegExp][] = [
      [Buffer.alloc(0), 'image/png', 400, 'PGN_IMAGE', /empty/],
      [png.subarray(0, png.length >> 1), 'image/png', 400, 'PGN_IMAGE', /cannot decode/],
      [huge, 'image/png', 400, 'PGN_IMAGE', /100000x100000/],
      ['just some text', 'image/jpeg', 400, 'PGN_IMAGE', /cannot decode/],
      [Buffer.alloc(300 * 1024, 1), 'image/png', 413, 'PGN_BODY_TOO_LARGE', /too large/i],
      ['{"image": 1}', 'application/json', 415, 'PGN_UNSUPPORTED_MEDIA_TYPE', /image\/\*/],
    ];
    for (const [body, type, status, code, message] of cases) {
      const e = await errorOf(await post(`${server.url}/v1/score`, body, type));
      expect(e).toMatchObject({ status, code });
      expect(e.message).toMatch(message);
    }
    for (const [query, message] of [['score=nope', /score/], ['threshold=abc', /threshold/], ['minArea=-1', /minArea/], ['output=gif', /output/], ['colour=red', /unknown query parameter "colour"/]] as const) {
      const e = await errorOf(await post(`${server.url}/v1/score?${query}`, png));
      expect(e).toMatchObject({ status: 400, code: 'PGN_BAD_REQUEST' });
      expect(e.message).toMatch(message);
    }
    expect((await errorOf(await fetch(`${server.url}/v2/nothing`))).code).toBe('PGN_NOT_FOUND');
    expect((await post(`${server.url}/v1/score`, png)).status).toBe(200);
    expect(await (await fetch(`${server.url}/healthz`)).json()).toEqual({ status: 'ok' });
  });

  test('/metrics is Prometheus text with the request, stage, batch, queue and in-flight metrics; /openapi.json describes the routes', async () => {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    const families = new Map<string, string>();
    for (const line of text.split('\n').filter(Boolean)) {
      const type = /^# TYPE ([a-zA-Z_:][\w:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
      if (type) families.set(type[1]!, type[2]!);
      else if (!line.startsWith('# HELP ')) expect(line).toMatch(/^[a-zA-Z_:][\w:]*(\{[a-zA-Z_]\w*="[^"]*"(,[a-zA-Z_]\w*="[^"]*")*\})? (-?[\d.]+(e[-+]?\d+)?|NaN|[-+]Inf)$/);
    }
    expect(Object.fromEntries(['pgn_http_requests_total', 'pgn_http_request_duration_seconds', 'pgn_stage_duration_seconds', 'pgn_batch_size', 'pgn_queue_depth', 'pgn_in_flight', 'process_resident_memory_bytes'].map((f) => [f, families.get(f)])))
      .toEqual({ pgn_http_requests_total: 'counter', pgn_http_request_duration_seconds: 'histogram', pgn_stage_duration_seconds: 'histogram', pgn_batch_size: 'histogram', pgn_queue_depth: 'gauge', pgn_in_flight: 'gauge', process_resident_memory_bytes: 'gauge' });
    expect(Number(/pgn_http_requests_total\{route="\/v1\/score",status="200"\} (\d+)/.exec(text)?.[1])).toBeGreaterThanOrEqual(1);
    expect(text).toMatch(/pgn_stage_duration_seconds_count\{stage="inference"\} [1-9]/);
    const doc = (await (await fetch(`${server.url}/openapi.json`)).json()) as { openapi: string; paths: Record<string, unknown> };
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths).sort()).toEqual(['/healthz', '/metrics', '/openapi.json', '/readyz', '/v1/score']);
  });
});

describe('pgn serve, a slow model (about 0.3 s per image)', () => {
  let image: Buffer;
  beforeAll(async () => {
    image = await noisyImage(96, 64, 'png');
  });

  test('overload: 503 with Retry-After at once beyond the queue; the admitted requests succeed and the server keeps serving', async () => {
    const server = await start(['--model', slow, '--intra-op-threads', '1', '--max-in-flight', '1', '--max-queue', '2']);
    const responses = await Promise.all(Array.from({ length: 7 }, () => post(`${server.url}/v1/score`, image)));
    const statuses = responses.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(3);
    expect(statuses.filter((s) => s === 503).length).toBeGreaterThanOrEqual(1);
    expect(statuses.every((s) => s === 200 || s === 503)).toBe(true);
    for (const r of responses.filter((x) => x.status === 503)) {
      expect(r.headers.get('retry-after')).toBe('1');
      expect((await errorOf(r)).code).toBe('PGN_OVERLOADED');
    }
    expect((await post(`${server.url}/v1/score`, image)).status).toBe(200);
    server.child.kill('SIGTERM');
    expect(await server.exit).toBe(0);
  });

  test('a request over --timeout gets 408 PGN_TIMEOUT', async () => {
    const server = await start(['--model', slow, '--intra-op-threads', '1', '--timeout', '1']);
    const e = await errorOf(await post(`${server.url}/v1/score`, image));
    expect(e).toMatchObject({ status: 408, code: 'PGN_TIMEOUT' });
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    server.child.kill('SIGTERM');
    expect(await server.exit).toBe(0);
  });

  test('SIGTERM: the requests in flight finish with 200, then the process exits 0 and refuses connections', async () => {
    const server = await start(['--model', slow, '--intra-op-threads', '1', '--max-in-flight', '1']);
    const inFlight = [post(`${server.url}/v1/score`, image), post(`${server.url}/v1/score`, image)];
    // signal once both are admitted or queued
    while (!/pgn_queue_depth 1/.test(await (await fetch(`${server.url}/metrics`)).text())) await new Promise((r) => setTimeout(r, 20));
    server.child.kill('SIGTERM');
    const done = await Promise.all(inFlight);
    expect(done.map((r) => r.status)).toEqual([200, 200]);
    expect(await server.exit).toBe(0);
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();
  });

  (process.platform === 'linux' ? test : test.skip)('the server runs in a process of its own under --initial-old-space-size; SIGKILL of the launching process stops it', async () => {
    const server = await start(['--model', slow, '--intra-op-threads', '1']);
    const children = fs.readFileSync(`/proc/${server.child.pid}/task/${server.child.pid}/children`, 'utf8').trim().split(/\s+/).map(Number);
    expect(children).toHaveLength(1);
    const pid = children[0]!;
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    expect(argv).toContain('--initial-old-space-size=128');
    expect(argv).toContain('serve');
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    server.child.kill('SIGKILL');
    const gone = async () => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    };
    const deadline = Date.now() + 20000;
    while (!(await gone()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await gone()).toBe(true);
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();
  });

  (process.platform === 'linux' ? test : test.skip)('the event loop and Node.js\'s own threads keep the process\'s priority; every other thread runs --worker-nice levels below', async () => {
    const server = await start(['--model', slow, '--intra-op-threads', '2', '--worker-nice', '7']);
    expect((await post(`${server.url}/v1/score`, image)).status).toBe(200); // decoding, inference and the native passes have run
    const pid = Number(fs.readFileSync(`/proc/${server.child.pid}/task/${server.child.pid}/children`, 'utf8').trim());
    const base = os.getPriority(0); // the server inherits this process's nice level
    const lower = Math.min(19, base + 7);
    // Node.js's own threads (the main one, V8's platform workers...): as many as a bare node process has.
    const own = Number(execFileSync(process.execPath, ['-e', "process.stdout.write(String(require('fs').readdirSync('/proc/self/task').length))"], { encoding: 'utf8' }));
    const threads = () =>
      fs.readdirSync(`/proc/${pid}/task`).map((tid) => ({
        tid: Number(tid),
        nice: os.getPriority(Number(tid)),
        name: fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim(),
      }));
    // Threads started since the last sweep are lowered within a second.
    const deadline = Date.now() + 5000;
    const settled = (all: { nice: number }[]) => all.every((t) => t.nice === base || t.nice === lower) && all.filter((t) => t.nice === base).length === own;
    while (!settled(threads()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const all = threads();
    expect(all.find((t) => t.tid === pid)!.nice).toBe(base);
    expect(all.filter((t) => t.nice === base)).toHaveLength(own);
    const lowered = all.filter((t) => t.nice !== base);
    expect(lowered.length).toBeGreaterThanOrEqual(5); // libuv's pool, the inference thread, ONNX Runtime's, libvips'
    expect(lowered.filter((t) => t.nice !== lower)).toEqual([]);
    expect(all.filter((t) => t.name === 'libvips worker' && t.nice !== lower)).toEqual([]);
    server.child.kill('SIGTERM');
    expect(await server.exit).toBe(0);
  });

  (process.platform === 'linux' ? test : test.skip)('under a debugger (--inspect) the server runs in the process started', async () => {
    const child = spawn(process.execPath, ['--inspect=127.0.0.1:0', cli, 'serve', '--port', '0', '--model', slow], { stdio: ['ignore', 'pipe', 'ignore'] });
    servers.push(child);
    const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let url = '';
    for await (const line of readline.createInterface({ input: child.stdout! })) {
      const m = /^listening on (http:\/\/127\.0\.0\.1:\d+)$/.exec(line);
      if (m) {
        url = m[1]!;
        break;
      }
    }
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect(fs.readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim()).toBe('');
    child.kill('SIGTERM');
    expect(await exit).toBe(0);
  });
});

describe('pgn serve, a client that goes away (the server in this process, a slow model)', () => {
  test('its queued call leaves the queue unserved; a reply that finishes aborts nothing', async () => {
    const image = await noisyImage(96, 64, 'png');
    const scorer = await Scorer.create({ model: slow, intraOpThreads: 1, maxInFlight: 1 });
    const app = buildServer(scorer);
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    const abort = jest.spyOn(AbortController.prototype, 'abort');
    try {
      for (let i = 0; i < 2; i++) expect((await post(`${url}/v1/score`, image)).status).toBe(200);
      expect(abort).not.toHaveBeenCalled();
      let firstDone = false;
      const first = post(`${url}/v1/score`, image).then((r) => ((firstDone = true), r));
      while (scorer.load.inFlight < 1) await new Promise((r) => setTimeout(r, 5));
      const leaving = http.request(`${url}/v1/score`, { method: 'POST', headers: { 'content-type': 'image/png' } });
      leaving.on('error', () => {}); // the socket is destroyed on purpose
      leaving.end(image);
      while (scorer.load.queued < 1) await new Promise((r) => setTimeout(r, 5));
      leaving.destroy();
      while (scorer.load.queued > 0) await new Promise((r) => setTimeout(r, 5));
      expect(firstDone).toBe(false); // it left the queue while the first call still ran: dropped, not served
      expect(scorer.load.inFlight).toBe(1);
      expect(abort).toHaveBeenCalledTimes(1);
      expect((await first).status).toBe(200);
      expect(abort).toHaveBeenCalledTimes(1);
    } finally {
      abort.mockRestore();
      await app.close();
      await scorer.dispose();
    }
  });
});
