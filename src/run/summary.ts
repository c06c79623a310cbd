/** The summary of a score map that `pgn score` (NDJSON) and `pgn serve` (JSON) report per score. */
export interface MapSummary {
  min: number;
  max: number;
  mean: number;
}

export function mapSummary(data: Float32Array): MapSummary {
  let min = Infinity, max = -Infinity, sum = 0;
  for (const v of data) {
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
  }
  return { min, max, mean: sum / data.length };
}
