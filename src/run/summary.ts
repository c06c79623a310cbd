/** The summary of a score map that `pgn score` (NDJSON) and `pgn serve` (JSON) report per score. */
export interface MapSummary {
  min: number;
  max: number;
  mean: number;
}

/** One pass on the main thread (an indexed loop: for…of on a 2 MP typed array costs several times more). */
export function mapSummary(data: Float32Array): MapSummary {
  let min = Infinity, max = -Infinity, sum = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
  }
  return { min, max, mean: sum / data.length };
}
