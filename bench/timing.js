/**
 * Timing helper of the benchmarks: wall clock (median, best) and CPU time (median, all threads of
 * the process: the robust figure on a shared machine) of an async function.
 */

/** { median, best, cpu } ms of fn over at least minReps runs and minMs, after a warm-up run. */
async function timeIt(fn, minMs = 400, minReps = 3) {
  await fn();
  const times = [];
  const cpu = [];
  const start = performance.now();
  while (times.length < minReps || performance.now() - start < minMs) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  times.sort((a, b) => a - b);
  cpu.sort((a, b) => a - b);
  return { median: times[Math.floor(times.length / 2)], best: times[0], cpu: cpu[Math.floor(cpu.length / 2)] };
}

module.exports = { timeIt };
