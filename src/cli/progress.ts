/** Progress on stderr: a bar with ETA on a terminal, plain lines otherwise (logs, CI). */
import cliProgress from 'cli-progress';

export interface Progress {
  update(done: number, total: number, stage: string): void;
  stop(): void;
}

export function progress(label: string): Progress {
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      { format: `${label} {stage} [{bar}] {value}/{total} | {rate} img/s | ETA {eta_formatted}`, stream: process.stderr, hideCursor: true },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    const t0 = Date.now();
    return {
      update(done, total, stage) {
        if (!started) bar.start(total, 0, { stage, rate: '-' }), (started = true);
        bar.setTotal(total);
        bar.update(done, { stage, rate: (done / ((Date.now() - t0) / 1000)).toFixed(1) });
      },
      stop: () => bar.stop(),
    };
  }
  let last = 0;
  return {
    update(done, total, stage) {
      // Every tenth, and the last: enough to follow a long run in a log without flooding it.
      if (done === total || done - last >= Math.max(1, Math.ceil(total / 10))) {
        last = done === total ? 0 : done;
        process.stderr.write(`${label} ${stage}: ${done}/${total}\n`);
      }
    },
    stop: () => undefined,
  };
}
