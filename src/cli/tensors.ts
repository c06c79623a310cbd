/**
 * `pgn tensors`: scores from .npy logits and features computed elsewhere, one .npy per score. The
 * pgn2-* scores also take the second-to-last conv's input, the final conv's weight and the conv's
 * geometry (--input, --kernel, --conv-*, --activation).
 */
import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { ensureDir } from '../common/files';
import { readFloatNpy, writeNpy } from '../common/npy';
import { Backend, computeScores, DEFAULT_P, isPgn2, MapStack, normalizeScore, upsample } from '../scoring/scores';
import { ActivationInfo, parseActivation, SecondLayerInputs } from '../scoring/second-layer';
import { TensorFileError } from '../common/errors';
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
  input?: string;
  kernel?: string;
  convKernel: [number, number];
  convStride: [number, number];
  convDilation: [number, number];
  convPad?: number[];
  activation: ActivationInfo;
  bnScale?: string;
  bnGamma?: string;
}

/** "3" or "3x3" / "3,3": [h, w]. */
function parsePair(min: number) {
  return (value: string): [number, number] => {
    const parts = value.trim().split(/[x,]/i).map(Number);
    if ((parts.length !== 1 && parts.length !== 2) || parts.some((v) => !Number.isInteger(v) || v < min)) {
      throw new InvalidArgumentError(`expected an integer >= ${min} or two as HxW`);
    }
    return [parts[0]!, parts[parts.length - 1]!];
  };
}

/** "1", "1,2" (h, w) or "t,l,b,r". */
function parsePads(value: string): number[] {
  const parts = value.trim().split(',').map(Number);
  if (![1, 2, 4].includes(parts.length) || parts.some((v) => !Number.isInteger(v) || v < 0)) {
    throw new InvalidArgumentError('expected p, ph,pw or top,left,bottom,right (integers >= 0)');
  }
  return parts.length === 1 ? [parts[0]!, parts[0]!, parts[0]!, parts[0]!] : parts.length === 2 ? [parts[0]!, parts[1]!, parts[0]!, parts[1]!] : parts;
}

function parseActivationOption(value: string): ActivationInfo {
  try {
    return parseActivation(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

export function tensorsCommand(): Command {
  return new Command('tensors')
    .description('score precomputed logits [N,C,h,w] and features [N,F,h,w] (.npy, float16/float32, C order)')
    .requiredOption('--logits <file>', 'logits .npy (the final 1x1 convolution\'s output)')
    .option('--features <file>', 'penultimate features .npy (that convolution\'s input); needed by pgn-* scores')
    .option('--score <spec>', `score to compute, repeatable: pgn-oh[:p=${DEFAULT_P}][:variant=code], pgn-uni[...], pgn2-oh[...], pgn2-uni[...], entropy, msp, maxlogit, energy`, collect)
    .requiredOption('--out <dir>', 'output directory: one <score>.npy per score, float32 [N,h,w] (or [N,H,W] with --size)')
    .option('--size <HxW>', 'upsample the maps bilinearly to this size', parseSize)
    .option('--align-corners', 'align_corners=true for --size (default false, as segmentation networks use)')
    .option('--prediction', 'also write prediction.npy: the argmax class map, int32 [N,h,w]')
    .option('--threads <n>', 'native threads (0 = all cores)', parseCount)
    .option('--backend <name>', 'cpu or cuda', 'cpu')
    .option('--input <file>', 'pgn2-*: input x .npy [N,Cin,H,W] of the second-to-last conv (the k×k conv before the activation that gives the features)')
    .option('--kernel <file>', 'pgn2-*: weight K .npy of the final 1x1 conv, [C,F] or [C,F,1,1]')
    .option('--conv-kernel <k>', 'pgn2-*: kernel size of the second-to-last conv, k or kh x kw', parsePair(1), [3, 3])
    .option('--conv-stride <s>', 'pgn2-*: its stride, s or sh x sw', parsePair(1), [1, 1])
    .option('--conv-dilation <d>', 'pgn2-*: its dilation, d or dh x dw', parsePair(1), [1, 1])
    .option('--conv-pad <p>', 'pgn2-*: its zero padding: p, ph,pw or top,left,bottom,right (default: same, dilation·(k−1)/2)', parsePads)
    .option('--activation <spec>', 'pgn2-*: the activation producing the features: relu, relu6, leakyrelu:<alpha>, clip:<min>:<max>, prelu:<slope>', parseActivationOption, { kind: 'relu' })
    .option('--bn-scale <file>', 'pgn2-*: γ/√(var+ε) .npy [F] of a BatchNorm between the conv and the activation that is not folded into the conv')
    .option('--bn-gamma <file>', 'pgn2-*: that BatchNorm\'s γ .npy [F] (variant=code multiplies by γ alone, as the authors\' code)')
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
  const secondLayer = scores.some((s) => isPgn2(normalizeScore(s).kind)) ? await readSecondLayer(opts) : undefined;
  const result = await computeScores(logits, features, { scores, prediction: opts.prediction ?? false, threads: opts.threads, backend: opts.backend, secondLayer });
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

/** The pgn2-* inputs from --input, --kernel, --bn-scale, --bn-gamma and the geometry flags. */
async function readSecondLayer(opts: TensorsOptions): Promise<SecondLayerInputs> {
  if (!opts.input || !opts.kernel) throw new RangeError('pgn2-* scores need --input (the second-to-last conv\'s input x .npy) and --kernel (the final 1x1 conv\'s weight .npy)');
  const input = await readFloatNpy(opts.input);
  if (input.dims.length !== 4) throw new TensorFileError(`input ${opts.input}: expected 4 dimensions [N,Cin,H,W], got [${input.dims.join(', ')}]`);
  const kernel = await readFloatNpy(opts.kernel);
  if (!(kernel.dims.length === 2 || (kernel.dims.length === 4 && kernel.dims[2] === 1 && kernel.dims[3] === 1))) {
    throw new TensorFileError(`kernel ${opts.kernel}: expected [C,F] or [C,F,1,1], got [${kernel.dims.join(', ')}]`);
  }
  const vector = async (file: string | undefined, name: string) => {
    if (!file) return null;
    const v = await readFloatNpy(file);
    if (v.dims.length !== 1 && !(v.dims.length === 4 && v.dims[0] === 1 && v.dims[2] === 1 && v.dims[3] === 1)) {
      throw new TensorFileError(`${name} ${file}: expected one value per feature channel, [F], got [${v.dims.join(', ')}]`);
    }
    return v.data;
  };
  const [kh, kw] = opts.convKernel, [dh, dw] = opts.convDilation;
  const same = [Math.floor((dh * (kh - 1)) / 2), Math.floor((dw * (kw - 1)) / 2)];
  const pads = (opts.convPad ?? [same[0], same[1], same[0], same[1]]) as [number, number, number, number];
  return {
    input: { data: input.data, dims: input.dims },
    kernel: kernel.data,
    layer: {
      kernelShape: opts.convKernel,
      strides: opts.convStride,
      dilations: opts.convDilation,
      pads,
      activation: opts.activation,
      bnScale: await vector(opts.bnScale, 'bn-scale'),
      bnGamma: await vector(opts.bnGamma, 'bn-gamma'),
    },
  };
}
