/** Option parsers shared by the subcommands. */
import { InvalidArgumentError } from 'commander';
import { loadModelCard } from '../model/model-card';
import { DEMO_MODEL } from '../run/scorer';
import { DEFAULT_P, scoreLabel } from '../scoring/scores';

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

export function parseNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || Number.isNaN(n)) throw new InvalidArgumentError('expected a number');
  return n;
}

/**
 * Segments need a threshold: --threshold, or the card's recommendation for the first score. A model
 * without either is still scored (maps, prediction), with a note that segments were skipped.
 */
export async function segmentsWanted(opts: { segments: boolean; threshold?: number; model?: string; score?: string[] }, command: string): Promise<boolean> {
  if (!opts.segments) return false;
  if (opts.threshold !== undefined) return true;
  const { card } = await loadModelCard(opts.model ?? DEMO_MODEL);
  const first = opts.score?.[0] ?? card.recommended?.score ?? `pgn-oh:p=${DEFAULT_P}`;
  if (card.recommended && scoreLabel(card.recommended.score) === scoreLabel(first)) return true;
  process.stderr.write(`${command}: no segments: the model card recommends no threshold for ${scoreLabel(first)}; give --threshold to get them\n`);
  return false;
}
