/**
 * `pgn worker` against a real redis-server (Debian's package; .ci/run installs it) started here on a
 * free loopback port: two worker processes consume 50 jobs, one is SIGKILLed mid-job; the producer
 * sees every good job complete exactly once (the killed worker's job recovered by BullMQ's
 * stalled-job check), with the record of a `pgn score` line, and the bad images fail with their
 * PgnError code, without retries.
 */
import { ChildProcess, execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Job, Queue, QueueEvents } from 'bullmq';
import { redisConnection } from '../src/worker/worker';

const root = path.join(__dirname, '..');
const cli = path.join(root, 'dist', 'cli', 'index.js');
const demoImages = path.join(root, 'models', 'demo', 'eval', 'images');
const REDIS = '/usr/bin/redis-server';
const present = fs.existsSync(REDIS);
if (!present) console.warn(`worker tests skipped: ${REDIS} not found (apt-get install redis-server; .ci/run does)`);
const maybe = present ? describe : describe.skip;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

/** Resolves when the process has written `text` on stderr or stdout. */
function waitFor(child: ChildProcess, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const look = (chunk: Buffer) => {
      seen += chunk.toString();
      if (seen.includes(text)) resolve();
    };
    child.stdout?.on('data', look);
    child.stderr?.on('data', look);
    child.once('exit', (code) => reject(new Error(`exited (${code}) before "${text}": ${seen}`)));
  });
}

maybe('pgn worker on BullMQ', () => {
  let redis: ChildProcess;
  let url: string;
  const workers: ChildProcess[] = [];
  const closers: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    const port = await freePort();
    url = `redis://127.0.0.1:${port}`;
    redis = spawn(REDIS, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
    await waitFor(redis, 'Ready to accept connections');
  });
  afterAll(async () => {
    for (const close of closers) await close();
    for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
    redis.kill('SIGTERM');
    await new Promise((r) => redis.once('exit', r));
  });

  function startWorker(queue: string): ChildProcess {
    const child = spawn('node', [cli, 'worker', '--redis', url, '--queue', queue, '--lock-duration', '2000', '--no-segments'], { stdio: ['ignore', 'pipe', 'pipe'] });
    workers.push(child);
    return child;
  }

  test('2 workers, 50 jobs, one worker SIGKILLed mid-job: all complete exactly once; bad images fail with their code, not retried', async () => {
    const connection = redisConnection(url);
    const queue = new Queue('score', { connection });
    const events = new QueueEvents('score', { connection });
    closers.push(() => events.close(), () => queue.close());
    await events.waitUntilReady();
    const completed = new Map<string, number>();
    const failed = new Map<string, string>();
    let stalled = 0;
    events.on('completed', ({ jobId }) => completed.set(jobId, (completed.get(jobId) ?? 0) + 1));
    events.on('failed', ({ jobId, failedReason }) => failed.set(jobId, failedReason));
    events.on('stalled', () => stalled++);

    const a = startWorker('score');
    const b = startWorker('score');
    await Promise.all([waitFor(a, 'consuming queue'), waitFor(b, 'consuming queue')]);

    const names = fs.readdirSync(demoImages).sort();
    const image = (k: number) => path.join(demoImages, names[k % names.length]);
    // 42 good jobs (a path, a file: URL or the bytes), 8 bad ones (not an image, no such file).
    const data = Array.from({ length: 50 }, (_, k) => {
      if (k % 12 === 5) return { image: { base64: Buffer.from('not an image').toString('base64') } };
      if (k % 12 === 11) return { image: path.join(demoImages, 'missing.jpg') };
      if (k % 3 === 0) return { image: pathToFileURL(image(k)).href };
      if (k % 3 === 1) return { image: { base64: fs.readFileSync(image(k)).toString('base64') } };
      return { image: image(k) };
    });
    const jobs = await queue.addBulk(data.map((d, k) => ({ name: `image-${k}`, data: d, opts: { jobId: `job-${k}`, attempts: 3, backoff: { type: 'exponential', delay: 200 } } })));
    const bad = jobs.filter((_, k) => k % 12 === 5 || k % 12 === 11).map((j) => j.id!);
    expect(bad).toHaveLength(8);

    // SIGKILL worker a while both hold a job.
    while (completed.size < 10) await new Promise((r) => setTimeout(r, 20));
    while ((await queue.getActive()).length < 2) await new Promise((r) => setTimeout(r, 5)); // both hold a job
    a.kill('SIGKILL');
    const t0 = Date.now();
    while (completed.size + failed.size < 50 && Date.now() - t0 < 120000) await new Promise((r) => setTimeout(r, 50));

    expect(completed.size + failed.size).toBe(50);
    expect([...failed.keys()].sort()).toEqual([...bad].sort());
    for (const id of bad) {
      const job = (await Job.fromId(queue, id))!;
      expect(job.failedReason).toMatch(/^PGN_IMAGE: /);
      expect(job.attemptsMade).toBe(1); // bad input: not retried
    }
    for (const [, count] of completed) expect(count).toBe(1);
    expect(stalled).toBeGreaterThanOrEqual(1); // the killed worker's job was recovered by the other
    console.log(`worker test: ${completed.size} completed once each, ${failed.size} failed (PGN_IMAGE, 1 attempt), ${stalled} stalled job(s) recovered after the SIGKILL`);

    // A job's return value is the record of a `pgn score` line for the same image.
    const line = await new Promise<string>((resolve) =>
      execFile('node', [cli, 'score', image(2), '--no-segments'], (_err, stdout) => resolve(stdout)),
    );
    const expected = JSON.parse(line);
    const job = (await Job.fromId(queue, 'job-2'))!;
    expect(job.returnvalue.file).toBe(image(2));
    expect(job.returnvalue.scores).toEqual(expected.scores);
    expect([job.returnvalue.width, job.returnvalue.height]).toEqual([expected.width, expected.height]);

    b.kill('SIGTERM'); // finishes what it holds, then exits
    expect(await new Promise((r) => b.once('exit', (code, signal) => r(code ?? signal)))).toBe(0);
  }, 300000);
});
