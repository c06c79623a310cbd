/**
 * src/run/ owns running images through a model: the Scorer (scorer.ts: decode, inference, scores,
 * segments for one image or one batch), the bounded streaming pipeline (pipeline.ts), and the
 * command line's inputs expanded to image files (inputs.ts). Its public pieces are on the root entry.
 */
export { Scorer, score, DEMO_MODEL, SCORER_PIXEL_LIMIT, REUSE_BYTES } from './scorer';
export type { ScorerOptions, SegmentsOption, ImageInput, ImageResult, ScoredMap, StageTimings } from './scorer';
export { scoreStream, scoreImages } from './pipeline';
export type { StreamOptions, StreamItem } from './pipeline';
