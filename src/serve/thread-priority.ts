/**
 * `pgn serve` owns its process, so it can serve its event loop first. Saturated, the process has
 * ten or more runnable threads on a few cores: libuv's pool (sharp's decoding, the native passes),
 * libvips' workers, the inference thread and ONNX Runtime's, V8's helpers. The event loop needs
 * little CPU (about a sixth of a core at 30 images/s), in short bursts that at equal priority wait
 * their turn behind all of them. So every thread but the main one runs some nice levels below it,
 * which an unprivileged process may do to its own threads. The same work is done, in another
 * order. With the demo model batched at concurrency 32, /healthz p99 over 20 s runs: median 18 ms
 * at equal priority (16 runs, 2 at 20 ms or more), 14.5 at nice 10 (32 runs, 2), 11.5 at nice 19
 * (13 runs, 0; at most 17.6), for the same throughput (docs/serving.md). The cost: beside other
 * busy processes of the same cgroup (a container's, a service's), the server's work yields to theirs.
 *
 * Threads come and go (libvips starts workers as it needs them), so the process's threads are
 * looked at again every second. Linux only: elsewhere a thread id cannot be given to setpriority.
 */
import { readdirSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

export const DEFAULT_WORKER_NICE = 19;

/** Every thread of this process but the main one, now and every second: `nice` levels below the main thread (at most 19). */
export function lowerWorkerThreads(nice: number): void {
  if (process.platform !== 'linux' || nice <= 0) return;
  const target = Math.min(19, getPriority(0) + nice);
  const sweep = () => {
    for (const entry of readdirSync('/proc/self/task')) {
      const tid = Number(entry);
      if (tid === process.pid) continue;
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
