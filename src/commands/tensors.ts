/** `pgn tensors`: scores from .npy logits and features computed elsewhere, one .npy per score. */
import path from 'node:path';
import { Command } from 'commander';
import { ensureDir } from '../files';
import { readFloatNpy, writeNpy } from '../npy';
import { Backend, computeScores, DEFAULT_P, MapStack, upsample } from '../scores';
import { TensorFileError } from '../errors';
import { collect, parseCount, parseSize } from './options';

interface TensorsOptions {
  logits: string;
  features?: string;
  score?: string[];
  out: string;
  size?: [number, number];
  alignCorners?: boolean;
  prediction?: boolean;
  threads?: number;
  backend?: Backend;
}

export function tensorsCommand(): Command {
  return new Command('tensors')
    .description('score precomputed logits [N,C,h,w] and features [N,F,h,w] (.npy, float16/float32, C order)')
    .requiredOption('--logits <file>', 'logits .npy (the final 1x1 convolution\'s output)')
    .option('--features <file>', 'penultimate features .npy (that convolution\'s input); needed by pgn-* scores')
    .option('--score <spec>', `score to compute, repeatable: pgn-oh[:p=${DEFAULT_P}][:variant=code], pgn-uni[...], entropy, msp, maxlogit, energy`, collect)
    .requiredOption('--out <dir>', 'output directory: one <score>.npy per score, float32 [N,h,w] (or [N,H,W] with --size)')
    .option('--size <HxW>', 'upsample the maps bilinearly to this size', parseSize)
    .option('--align-corners', 'align_corners=true for --size (default false, as segmentation networks use)')
    .option('--prediction', 'also write prediction.npy: the argmax class map, int32 [N,h,w]')
    .option('--threads <n>', 'native threads (0 = all cores)', parseCount)
    .option('--backend <name>', 'cpu or cuda', 'cpu')
    .action(async (opts: TensorsOptions) => {
      const written = await runTensors(opts);
      for (const file of written) process.stdout.write(`${file}\n`);
    });
}

async function runTensors(opts: TensorsOptions): Promise<string[]> {
  const scores = opts.score ?? [`pgn-oh:p=${DEFAULT_P}`];
  await ensureDir(opts.out); // before the work: an unwritable --out fails fast
  const logits = await readFloatNpy(opts.logits);
  const features = opts.features ? await readFloatNpy(opts.features) : undefined;
  for (const [t, name] of [[logits, 'logits'], [features, 'features']] as const)
    if (t && t.dims.length !== 4) throw new TensorFileError(`${name} ${name === 'logits' ? opts.logits : opts.features}: expected 4 dimensions [N,C,h,w], got [${t.dims.join(', ')}]`);
  const result = await computeScores(logits, features, { scores, prediction: opts.prediction ?? false, threads: opts.threads, backend: opts.backend });
  const written: string[] = [];
  const outputs: [string, MapStack][] = result.maps.map((m) => [m.name, m.map]);
  for (const [name, map] of outputs) {
    const final = opts.size ? await upsample(map, opts.size, { alignCorners: opts.alignCorners, threads: opts.threads }) : map;
    const file = path.join(opts.out, `${name}.npy`);
    await writeNpy(file, final.data, final.dims);
    written.push(file);
  }
  if (result.prediction) {
    const file = path.join(opts.out, 'prediction.npy');
    await writeNpy(file, result.prediction.data, result.prediction.dims);
    written.push(file);
  }
  return written;
}
