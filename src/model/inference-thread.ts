/**
 * One ONNX Runtime session on its own worker thread. onnxruntime-node's `session.run()` runs the
 * whole inference synchronously on the calling thread (it only defers it with setImmediate; upstream
 * onnxruntime issues 19611 and 26968), so on the main thread it stops the event loop for the whole
 * inference. Here the main thread only posts messages: tensors go both ways by transfer (their
 * ArrayBuffers move, nothing is copied) and the worker runs one inference at a time, in order.
 */
import { Worker } from 'node:worker_threads';
import type * as ort from 'onnxruntime-node';

/** A tensor as it crosses threads: plain data, its buffer transferred. */
export interface ThreadTensor {
  type: ort.Tensor.Type;
  data: ort.Tensor.DataType;
  dims: readonly number[];
}

/** How much nicer than the main thread inference runs (Unix nice levels; 19 at most). */
const INFERENCE_NICE = 5;

/** The worker's code: kept as a string so that it runs the same from src/ (tests) and dist/. */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const ort = require(workerData.ort);
// A lower priority for this thread, and so for ONNX Runtime's threads, which it creates and which
// inherit it: when the cores are saturated the event loop is served first (Linux, macOS: per thread).
try {
  require('node:os').setPriority(0, Math.min(19, require('node:os').getPriority(0) + workerData.nice));
} catch {
  // not permitted here: run at the process's priority
}
let session;
const message = (err) => (err && err.message) || String(err);
ort.InferenceSession.create(workerData.model, workerData.options).then(
  (s) => { session = s; parentPort.postMessage({ ready: true }); },
  (err) => parentPort.postMessage({ failed: message(err) }),
);
// One message at a time, in order: a close waits for the runs posted before it.
let chain = Promise.resolve();
parentPort.on('message', (m) => { chain = chain.then(() => handle(m)); });
async function handle(m) {
  if (m.close) {
    await session.release();
    parentPort.close();
    return;
  }
  try {
    const feeds = {};
    for (const [name, t] of Object.entries(m.feeds)) feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
    const t0 = performance.now();
    const out = await session.run(feeds, m.fetches);
    const ms = performance.now() - t0;
    const result = {};
    const transfer = [];
    for (const name of m.fetches) {
      const t = out[name];
      result[name] = { type: t.type, data: t.data, dims: t.dims };
      if (!transfer.includes(t.data.buffer)) transfer.push(t.data.buffer);
    }
    // The feeds come back when asked (a fetched tensor may be the model's input itself); else they
    // are this thread's garbage, collected here rather than by the main thread's collector.
    if (m.returnFeeds) for (const t of Object.values(m.feeds)) if (!transfer.includes(t.data.buffer)) transfer.push(t.data.buffer);
    parentPort.postMessage({ id: m.id, result, feeds: m.returnFeeds ? m.feeds : null, ms }, transfer);
  } catch (err) {
    parentPort.postMessage({ id: m.id, error: message(err) });
  }
}
`;

/** A run's outputs, its feeds back (when asked for), and how long ONNX Runtime ran it (ms, on the thread: no queueing). */
export interface ThreadRun {
  result: Record<string, ThreadTensor>;
  feeds: Record<string, ThreadTensor> | null;
  ms: number;
}

interface Pending {
  resolve: (r: ThreadRun) => void;
  reject: (err: Error) => void;
}

/** A session creation or inference failure reported by the worker, with ONNX Runtime's message. */
export class InferenceThreadError extends Error {}

/** The workers of this process that have not exited. */
const live = new Set<Worker>();

/**
 * Ends every inference thread and waits until each has exited (an inference in flight finishes
 * first). For a process that must exit early (`pgn` when stdout fails): exiting while ONNX Runtime
 * runs on another thread can abort the process (SIGABRT) as its static objects are torn down.
 */
export async function stopInferenceThreads(): Promise<void> {
  await Promise.all([...live].map((w) => w.terminate()));
}

export class InferenceThread {
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  /** Set once the worker is gone (closed or crashed): every later run fails with it. */
  private gone: Error | null = null;

  private constructor(private readonly worker: Worker) {
    worker.on('message', (m: Partial<ThreadRun> & { id: number; error?: string }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.settled(m.id);
      if (m.error !== undefined) p.reject(new InferenceThreadError(m.error));
      else p.resolve({ result: m.result!, feeds: m.feeds!, ms: m.ms! });
    });
    const fail = (err: Error) => {
      this.gone ??= err;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new InferenceThreadError(`the inference thread exited (code ${code})`)));
  }

  /** Starts the worker and creates the session there from the model's bytes (transferred). */
  static start(model: Uint8Array, options: ort.InferenceSession.SessionOptions): Promise<InferenceThread> {
    const worker = new Worker(WORKER, {
      eval: true,
      workerData: { ort: require.resolve('onnxruntime-node'), model, options, nice: INFERENCE_NICE },
      transferList: [model.buffer as ArrayBuffer],
    });
    live.add(worker);
    worker.once('exit', () => live.delete(worker));
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      const onExit = (code: number) => reject(new InferenceThreadError(`the inference thread exited (code ${code}) before its session was ready`));
      worker.once('error', onError);
      worker.once('exit', onExit);
      worker.once('message', (m: { ready?: boolean; failed?: string }) => {
        worker.off('error', onError);
        worker.off('exit', onExit);
        if (m.ready) {
          worker.unref(); // an idle scorer does not keep the process alive, as a session never did
          resolve(new InferenceThread(worker));
        } else {
          void worker.terminate();
          reject(new InferenceThreadError(m.failed ?? 'the inference thread did not start'));
        }
      });
    });
  }

  /** Runs one inference; the feeds' buffers are transferred to the worker, and come back with the result if `returnFeeds`. */
  run(feeds: Record<string, ThreadTensor>, fetches: string[], returnFeeds = false): Promise<ThreadRun> {
    if (this.gone) return Promise.reject(this.gone);
    const id = this.nextId++;
    const transfer = [...new Set(Object.values(feeds).map((t) => (t.data as Float32Array).buffer as ArrayBuffer))];
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (this.pending.size === 1) this.worker.ref(); // work in flight keeps the process alive
      this.worker.postMessage({ id, feeds, fetches, returnFeeds }, transfer);
    });
  }

  private settled(id: number): void {
    this.pending.delete(id);
    if (this.pending.size === 0) this.worker.unref();
  }

  /** Releases the session after the runs already posted, and ends the worker. */
  async close(): Promise<void> {
    if (this.gone) return;
    this.gone = new InferenceThreadError('the session was disposed');
    const exited = new Promise((resolve) => this.worker.once('exit', resolve));
    this.worker.ref();
    this.worker.postMessage({ close: true });
    await exited;
  }
}
