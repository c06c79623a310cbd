/** Option parsers shared by the subcommands. */
import { InvalidArgumentError } from 'commander';

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

/** --limit-input-pixels: a positive integer, in decimal digits. */
export function parsePixelLimit(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer number of pixels');
  return n;
}

export const LIMIT_PIXELS_HELP = 'refuse images with more pixels than this, from their header (default 67108864 = 8192², about 1.7 GB per image)';
