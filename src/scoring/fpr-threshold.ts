/**
 * thresholdAtFpr over any number of images, streaming: exact (the same threshold as thresholdAtFpr on
 * all the maps at once) in bounded memory. Scores are ordered by their float32 bits; a first pass
 * counts them by the upper 16 bits of that order, and the values go to a temporary file in chunks;
 * at the end one read of the file counts, within the bucket holding the wanted rank, the lower 16
 * bits. Memory: two 65536-entry tables and one chunk; disk: 4 bytes per counted pixel, removed at
 * the end.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { flaggedAtFpr } from './segments';

const BUCKETS = 65536;
const DEFAULT_CHUNK = 1 << 20; // values per chunk: 4 MiB

export interface FprThresholdOptions {
  /** Values held in memory before they are appended to the temporary file. Default 2^20. */
  chunkValues?: number;
  /** Folder of the temporary file. Default: the system's. */
  tmpDir?: string;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Order-preserving key of a float32 (NaN counted as −Infinity: never flagged, as in thresholdAtFpr). */
function keyOf(v: number): number {
  f32[0] = Number.isNaN(v) ? -Infinity : v;
  const bits = u32[0]!;
  return bits & 0x80000000 ? ~bits >>> 0 : (bits | 0x80000000) >>> 0;
}

function valueOf(key: number): number {
  u32[0] = key & 0x80000000 ? key & 0x7fffffff : ~key >>> 0;
  return f32[0]!;
}

/** Index of the bucket holding the 0-based rank `rank`, and the rank within it. */
function locate(counts: Float64Array, rank: number): [number, number] {
  let before = 0;
  for (let b = 0; b < counts.length; b++) {
    if (before + counts[b]! > rank) return [b, rank - before];
    before += counts[b]!;
  }
  throw new Error('rank beyond the counted values'); // unreachable: rank < n
}

export class FprThreshold {
  readonly #fpr: number;
  readonly #chunk: Float32Array;
  readonly #tmpDir: string;
  readonly #upper = new Float64Array(BUCKETS);
  #filled = 0;
  #pixels = 0;
  #file: { dir: string; path: string; handle: fs.promises.FileHandle } | null = null;
  #finished = false;

  constructor(fpr: number, options: FprThresholdOptions = {}) {
    if (typeof fpr !== 'number' || !(fpr >= 0 && fpr <= 1)) throw new RangeError(`fpr must be a number in [0, 1], got ${String(fpr)}`);
    const chunk = options.chunkValues ?? DEFAULT_CHUNK;
    if (!Number.isInteger(chunk) || chunk < 1) throw new RangeError(`chunkValues must be a positive integer, got ${String(chunk)}`);
    this.#fpr = fpr;
    this.#chunk = new Float32Array(chunk);
    this.#tmpDir = options.tmpDir ?? os.tmpdir();
  }

  /** In-distribution pixels counted so far. */
  get pixels(): number {
    return this.#pixels;
  }

  /** Adds one map's scores; with `inDistribution`, only the pixels where it is nonzero (same length). */
  async add(scores: Float32Array, inDistribution?: Uint8Array): Promise<void> {
    if (this.#finished) throw new Error('FprThreshold: add after finish');
    if (!(scores instanceof Float32Array)) throw new TypeError('scores must be a Float32Array');
    if (inDistribution !== undefined && (!(inDistribution instanceof Uint8Array) || inDistribution.length !== scores.length))
      throw new RangeError(`inDistribution must be a Uint8Array of ${scores.length} values (one per score)`);
    for (let i = 0; i < scores.length; i++) {
      if (inDistribution && inDistribution[i] === 0) continue;
      const v = scores[i]!;
      this.#upper[keyOf(v) >>> 16]!++;
      this.#chunk[this.#filled++] = v;
      this.#pixels++;
      if (this.#filled === this.#chunk.length) await this.#spill();
    }
  }

  async #spill(): Promise<void> {
    if (!this.#file) {
      const dir = await fs.promises.mkdtemp(path.join(this.#tmpDir, 'pgn-calibrate-'));
      const file = path.join(dir, 'scores.f32');
      this.#file = { dir, path: file, handle: await fs.promises.open(file, 'w+') };
    }
    const bytes = new Uint8Array(this.#chunk.buffer, 0, this.#filled * 4);
    await this.#file.handle.write(bytes);
    this.#filled = 0;
  }

  /** The threshold (thresholdAtFpr's definition); removes the temporary file. */
  async finish(): Promise<number> {
    if (this.#finished) throw new Error('FprThreshold: finish called twice');
    this.#finished = true;
    try {
      const n = this.#pixels;
      if (n === 0) throw new RangeError('no in-distribution pixel was added: nothing to calibrate on');
      const k = flaggedAtFpr(n, this.#fpr);
      if (k >= n) return -Infinity;
      const [bucket, rank] = locate(this.#upper, n - 1 - k); // ascending rank of the threshold
      const lower = new Float64Array(BUCKETS);
      const count = (values: Float32Array) => {
        for (const v of values) {
          const key = keyOf(v);
          if (key >>> 16 === bucket) lower[key & 0xffff]!++;
        }
      };
      count(this.#chunk.subarray(0, this.#filled));
      if (this.#file) await this.#readBack(count);
      return valueOf(((bucket << 16) | locate(lower, rank)[0]) >>> 0);
    } finally {
      await this.dispose();
    }
  }

  async #readBack(count: (values: Float32Array) => void): Promise<void> {
    const { handle } = this.#file!;
    for (let position = 0; ; ) {
      const { bytesRead } = await handle.read(new Uint8Array(this.#chunk.buffer), 0, this.#chunk.byteLength, position);
      const values = Math.floor(bytesRead / 4);
      if (values === 0) return;
      count(this.#chunk.subarray(0, values));
      position += values * 4;
    }
  }

  /** Removes the temporary file (finish does it; call this when a run is abandoned). */
  async dispose(): Promise<void> {
    this.#finished = true;
    const file = this.#file;
    this.#file = null;
    if (!file) return;
    await file.handle.close().catch(() => undefined);
    await fs.promises.rm(file.dir, { recursive: true, force: true });
  }
}
