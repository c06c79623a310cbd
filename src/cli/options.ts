/** Option parsers shared by the subcommands. */
import { InvalidArgumentError } from 'commander';
import { MAX_INTRA_OP_THREADS } from '../model/session';

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
