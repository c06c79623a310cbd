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
import { notRegular, readRegularFile } from '../common/read-file';
import { writeFileAtomic } from '../common/files';
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
  calibration?: CalibrationRecord;
  metrics?: Record<string, unknown>;
  /**
   * Fields a person must still check (written by `pgn card init`, which can only guess them);
   * `pgn inspect` warns while any is listed. Remove an entry once the value is verified.
   */
  unchecked?: UncheckedField[];
}

/** How `pgn calibrate` chose the recommended threshold. */
export interface CalibrationRecord {
  score: string;
  threshold: number;
  /** Unlabeled in-distribution images: the fraction of their pixels flagged at the threshold. */
  fpr?: number;
  /** Labeled data set: the objective maximized, and its value there. */
  objective?: 'component-f1' | 'pixel-f1';
  value?: number;
  dataset?: string;
  images: number;
  pixels: number;
  /** ISO 8601. */
  date: string;
  /** pgn-ood's version. */
  version: string;
}

/** What a starter card can only guess: normalization, channel order and the class names. */
export const UNCHECKED_FIELDS = ['input.scale', 'input.mean', 'input.std', 'input.channelOrder', 'classes'] as const;
export type UncheckedField = (typeof UNCHECKED_FIELDS)[number];

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
      required: ['score', 'threshold', 'images', 'pixels', 'date', 'version'],
      properties: {
        score: nonEmpty,
        threshold: { type: 'number' },
        fpr: { type: 'number', minimum: 0, maximum: 1 },
        objective: { enum: ['component-f1', 'pixel-f1'] },
        value: { type: 'number' },
        dataset: { type: 'string' },
        images: { type: 'integer', minimum: 0 },
        pixels: { type: 'integer', minimum: 0 },
        date: nonEmpty,
        version: nonEmpty,
      },
    },
    unchecked: { type: 'array', uniqueItems: true, items: { enum: UNCHECKED_FIELDS } },
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
    text = (await readRegularFile(cardPath)).toString('utf8');
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
  const stat = await fs.stat(modelPath).catch(() => null);
  const problem = stat ? notRegular(stat) : 'does not exist';
  if (problem) throw new ModelCardError(`${cardPath}: model "${card.model}" (${modelPath}) ${problem}`);
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
  const bytes = await readRegularFile(modelPath).catch((err: Error) => {
    throw new ModelError(`${modelPath}: cannot read the model (${err.message})`, { cause: err });
  });
  const analysis = analyzeModel(bytes, { source: modelPath, modelDir: path.dirname(modelPath) });
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

/**
 * A starter card for `pgn card init`: the default card (what the model says: input name and size,
 * class count, logits output) with placeholder names, and the guessed fields listed as unchecked.
 * `cardDir` is where the card will live: the model path is written relative to it.
 */
export function starterModelCard(analysis: ModelAnalysis, modelPath: string, cardDir: string): ModelCard {
  const card = defaultModelCard(analysis, modelPath);
  const outputs = analysis.featuresAlreadyOutput && analysis.featureTensors.length === 1 ? { logits: analysis.logitsOutput, features: analysis.featureTensors[0]! } : { logits: analysis.logitsOutput };
  return {
    ...card,
    description: `starter card written by pgn card init from ${path.basename(modelPath)}: check the fields listed in "unchecked", then remove them from the list`,
    model: path.relative(cardDir, modelPath).split(path.sep).join('/'),
    outputs,
    unchecked: [...UNCHECKED_FIELDS],
  };
}

/** Warnings for the fields a card still lists as unchecked (pgn inspect prints them). */
export function uncheckedWarnings(card: ModelCard): string[] {
  const why: Record<UncheckedField, string> = {
    'input.scale': `scale ${card.input.scale} is a guess (pixels are divided by it before mean/std)`,
    'input.mean': `mean [${card.input.mean.join(', ')}] is a guess (ImageNet's)`,
    'input.std': `std [${card.input.std.join(', ')}] is a guess (ImageNet's)`,
    'input.channelOrder': `channel order "${card.input.channelOrder}" is a guess`,
    classes: `the ${card.classes.length} class names (and colours) are placeholders`,
  };
  return (card.unchecked ?? []).map((f) => `${f} unchecked: ${why[f]}; set it to what the model was trained with and remove "${f}" from "unchecked"`);
}

/** Writes a card as indented JSON with its colour and mean/std triples on one line each. */
export function formatModelCard(card: ModelCard): string {
  const json = JSON.stringify(card, null, 2);
  return `${json.replace(/\[\s*(-?[\d.e+-]+),\s*(-?[\d.e+-]+),\s*(-?[\d.e+-]+)\s*\]/g, '[$1, $2, $3]')}\n`;
}

/**
 * Makes a calibration the card's recommendation: sets `recommended` to its score and threshold and
 * records it under `calibration`, keeping everything else in the card file as it is.
 */
export async function recordCalibration(cardPath: string, record: CalibrationRecord): Promise<ModelCard> {
  if (!Number.isFinite(record.threshold)) {
    throw new RangeError(`the calibrated threshold is ${record.threshold}: every pixel would be flagged (fpr 1?), nothing to recommend`);
  }
  const { card } = await readCardFile(cardPath);
  const updated = parseModelCard({ ...card, recommended: { score: record.score, threshold: record.threshold }, calibration: record }, cardPath);
  await writeFileAtomic(cardPath, formatModelCard(updated));
  return updated;
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
