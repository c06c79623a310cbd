/** Images made from results: the colourised class map, as PNG. */
import sharp from 'sharp';
import { writeFileAtomic } from '../common/files';

export type Colour = [number, number, number];

/** Class k gets colours[k]; classes beyond the list get a fixed grey. */
export function colourise(prediction: Int32Array, colours: Colour[]): Buffer {
  const rgb = Buffer.alloc(prediction.length * 3);
  for (let i = 0; i < prediction.length; i++) {
    const c = colours[prediction[i]] ?? [128, 128, 128];
    rgb[3 * i] = c[0];
    rgb[3 * i + 1] = c[1];
    rgb[3 * i + 2] = c[2];
  }
  return rgb;
}

export async function writePredictionPng(file: string, prediction: Int32Array, width: number, height: number, colours: Colour[]): Promise<void> {
  const png = await sharp(colourise(prediction, colours), { raw: { width, height, channels: 3 } }).png().toBuffer();
  await writeFileAtomic(file, png);
}
