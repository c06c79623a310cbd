/**
 * Image-sized arrays handed back by `Scorer.release` (ScorerOptions.reuseArrays), kept for a later
 * image's native passes to write into. Why: every new ArrayBuffer counts towards V8's external
 * memory until a full collection sweeps it, even when it was detached (released) long before, and
 * V8 starts a full collection each time that count grows 64 MB past its level at the last one. At
 * 16 MB of maps and prediction per 2 MP image that is a full collection every few images, each a
 * pause of the event loop; an array written again is counted once.
 */
import { releaseArrays } from '../addon';

export type ReusableArray = Float32Array | Int32Array;

export class ArrayPool {
  /** Oldest first. */
  private readonly kept: ReusableArray[] = [];
  private bytes = 0;
  /** Buffers in the pool: one handed back twice is kept once, or two results would share it. */
  private readonly held = new WeakSet<ArrayBufferLike>();

  constructor(readonly maxBytes: number) {}

  /** A kept array of this type and length (taken out of the pool), or undefined. */
  take<T extends ReusableArray>(type: { new (n: number): T }, length: number): T | undefined {
    for (let i = this.kept.length - 1; i >= 0; i--) {
      const a = this.kept[i];
      if (a instanceof type && a.length === length) {
        this.kept.splice(i, 1);
        this.bytes -= a.byteLength;
        this.held.delete(a.buffer);
        return a as T;
      }
    }
    return undefined;
  }

  /**
   * Keeps each array that alone views its whole buffer (any other could share memory with something
   * still in use); the others, and the oldest kept beyond maxBytes, are released (detached) as
   * `releaseArrays` does.
   */
  give(arrays: readonly (ReusableArray | null | undefined)[]): void {
    const refused: ReusableArray[] = [];
    for (const a of arrays) {
      if (!a || this.held.has(a.buffer)) continue;
      const whole = a.byteOffset === 0 && a.byteLength === a.buffer.byteLength && a.byteLength > 0;
      if (!whole || a.byteLength > this.maxBytes) {
        refused.push(a);
        continue;
      }
      this.kept.push(a);
      this.held.add(a.buffer);
      this.bytes += a.byteLength;
    }
    while (this.bytes > this.maxBytes) {
      const old = this.kept.shift()!;
      this.held.delete(old.buffer);
      this.bytes -= old.byteLength;
      refused.push(old);
    }
    releaseArrays(refused);
  }

  /** Releases every kept array. */
  clear(): void {
    const all = this.kept.splice(0);
    for (const a of all) this.held.delete(a.buffer);
    this.bytes = 0;
    releaseArrays(all);
  }
}
