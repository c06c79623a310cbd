/**
 * The model card: a JSON file beside the model (models/<name>/model.json) saying how to feed the
 * model (input size, resize mode, normalization), what its classes are, and which score and
 * threshold its authors recommend. Validated with a JSON schema; contradictions with the model
 * itself are checked once the model has been analyzed.
 */
import Ajv, { ErrorObject } from 'ajv';
import { promises as fs } from 'fs';
import * as path from 'path';
import { ModelCardError, ModelError } from '../common/errors';
import { analyzeModel, ModelAnalysis } from './graph-surgery';

export type Triple = [number, number, number];

export interface ModelCardInput {
  /** Name of the model's image input. */
  name: string;
  /** Size fed to the model; required with resize "stretch", optional with "none". */
  height?: number;
  width?: number;
  /** "stretch": resize to height×width ignoring aspect; "none": feed at native size (dynamic H, W). */
  resize: 'stretch' | 'none';
  /** Channel order the model expects. */
  channelOrder: 'rgb' | 'bgr';
  /** Pixel values are divided by scale, then normalized: (v / scale − mean) / std. */
  scale: number;
  /** Per channel, in the model's channel order (i.e. after channelOrder is applied). */
  mean: Triple;
  std: Triple;
}

export interface ModelCard {
  name: string;
  description?: string;
  /** Path of the ONNX model, relative to the card. */
  model: string;
  input: ModelCardInput;
  outputs?: { logits?: string; features?: string };
  classes: { name: string; color: Triple }[];
  recommended?: { score: string; threshold: number };
  calibration?: { score: string; fpr: number; threshold: number };
  metrics?: Record<string, unknown>;
}

export interface LoadedModelCard {
  card: ModelCard;
  /** The card file, or null when the card was derived from the model (no model.json). */
  cardPath: string | null;
  /** Absolute path of the ONNX model. */
  modelPath: string;
}

export const CARD_FILE = 'model.json';
export const IMAGENET_MEAN: Triple = [0.485, 0.456, 0.406];
export const IMAGENET_STD: Triple = [0.229, 0.224, 0.225];

const nonEmpty = { type: 'string', minLength: 1 };
const triple = (item: object) => ({ type: 'array', items: item, minItems: 3, maxItems: 3 });

/** The largest input height or width a model card may ask for. */
export const MAX_INPUT_SIDE = 8192;

export const modelCardSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'model', 'input', 'classes'],
  properties: {
    name: nonEmpty,
    description: { type: 'string' },
    model: nonEmpty,
    input: {
      type: 'object',
      additionalProperties: false,
      required: ['name', 'resize', 'channelOrder', 'scale', 'mean', 'std'],
      properties: {
        name: nonEmpty,
        // One [3, H, W] float input is 12·H·W bytes, and the maps follow its size: 8192 per side
        // (805 MB an image) is far beyond any segmentation network's input and bounds what a card asks.
        height: { type: 'integer', minimum: 1, maximum: MAX_INPUT_SIDE },
        width: { type: 'integer', minimum: 1, maximum: MAX_INPUT_SIDE },
        resize: { enum: ['stretch', 'none'] },
        channelOrder: { enum: ['rgb', 'bgr'] },
        scale: { type: 'number', exclusiveMinimum: 0 },
        mean: triple({ type: 'number' }),
        std: triple({ type: 'number', exclusiveMinimum: 0 }),
      },
      if: { required: ['resize'], properties: { resize: { const: 'stretch' } } },
      then: { required: ['height', 'width'] },
    },
    outputs: {
      type: 'object',
      additionalProperties: false,
      properties: { logits: nonEmpty, features: nonEmpty },
    },
    classes: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'color'],
        properties: { name: nonEmpty, color: triple({ type: 'integer', minimum: 0, maximum: 255 }) },
      },
    },
    recommended: {
      type: 'object',
      additionalProperties: false,
      required: ['score', 'threshold'],
      properties: { score: nonEmpty, threshold: { type: 'number' } },
    },
    calibration: {
      type: 'object',
      additionalProperties: false,
      required: ['score', 'fpr', 'threshold'],
      properties: {
        score: nonEmpty,
        fpr: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 },
        threshold: { type: 'number' },
      },
    },
    // free-form: whatever the authors measured
    metrics: { type: 'object' },
  },
} as const;

const validate = new Ajv({ allErrors: true, verbose: true }).compile<ModelCard>(modelCardSchema);

/** JSON pointer "/input/mean/1" → "input.mean[1]". */
function jsonPath(pointer: string, child?: string): string {
  const parts = pointer.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (child !== undefined) parts.push(child);
  const joined = parts.map((p) => (/^\d+$/.test(p) ? `[${p}]` : `.${p}`)).join('');
  return joined.replace(/^\./, '') || '(top level)';
}

function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function describe(e: ErrorObject): string {
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required':
      return `${jsonPath(e.instancePath, String(p.missingProperty))} is missing`;
    case 'additionalProperties': {
      const known = Object.keys((e.parentSchema?.properties as object) ?? {}).join(', ');
      return `${jsonPath(e.instancePath, String(p.additionalProperty))} is not a known property (expected one of: ${known})`;
    }
    case 'enum':
      return `${jsonPath(e.instancePath)} must be one of ${(p.allowedValues as unknown[]).map(shown).join(', ')} (got ${shown(e.data)})`;
    default:
      return `${jsonPath(e.instancePath)} ${e.message} (got ${shown(e.data)})`;
  }
}

/** Validates parsed JSON as a model card; `source` names the file in errors. */
export function parseModelCard(json: unknown, source: string): ModelCard {
  if (validate(json)) return json;
  // "if/then" reports the failed "then" twice: once as "required" (kept) and once as "if".
  const problems = (validate.errors ?? []).filter((e) => e.keyword !== 'if').map(describe);
  throw new ModelCardError(`${source}: invalid model card: ${problems.join('; ')}`);
}

async function readCardFile(cardPath: string): Promise<LoadedModelCard> {
  let text: string;
  try {
    text = await fs.readFile(cardPath, 'utf8');
  } catch (err) {
    throw new ModelCardError(`${cardPath}: cannot read the model card (${(err as Error).message})`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ModelCardError(`${cardPath}: model card is not valid JSON (${(err as Error).message})`, { cause: err });
  }
  const card = parseModelCard(json, cardPath);
  const modelPath = path.resolve(path.dirname(cardPath), card.model);
  if (!(await isFile(modelPath))) {
    throw new ModelCardError(`${cardPath}: model "${card.model}" (${modelPath}) does not exist`);
  }
  return { card, cardPath: path.resolve(cardPath), modelPath };
}

async function isFile(p: string): Promise<boolean> {
  return fs.stat(p).then((s) => s.isFile(), () => false);
}

/**
 * Loads the card for a model directory (its model.json), a card file (.json), or an ONNX file
 * (the model.json beside it if that card is for this file, else a default card derived from the
 * model: see defaultModelCard).
 */
export async function loadModelCard(pathOrDir: string): Promise<LoadedModelCard> {
  const stat = await fs.stat(pathOrDir).catch(() => null);
  if (!stat) throw new ModelCardError(`${pathOrDir}: no such file or directory`);
  if (stat.isDirectory()) return readCardFile(path.join(pathOrDir, CARD_FILE));
  if (path.extname(pathOrDir).toLowerCase() === '.json') return readCardFile(pathOrDir);
  const modelPath = path.resolve(pathOrDir);
  const beside = path.join(path.dirname(modelPath), CARD_FILE);
  if (await isFile(beside)) {
    const loaded = await readCardFile(beside);
    if (loaded.modelPath === modelPath) return loaded;
  }
  const bytes = await fs.readFile(modelPath).catch((err: Error) => {
    throw new ModelError(`${modelPath}: cannot read the model (${err.message})`, { cause: err });
  });
  const analysis = analyzeModel(bytes, { source: modelPath });
  return { card: defaultModelCard(analysis, modelPath), cardPath: null, modelPath };
}

/**
 * The card assumed for a model without one: its own input size if static (else native size),
 * ImageNet normalization of RGB values in 0..255, classes "class0".., no recommended score.
 */
export function defaultModelCard(analysis: ModelAnalysis, modelPath: string): ModelCard {
  const [, , h, w] = analysis.input.shape;
  const size = typeof h === 'number' && h > 0 && typeof w === 'number' && w > 0
    ? { height: h, width: w, resize: 'stretch' as const }
    : { resize: 'none' as const };
  if (size.resize === 'stretch' && Math.max(size.height, size.width) > MAX_INPUT_SIDE)
    throw new ModelError(`${modelPath}: the model's input is fixed at ${h}x${w} (height x width), more than the ${MAX_INPUT_SIDE} a side a model card may ask for`);
  return {
    name: path.basename(modelPath, path.extname(modelPath)),
    description: `default card derived from ${path.basename(modelPath)} (no ${CARD_FILE} found)`,
    model: path.basename(modelPath),
    input: { name: analysis.input.name, ...size, channelOrder: 'rgb', scale: 255, mean: IMAGENET_MEAN, std: IMAGENET_STD },
    outputs: { logits: analysis.logitsOutput },
    classes: Array.from({ length: analysis.numClasses }, (_, i) => ({ name: `class${i}`, color: paletteColor(i) })),
  };
}

/** The Pascal VOC colour map: distinct colours for the first 256 classes. */
function paletteColor(index: number): Triple {
  const rgb: Triple = [0, 0, 0];
  for (let bit = 7, id = index; id > 0; bit--, id >>= 3) {
    for (let c = 0; c < 3; c++) rgb[c] = rgb[c]! | (((id >> c) & 1) << bit);
  }
  return rgb;
}

/** Throws ModelCardError listing every way the card contradicts the analyzed model. */
export function checkCardAgainstModel(card: ModelCard, analysis: ModelAnalysis, source = 'model card'): void {
  const problems: string[] = [];
  const conv = `the model's final conv "${analysis.conv.name}"`;
  if (card.classes.length !== analysis.numClasses) {
    problems.push(`lists ${card.classes.length} classes but ${conv} has ${analysis.numClasses} output channels`);
  }
  if (card.input.name !== analysis.input.name) {
    problems.push(`names the input "${card.input.name}" but the model's input is "${analysis.input.name}"`);
  }
  problems.push(...inputShapeProblems(card.input, analysis.input.shape));
  for (const [key, name] of Object.entries(card.outputs ?? {})) {
    if (!analysis.outputs.includes(name)) {
      problems.push(`names the ${key} output "${name}" but the model's outputs are ${analysis.outputs.map((o) => `"${o}"`).join(', ')}`);
    }
  }
  if (problems.length) throw new ModelCardError(`${source}: the card contradicts the model: ${problems.join('; ')}`);
}

function inputShapeProblems(input: ModelCardInput, shape: ModelAnalysis['input']['shape']): string[] {
  if (shape.length !== 4) return [`the model's input has shape [${shape.join(',')}], not [N,3,H,W]`];
  const [, channels, h, w] = shape;
  const problems: string[] = [];
  if (typeof channels === 'number' && channels > 0 && channels !== 3) {
    problems.push(`the model's input has ${channels} channels, not 3`);
  }
  const fixed = typeof h === 'number' && h > 0 && typeof w === 'number' && w > 0;
  if (fixed && input.resize === 'none') {
    problems.push(`resize "none" feeds images at their own size but the model's input is fixed at ${h}x${w} (height x width): use resize "stretch"`);
  } else if (fixed && (input.height !== h || input.width !== w)) {
    problems.push(`input size ${input.height}x${input.width} (height x width) differs from the model's fixed ${h}x${w}`);
  }
  return problems;
}
