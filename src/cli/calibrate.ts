/** `pgn calibrate`: chooses a score's segment threshold and writes it into the model card. */
import { Command, InvalidArgumentError } from 'commander';
import { ModelCardError } from '../common/errors';
import { calibrate, CalibrationObjective } from '../eval/calibrate';
import { Track } from '../eval/metrics';
import { loadModelCard, recordCalibration } from '../model/model-card';
import { ExecutionProvider } from '../model/session';
import { expandInputs } from '../run/inputs';
import { parseCount } from './options';
import { progress } from './progress';

const pkg = require('../../package.json') as { version: string };

interface CalibrateCommandOptions {
  model: string;
  score?: string;
  fpr: number;
  dataset?: string;
  objective: CalibrationObjective;
  track: Track;
  batch: number;
  threads?: number;
  intraOpThreads?: number;
  ep?: ExecutionProvider;
  write: boolean;
  json?: boolean;
}

function parseFraction(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !(n >= 0 && n < 1)) throw new InvalidArgumentError('expected a fraction in [0, 1), e.g. 0.05');
  return n;
}

export function calibrateCommand(): Command {
  return new Command('calibrate')
    .description("choose a score's segment threshold (on unlabeled in-distribution images, or a labeled data set) and write it into the model card")
    .argument('[images...]', 'unlabeled in-distribution images: files, folders or globs')
    .requiredOption('--model <path>', 'model directory or model card (the card is written)')
    .option('--score <spec>', "score to calibrate (default: the card's recommended score, else pgn-oh:p=0.5)")
    .option('--fpr <fraction>', 'objective fpr: fraction of in-distribution pixels flagged', parseFraction, 0.05)
    .option('--dataset <dir>', 'a labeled data set (images/, labels_masks/) instead of images')
    .option('--objective <name>', 'fpr, or with --dataset pixel-f1 or component-f1', 'fpr')
    .option('--track <track>', 'component-f1 size filters: anomaly or obstacle', 'anomaly')
    .option('--batch <n>', 'images per inference call', parseCount, 1)
    .option('--threads <n>', 'native threads (0 = all cores)', parseCount)
    .option('--intra-op-threads <n>', 'ONNX Runtime intra-op threads', parseCount)
    .option('--ep <name>', 'ONNX Runtime execution provider: cpu or cuda')
    .option('--no-write', 'print the calibration only; leave the card as it is')
    .option('--json', 'print the calibration record as JSON')
    .action(async (patterns: string[], opts: CalibrateCommandOptions) => {
      if (!['fpr', 'pixel-f1', 'component-f1'].includes(opts.objective)) throw new RangeError(`--objective must be fpr, pixel-f1 or component-f1, got ${opts.objective}`);
      if (opts.track !== 'anomaly' && opts.track !== 'obstacle') throw new RangeError(`--track must be anomaly or obstacle, got ${opts.track}`);
      if ((patterns.length > 0) === (opts.dataset !== undefined)) throw new RangeError('give either images or --dataset');
      if (opts.objective !== 'fpr' && !opts.dataset) throw new RangeError(`--objective ${opts.objective} needs --dataset (labels)`);
      // The card to write is known before hours of scoring, not after.
      const { cardPath } = await loadModelCard(opts.model);
      if (opts.write && !cardPath) throw new ModelCardError(`${opts.model}: the model has no card to write the threshold into: run \`pgn card init ${opts.model}\` first (or give --no-write)`);
      const images = patterns.length ? await expandInputs(patterns) : undefined;
      const bar = progress('pgn calibrate');
      let record;
      try {
        record = await calibrate({
          model: opts.model, score: opts.score, fpr: opts.fpr, images, dataset: opts.dataset, objective: opts.objective, track: opts.track,
          batchSize: opts.batch, threads: opts.threads, version: pkg.version,
          scorer: { intraOpThreads: opts.intraOpThreads, executionProviders: opts.ep ? [opts.ep] : undefined },
          onProgress: (done, total, stage) => bar.update(done, total, stage),
        });
      } finally {
        bar.stop();
      }
      if (opts.write) await recordCalibration(cardPath!, record);
      if (opts.json) process.stdout.write(`${JSON.stringify({ ...record, card: opts.write ? cardPath : null }, null, 2)}\n`);
      else {
        const what = record.objective ? `best ${record.objective} ${record.value?.toFixed(4)}` : `fpr ${record.fpr}`;
        process.stdout.write(`${record.score}: threshold ${record.threshold} (${what}; ${record.images} images, ${record.pixels} pixels)\n`);
        if (opts.write) process.stdout.write(`written to ${cardPath} as the recommended threshold\n`);
      }
    });
}
