/**
 * Evaluation across machines (`pgn eval --shard I/N --save-state FILE`, `pgn eval merge`). Each shard
 * saves what the accumulators need of its images; the merge adds them, in the data set's order, to
 * fresh accumulators, so that its figures are those of a single run (the same values added in the
 * same order, the image index included: the binned mode breaks ties by it).
 *
 * Two steps, because the component metrics need the whole set's best-F1 threshold, which no shard
 * knows alone:
 * 1. shards save pixel states: per image, the non-void pixels' labels (0/1) and each score there;
 *    `pgn eval merge` of them gives the pixel figures and the thresholds;
 * 2. shards run again with `--thresholds merged.json` and save component states: per image, the label
 *    mask and, per score, the predicted mask (score > threshold) as bits; the merge of both kinds
 *    gives every figure.
 *
 * A state file: "PGNSTATE" + format version (uint32 LE) + header length (uint32 LE) + the JSON
 * header + the images' data. Merging checks the version, kind, scores, mode, track, data set size,
 * thresholds, and that the shards hold every image once.
 */
import fs from 'node:fs';
import { JournalError } from '../common/errors';
import { writeFileAtomic } from '../common/files';
import { inShard, Shard } from '../batch/shards';
import { normalizeScore, scoreLabel, scoreName } from '../scoring/scores';
import { readDataset, readLabelMask } from './dataset';
import { EvaluateOptions, Evaluation, openScoreSource } from './evaluate';
import { InstanceMetrics, InstanceMetricsResult, PixelMetrics, PixelMetricsMode, PixelMetricsResult, Track } from './metrics';

const MAGIC = 'PGNSTATE';
export const STATE_VERSION = 1;

export type StateKind = 'pixels' | 'components';

export interface StateHeader {
  kind: StateKind;
  dataset: string;
  /** Images of the whole data set. */
  total: number;
  shard: Shard;
  scores: string[];
  mode: PixelMetricsMode;
  track: Track;
  source: 'model' | 'tensors';
  /** components: the threshold of each score (score > t is OoD). */
  thresholds?: number[];
  /** The shard's images, in data set order: index in the data set, size, non-void pixels. */
  images: { index: number; stem: string; height: number; width: number; pixels: number }[];
  /** Summed ms of the shard's images: inference (or loading), scoring. */
  ms: { inference: number; scoring: number };
}

export interface EvalState {
  header: StateHeader;
  /** Per image: pixels: labels then one float32 array per score; components: the label mask then one bit mask per score. */
  data: Uint8Array[][];
}

function stateError(file: string, message: string): JournalError {
  return new JournalError(`${file}: ${message}`);
}

export function encodeState(state: EvalState): Buffer {
  const header = Buffer.from(JSON.stringify(state.header));
  const prefix = Buffer.alloc(16);
  prefix.write(MAGIC, 0, 'latin1');
  prefix.writeUInt32LE(STATE_VERSION, 8);
  prefix.writeUInt32LE(header.length, 12);
  return Buffer.concat([prefix, header, ...state.data.flat()]);
}

/** The byte lengths of an image's arrays, in the order they are stored. */
function parts(header: StateHeader, image: StateHeader['images'][number]): number[] {
  const n = header.scores.length;
  if (header.kind === 'pixels') return [image.pixels, ...Array<number>(n).fill(4 * image.pixels)];
  const area = image.height * image.width;
  return [area, ...Array<number>(n).fill(Math.ceil(area / 8))];
}

export function decodeState(bytes: Buffer, file: string): EvalState {
  if (bytes.length < 16 || bytes.toString('latin1', 0, 8) !== MAGIC) throw stateError(file, 'not an evaluation state of pgn eval --save-state');
  const version = bytes.readUInt32LE(8);
  if (version !== STATE_VERSION) throw stateError(file, `state format version ${version}; this pgn-ood reads version ${STATE_VERSION}: save the states again with this version`);
  const length = bytes.readUInt32LE(12);
  let header: StateHeader;
  try {
    header = JSON.parse(bytes.toString('utf8', 16, 16 + length)) as StateHeader;
  } catch {
    throw stateError(file, 'the header is not JSON: truncated or damaged');
  }
  let offset = 16 + length;
  const data = header.images.map((image) =>
    parts(header, image).map((size) => {
      if (offset + size > bytes.length) throw stateError(file, 'truncated: the data of its images is cut short');
      const part = new Uint8Array(bytes.buffer, bytes.byteOffset + offset, size);
      offset += size;
      return part;
    }),
  );
  if (offset !== bytes.length) throw stateError(file, `${bytes.length - offset} bytes beyond its images' data`);
  return { header, data };
}

export interface ShardStateOptions extends EvaluateOptions {
  shard: Shard;
  /** Component state: each score's threshold (from the merged pixel figures). Pixel state without. */
  thresholds?: number[];
}

/** One image's arrays for the state. */
function imageParts(maps: Float32Array[], labels: Uint8Array, thresholds?: number[]): { parts: Uint8Array[]; pixels: number } {
  if (thresholds) {
    const bits = maps.map((m, k) => {
      const packed = new Uint8Array(Math.ceil(m.length / 8));
      for (let i = 0; i < m.length; i++) if (m[i] > thresholds[k]) packed[i >> 3] |= 1 << (i & 7);
      return packed;
    });
    return { parts: [Uint8Array.from(labels), ...bits], pixels: labels.length };
  }
  const keep: number[] = [];
  for (let i = 0; i < labels.length; i++) if (labels[i] !== 255) keep.push(i);
  const kept = Uint8Array.from(keep, (i) => labels[i]);
  const values = maps.map((m) => new Uint8Array(Float32Array.from(keep, (i) => m[i]).buffer));
  return { parts: [kept, ...values], pixels: keep.length };
}

/** Scores this shard's images and writes their state to `file`. */
export async function saveShardState(options: ShardStateOptions, file: string): Promise<StateHeader> {
  const items = readDataset(options.dataset);
  const specs = options.scores.map(normalizeScore);
  if (options.thresholds && options.thresholds.length !== specs.length) throw new RangeError(`thresholds: ${options.thresholds.length} for ${specs.length} scores`);
  const source = await openScoreSource(options, specs);
  const header: StateHeader = {
    kind: options.thresholds ? 'components' : 'pixels',
    dataset: options.dataset,
    total: items.length,
    shard: options.shard,
    scores: specs.map(scoreLabel),
    mode: options.mode ?? 'exact',
    track: options.track ?? 'anomaly',
    source: source.kind,
    thresholds: options.thresholds,
    images: [],
    ms: { inference: 0, scoring: 0 },
  };
  const data: Uint8Array[][] = [];
  try {
    for (const [index, item] of items.entries()) {
      if (!inShard(index, options.shard)) continue;
      const label = await readLabelMask(item.label);
      const r = await source.maps(item, label, false);
      const { parts: stored, pixels } = imageParts(r.maps, label.data, options.thresholds);
      header.images.push({ index, stem: item.stem, height: label.height, width: label.width, pixels });
      header.ms.inference += r.inference;
      header.ms.scoring += r.scoring;
      data.push(stored);
      options.onProgress?.(header.images.length, Math.ceil((items.length - options.shard.index) / options.shard.count), header.kind === 'pixels' ? 'pixels' : 'components');
    }
  } finally {
    await source.dispose();
  }
  await writeFileAtomic(file, encodeState({ header, data }));
  return header;
}

export async function readState(file: string): Promise<EvalState> {
  const bytes = await fs.promises.readFile(file).catch((err: Error) => {
    throw stateError(file, `cannot read: ${err.message}`);
  });
  return decodeState(bytes, file);
}

type StoredImage = { header: StateHeader; image: StateHeader['images'][number]; data: Uint8Array[]; file: string };

/** The images of the states of one kind, checked against each other and for covering the data set once, in data set order. */
function ordered(states: { file: string; state: EvalState }[], kind: StateKind): StoredImage[] {
  const mine = states.filter((s) => s.state.header.kind === kind);
  const first = mine[0].state.header;
  for (const { file, state } of mine) {
    const h = state.header;
    for (const [what, a, b] of [
      ['scores', h.scores.join(', '), first.scores.join(', ')],
      ['mode', h.mode, first.mode],
      ['track', h.track, first.track],
      ['data set size', String(h.total), String(first.total)],
      ['thresholds', String(h.thresholds), String(first.thresholds)],
    ])
      if (a !== b) throw stateError(file, `its ${what} (${a}) differ from ${mine[0].file}'s (${b}): states of different runs`);
  }
  const byIndex = new Map<number, StoredImage>();
  const repeated: string[] = [];
  for (const { file, state } of mine)
    for (const [k, image] of state.header.images.entries()) {
      if (byIndex.has(image.index)) repeated.push(`${image.stem} (${byIndex.get(image.index)!.file}, ${file})`);
      byIndex.set(image.index, { header: state.header, image, data: state.data[k], file });
    }
  const missing = Array.from({ length: first.total }, (_, i) => i).filter((i) => !byIndex.has(i));
  if (repeated.length || missing.length)
    throw new JournalError(`${kind} states do not cover the data set once:` + (missing.length ? ` ${missing.length} image(s) missing (indices ${missing.slice(0, 10).join(', ')})` : '') + (repeated.length ? ` ${repeated.length} repeated: ${repeated.slice(0, 5).join('; ')}` : ''));
  return Array.from({ length: first.total }, (_, i) => byIndex.get(i)!);
}

/** Each score's component threshold from merged pixel figures: the benchmark's own in binned mode, as a single run uses. */
export function componentThresholds(pixel: PixelMetricsResult[]): number[] {
  return pixel.map((p) => p.official?.bestF1Threshold ?? p.bestF1Threshold);
}

/**
 * The figures of the whole data set from shard states: pixel states alone give the pixel figures;
 * with component states (of thresholds equal to those the pixel states give), the component ones too.
 */
export async function mergeStates(files: string[]): Promise<Evaluation> {
  if (files.length === 0) throw new RangeError('eval merge: no state files given');
  const states = await Promise.all(files.map(async (file) => ({ file, state: await readState(file) })));
  if (!states.some((s) => s.state.header.kind === 'pixels')) throw new JournalError('eval merge: no pixel state among the files (step 1: pgn eval --shard I/N --save-state FILE)');
  const pixels = ordered(states, 'pixels');
  const h = pixels[0].header;
  const accumulators = h.scores.map(() => new PixelMetrics({ mode: h.mode }));
  for (const { data } of pixels) {
    const labels = data[0];
    await Promise.all(accumulators.map((a, k) => a.add(new Float32Array(data[k + 1].slice().buffer), labels, [1, labels.length])));
  }
  const pixel = await Promise.all(accumulators.map((a) => a.finish()));
  let instance: (InstanceMetricsResult | undefined)[] = h.scores.map(() => undefined);
  const component = states.filter((s) => s.state.header.kind === 'components');
  if (component.length > 0) {
    const images = ordered(states, 'components');
    const c = images[0].header;
    if (c.scores.join(', ') !== h.scores.join(', ') || c.track !== h.track) throw new JournalError('eval merge: the component states are of other scores or another track than the pixel states');
    const expected = componentThresholds(pixel);
    if (c.thresholds!.some((t, k) => t !== expected[k]))
      throw new JournalError(`eval merge: the component states used thresholds ${c.thresholds!.join(', ')}, the pixel states give ${expected.join(', ')}: run step 2 with --thresholds of this merge`);
    // A predicted mask as scores 0/1 against threshold 0.5: the same components as score > t.
    const metrics = h.scores.map(() => new InstanceMetrics({ threshold: 0.5, track: h.track }));
    for (const { image, data } of images) {
      const labels = data[0];
      await Promise.all(metrics.map((m, k) => {
        const bits = data[k + 1];
        const scores = Float32Array.from({ length: labels.length }, (_, i) => (bits[i >> 3] >> (i & 7)) & 1);
        return m.add(scores, labels, [image.height, image.width]);
      }));
    }
    instance = await Promise.all(metrics.map((m) => m.finish()));
  }
  const ms = { inference: 0, scoring: 0 };
  for (const { state } of states.filter((s) => s.state.header.kind === 'pixels')) (ms.inference += state.header.ms.inference), (ms.scoring += state.header.ms.scoring);
  return {
    dataset: h.dataset,
    images: h.total,
    source: h.source,
    rows: h.scores.map((label, k) => {
      const spec = normalizeScore(label);
      return { spec, name: scoreName(spec), label, pixel: pixel[k], instance: instance[k] };
    }),
    timings: { inference: ms.inference / h.total, scoring: ms.scoring / h.total, total: (ms.inference + ms.scoring) / h.total },
    samples: [],
  };
}
