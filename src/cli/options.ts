/** Option parsers shared by the subcommands. */
import { InvalidArgumentError } from 'commander';
import { MAX_INTRA_OP_THREADS } from '../model/session';
import { loadModelCard } from '../model/model-card';
import { DEMO_MODEL, ScorerOptions } from '../run/scorer';
import type { ExecutionProvider } from '../model/session';
import { Backend, DEFAULT_P, scoreLabel } from '../scoring/scores';

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function parseSize(value: string): [number, number] {
  const m = /^(\d+)x(\d+)$/i.exec(value.trim());
  if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) throw new InvalidArgumentError('expected HxW, e.g. 1024x2048');
  return [Number(m[1]), Number(m[2])];
}

export function parseCount(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return n;
}

/** --intra-op-threads: refused here, before the model is loaded, when out of ONNX Runtime's safe range. */
export function parseIntraOpThreads(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > MAX_INTRA_OP_THREADS) throw new InvalidArgumentError(`expected an integer from 1 to ${MAX_INTRA_OP_THREADS}`);
  return n;
}

export function parseNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || Number.isNaN(n)) throw new InvalidArgumentError('expected a number');
  return n;
}

/**
 * Segments need a threshold: --threshold, or the card's recommendation for the first score. A model
 * without either is still scored (maps, prediction), with a note that segments were skipped.
 */
async function segmentsWanted(opts: ScorerFlags, command: string): Promise<boolean> {
  if (!opts.segments) return false;
  if (opts.threshold !== undefined) return true;
  const { card } = await loadModelCard(opts.model ?? DEMO_MODEL);
  const first = opts.score?.[0] ?? card.recommended?.score ?? `pgn-oh:p=${DEFAULT_P}`;
  if (card.recommended && scoreLabel(card.recommended.score) === scoreLabel(first)) return true;
  process.stderr.write(`${command}: no segments: the model card recommends no threshold for ${scoreLabel(first)}; give --threshold, or choose one with "pgn calibrate --model MODEL --score ${scoreLabel(first)} IMAGES..."\n`);
  return false;
}

/** The scorer options that `pgn score` and `pgn serve` share, from their flags. */
export interface ScorerFlags {
  model?: string;
  score?: string[];
  threads?: number;
  backend?: Backend;
  intraOpThreads?: number;
  limitInputPixels?: number;
  ep?: ExecutionProvider;
  segments: boolean;
  threshold?: number;
  minArea: number;
}

export async function scorerOptions(opts: ScorerFlags, command: string): Promise<ScorerOptions> {
  return {
    model: opts.model,
    scores: opts.score,
    threads: opts.threads,
    backend: opts.backend,
    intraOpThreads: opts.intraOpThreads,
    limitInputPixels: opts.limitInputPixels,
    executionProviders: opts.ep ? [opts.ep] : undefined,
    segments: (await segmentsWanted(opts, command)) ? { threshold: opts.threshold, minArea: opts.minArea } : undefined,
  };
}

/** --limit-input-pixels: a positive integer, in decimal digits. */
export function parsePixelLimit(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer number of pixels');
  return n;
}

export const LIMIT_PIXELS_HELP = 'refuse images with more pixels than this, from their header (default 67108864 = 8192², about 1.7 GB per image)';
