/**
 * `pgn serve` owns its process, so it can serve its event loop first. Saturated, the process has
 * ten or more runnable threads on a few cores: libuv's pool (sharp's decoding, the native passes),
 * libvips' workers, the inference thread and ONNX Runtime's. The event loop needs little CPU (about
 * a sixth of a core at 30 images/s), in short bursts that at equal priority wait their turn behind
 * all of them. So every thread started after Node.js's own runs some nice levels below the main
 * thread, which an unprivileged process may do to its own threads. The same work is done, in
 * another order; figures in docs/serving.md. The cost: beside other busy processes of the same
 * cgroup (a container's, a service's), the server's work yields to theirs.
 *
 * Threads come and go (libvips starts workers as it needs them), so the process's threads are
 * looked at again every second. Linux only: elsewhere a thread id cannot be given to setpriority.
 */
import { readdirSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

export const DEFAULT_WORKER_NICE = 19;

/**
 * Node.js's own threads, V8's platform workers among them, as they were when this module was loaded:
 * the CLI loads it first, before anything starts libuv's pool. They keep the main thread's
 * priority: V8's garbage collector runs its parallel phases on them while the main thread waits,
 * and lowered, they made the main thread sleep 50-90 ms in some major collections (its schedstat:
 * 3-7 ms on a CPU, the rest neither running nor runnable); left at its priority, 22 ms at most.
 */
const nodeThreads = new Set(process.platform === 'linux' ? readdirSync('/proc/self/task') : []);

/** Every thread of this process but Node.js's own, now and every second: `nice` levels below the main thread (at most 19). */
export function lowerWorkerThreads(nice: number): void {
  if (process.platform !== 'linux' || nice <= 0) return;
  const target = Math.min(19, getPriority(0) + nice);
  const sweep = () => {
    for (const entry of readdirSync('/proc/self/task')) {
      if (nodeThreads.has(entry)) continue; // the main thread among them
      const tid = Number(entry);
      try {
        if (getPriority(tid) < target) setPriority(tid, target);
      } catch {
        // the thread has exited since the listing
      }
    }
  };
  sweep();
  setInterval(sweep, 1000).unref();
}
