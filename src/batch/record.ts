/**
 * One image's record, as `pgn score` writes it on its NDJSON line and the queue worker returns it:
 * score summaries, segments, timings, the output files actually written, and the input's identity
 * (size and mtime) that --resume checks.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ensureDir } from '../common/files';
import { writeNpy } from '../common/npy';
import { writePredictionPng } from '../image/render';
import { robustRange, writeLabelPng, writeOverlayPng } from '../image/segment-images';
import { ImageResult, StageTimings } from '../run/scorer';
import { MapSummary, summarizeMaps } from '../scoring/summary';
import { Segment } from '../scoring/segments';

/** Which files to write per image, into `dir`. */
export interface OutputOptions {
  dir?: string;
  npy?: boolean;
  png?: boolean;
  overlay?: boolean;
  labelsPng?: boolean;
}

export interface InputIdentity {
  size: number;
  mtimeMs: number;
}

export interface ScoreRecord {
  file: string;
  /** Size and mtime of the input when it was read (absent for a missing file or bytes). */
  input?: InputIdentity;
  width?: number;
  height?: number;
  scores?: Record<string, MapSummary>;
  segments?: Segment[];
  outputs?: string[];
  timings?: StageTimings;
  error?: { code: string; message: string };
}

/** The files of one image under `dir`/`stem`, in the order they are written. */
export function outputFiles(stem: string, scoreNames: string[], opts: OutputOptions, segments: boolean): string[] {
  if (!opts.dir) return [];
  const base = path.join(opts.dir, stem);
  return [
    ...(opts.npy ? scoreNames.map((name) => `${base}.${name}.npy`) : []),
    ...(opts.png ? [`${base}.prediction.png`] : []),
    ...(opts.overlay ? [`${base}.overlay.png`] : []),
    ...(opts.labelsPng && segments ? [`${base}.segments.png`] : []),
  ];
}

/** Writes the image's files (named by outputFiles) and returns their paths. */
export async function writeOutputs(result: ImageResult, stem: string, opts: OutputOptions, colors: [number, number, number][]): Promise<string[]> {
  const files = outputFiles(stem, result.maps.map((m) => m.name), { ...opts, png: opts.png && !!result.prediction }, !!result.segmentLabels);
  if (files.length === 0) return [];
  await ensureDir(path.dirname(files[0]));
  const dims: [number, number, number] = [1, result.height, result.width];
  const labels = result.segmentLabels ? { data: result.segmentLabels, dims } : null;
  let k = 0;
  if (opts.npy) for (const map of result.maps) await writeNpy(files[k++], map.data, [result.height, result.width]);
  if (opts.png && result.prediction) await writePredictionPng(files[k++], result.prediction, result.width, result.height, colors);
  if (opts.overlay) await writeOverlayPng(files[k++], result.source, { data: result.maps[0].data, dims }, labels, { range: robustRange(result.maps[0].data) });
  if (opts.labelsPng && labels) await writeLabelPng(files[k++], labels);
  return files;
}

/** The size and mtime of a regular file; undefined for anything else (a FIFO or device has no lasting identity). */
export async function inputIdentity(file: string): Promise<InputIdentity | undefined> {
  const stat = await fs.promises.stat(file).catch(() => undefined);
  return stat?.isFile() ? { size: stat.size, mtimeMs: stat.mtimeMs } : undefined;
}

/** The record of a scored image (its outputs written first). */
export async function resultRecord(result: ImageResult, stem: string, opts: OutputOptions, colors: [number, number, number][]): Promise<ScoreRecord> {
  const outputs = await writeOutputs(result, stem, opts, colors);
  const summaries = await summarizeMaps(result.maps.map((m) => m.data));
  const scores = Object.fromEntries(result.maps.map((m, k) => [m.name, summaries[k]]));
  return { file: result.source, width: result.width, height: result.height, scores, segments: result.segments, outputs, timings: result.timings };
}

/** The record of an image that failed: its error's stable code (PgnError), else the error's name. */
export function errorRecord(file: string, err: unknown): ScoreRecord {
  const e = err as Error & { code?: unknown };
  return { file, error: { code: typeof e.code === 'string' ? e.code : e.name ?? 'Error', message: e.message ?? String(err) } };
}
