import { native } from '../addon';

/** The summary of a score map that `pgn score` (NDJSON) and `pgn serve` (JSON) report per score. */
export interface MapSummary {
  min: number;
  max: number;
  mean: number;
}

/**
 * min, max and mean of each map, in one native pass off the main thread (native/core/map_summary.h:
 * the mean summed in float64 in index order). NaN values are skipped by min and max, and make the
 * mean NaN.
 */
export function summarizeMaps(maps: Float32Array[], options: { threads?: number } = {}): Promise<MapSummary[]> {
  if (maps.length === 0) return Promise.resolve([]);
  return native.summarizeMaps({ maps, threads: options.threads });
}
