/**
 * src/image/ owns images in and out, the subpath entry `pgn-ood/image`: decoding and the model's
 * preprocessing (preprocess.ts), the colourised class map (render.ts), and the segment label PNGs
 * and heatmap overlays (segment-images.ts).
 */
export { decodeImage, toTensor } from './preprocess';
export type { DecodedImage, ImageBatch } from './preprocess';
export * from './segment-images';
