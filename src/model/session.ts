/**
 * One onnxruntime-node session over the patched model: each run returns the final conv's output
 * (logits at feature resolution, before any upsampling in the model) and its input (the
 * penultimate features), which is all the scores need.
 */
import { existsSync, promises as fs } from 'fs';
import * as ort from 'onnxruntime-node';
import * as path from 'path';
import { BackendError, ModelError } from '../common/errors';
import { analyzeModel, exposeFeatures, ModelAnalysis } from './graph-surgery';
import { checkCardAgainstModel, loadModelCard, ModelCard } from './model-card';
import { halfToFloat, onnx } from './onnx';

export type ExecutionProvider = 'cpu' | 'cuda';

export interface SessionOptions {
  /** Default: CUDA when onnxruntime-node has its CUDA provider installed, else CPU. */
  executionProviders?: ExecutionProvider[];
  intraOpThreads?: number;
  /**
   * Also fetch the input x of the second-to-last conv (pgn2-* scores); the model must end in
   * conv → [BatchNormalization] → Relu/LeakyRelu/Clip/PRelu → final 1x1 conv (else ModelError).
   */
  secondLayer?: boolean;
}

export interface SessionOutputs {
  /** The final conv's output z [N,C,h,w] at feature resolution. */
  logits: Float32Array;
  logitsDims: number[];
  /** The final conv's input φ [N,F,h,w]. */
  features: Float32Array;
  featuresDims: number[];
  /** With SessionOptions.secondLayer: the second-to-last conv's input x [N,Cin,H',W']. */
  convInput?: Float32Array;
  convInputDims?: number[];
}

/**
 * Whether onnxruntime-node can run CUDA. `bundled: false` means the binding was built with CUDA
 * support but the provider library is a separate download (onnxruntime-node's install script,
 * --onnxruntime-node-install=cuda12) placed beside the binding: look for it there.
 */
export function cudaAvailable(): boolean {
  const cuda = ort.listSupportedBackends().find((b) => b.name === 'cuda');
  if (!cuda) return false;
  if (cuda.bundled) return true;
  const bindingDir = path.join(path.dirname(require.resolve('onnxruntime-node')), '..', 'bin', 'napi-v6', process.platform, process.arch);
  const library = process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so';
  return existsSync(path.join(bindingDir, library));
}

function chooseProviders(requested: ExecutionProvider[] | undefined): { providers: ExecutionProvider[]; auto: boolean } {
  if (requested === undefined) return { providers: cudaAvailable() ? ['cuda', 'cpu'] : ['cpu'], auto: true };
  if (requested.length === 0) throw new RangeError('executionProviders must not be empty');
  const unknown = requested.find((p) => p !== 'cpu' && p !== 'cuda');
  if (unknown !== undefined) throw new RangeError(`unknown execution provider "${unknown}" (expected "cpu" or "cuda")`);
  if (requested.includes('cuda') && !cudaAvailable()) {
    throw new BackendError('CUDA was requested but onnxruntime-node has no CUDA execution provider installed (reinstall it with --onnxruntime-node-install=cuda12) or use "cpu"');
  }
  return { providers: [...requested], auto: false };
}

async function createSession(bytes: Uint8Array, providers: ExecutionProvider[], threads: number | undefined, source: string): Promise<ort.InferenceSession> {
  // No spin-waiting of ONNX Runtime's threads after a run: the native scores run right after
  // inference on the same cores, and spinning threads would take them.
  const options: ort.InferenceSession.SessionOptions = { executionProviders: providers, extra: { session: { intra_op: { allow_spinning: '0' } } } };
  if (threads !== undefined) options.intraOpNumThreads = threads;
  try {
    return await ort.InferenceSession.create(bytes, options);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    if (providers.includes('cuda')) throw new BackendError(`the CUDA execution provider failed to start (${reason})`, { cause: err });
    throw new ModelError(`${source}: onnxruntime cannot load the model (${reason})`, { cause: err });
  }
}

/** ORT hands float16 out as raw bits (Uint16Array), or as Float16Array where the runtime has one. */
function toFloat32(t: ort.Tensor, name: string): Float32Array {
  if (t.type === 'float32') return t.data as Float32Array;
  if (t.type === 'float16' && t.data instanceof Uint16Array) return Float32Array.from(t.data, halfToFloat);
  if (t.type === 'float16' || t.type === 'float64') return Float32Array.from(t.data as ArrayLike<number>);
  throw new ModelError(`output "${name}" has type ${t.type}; a float tensor was expected`);
}

function checkInput(input: Float32Array, dims: readonly number[]): void {
  if (!(input instanceof Float32Array)) throw new TypeError('input must be a Float32Array');
  if (dims.length !== 4 || dims.some((d) => !Number.isInteger(d) || d < 1) || dims[1] !== 3) {
    throw new RangeError(`dims must be [N,3,H,W] with positive integers, got [${dims.join(',')}]`);
  }
  const size = dims.reduce((a, b) => a * b, 1);
  if (input.length !== size) throw new RangeError(`input has ${input.length} values but dims [${dims.join(',')}] need ${size}`);
}

/**
 * What pgn-ood can feed and score, whatever the card says: an image batch [N,3,H,W] in, and at least
 * two classes out (the softmax of one logit is 1 everywhere: a sigmoid head is not a softmax head).
 */
function checkModelShapes(analysis: ModelAnalysis, source: string): void {
  const { name, shape } = analysis.input;
  const dims = `[${shape.join(',')}]`;
  if (shape.length !== 4) throw new ModelError(`${source}: the model's input "${name}" has shape ${dims}; pgn-ood feeds images as [N,3,H,W]`);
  const channels = shape[1];
  if (typeof channels === 'number' && channels > 0 && channels !== 3) {
    throw new ModelError(`${source}: the model's input "${name}" has ${channels} channel${channels === 1 ? '' : 's'}; pgn-ood feeds RGB images as [N,3,H,W]`);
  }
  if (analysis.numClasses < 2) {
    throw new ModelError(`${source}: the final conv "${analysis.conv.name}" has ${analysis.numClasses} output channel: the scores need the logits of at least 2 classes (softmax over classes)`);
  }
}

export class ModelSession {
  readonly kernel: Float32Array;
  readonly bias: Float32Array | null;
  readonly numClasses: number;
  readonly featureChannels: number;

  private constructor(
    private readonly session: ort.InferenceSession,
    readonly card: ModelCard,
    /** The card file, or null for a default card derived from the model. */
    readonly cardPath: string | null,
    readonly modelPath: string,
    readonly analysis: ModelAnalysis,
    /** The providers the session was created with. */
    readonly executionProviders: ExecutionProvider[],
  ) {
    this.kernel = analysis.kernel;
    this.bias = analysis.bias;
    this.numClasses = analysis.numClasses;
    this.featureChannels = analysis.featureChannels;
  }

  /** Loads the card and the model (a model directory, a card file, or an .onnx file) and prepares the session. */
  static async create(modelPathOrCardDir: string, opts: SessionOptions = {}): Promise<ModelSession> {
    const threads = opts.intraOpThreads;
    if (threads !== undefined && (!Number.isInteger(threads) || threads < 1)) {
      throw new RangeError(`intraOpThreads must be a positive integer, got ${threads}`);
    }
    const { providers, auto } = chooseProviders(opts.executionProviders);
    const { card, cardPath, modelPath } = await loadModelCard(modelPathOrCardDir);
    const bytes = await fs.readFile(modelPath).catch((err: Error) => {
      throw new ModelError(`${modelPath}: cannot read the model (${err.message})`, { cause: err });
    });
    const analysis = analyzeModel(bytes, { logitsOutput: card.outputs?.logits, featuresOutput: card.outputs?.features, source: modelPath, secondLayer: opts.secondLayer });
    checkModelShapes(analysis, modelPath);
    checkCardAgainstModel(card, analysis, cardPath ?? modelPath);
    if (analysis.input.elemType !== onnx.TensorProto.DataType.FLOAT) {
      const type = onnx.TensorProto.DataType[analysis.input.elemType] ?? analysis.input.elemType;
      throw new ModelError(`${modelPath}: the model's input "${analysis.input.name}" is ${type}; pgn-ood feeds float32 images`);
    }
    const patched = exposeFeatures(bytes, analysis);
    let used = providers;
    let session: ort.InferenceSession;
    try {
      session = await createSession(patched, providers, threads, modelPath);
    } catch (err) {
      // CUDA chosen by default (not asked for) but unusable, e.g. no GPU: CPU still works.
      if (!(auto && err instanceof BackendError)) throw err;
      used = ['cpu'];
      session = await createSession(patched, used, threads, modelPath);
    }
    return new ModelSession(session, card, cardPath, modelPath, analysis, used);
  }

  /** Runs a normalized NCHW batch; only the conv's output and input are fetched. */
  async run(input: Float32Array, dims: readonly [number, number, number, number]): Promise<SessionOutputs> {
    checkInput(input, dims);
    const { conv, featuresTensor, secondLayer } = this.analysis;
    const feeds = { [this.analysis.input.name]: new ort.Tensor('float32', input, [...dims]) };
    const x = secondLayer && !secondLayer.inputIsModelInput ? secondLayer.inputTensor : null;
    let out: ort.InferenceSession.ReturnType;
    try {
      out = await this.session.run(feeds, [conv.output, featuresTensor, ...(x ? [x] : [])]);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      throw new ModelError(`${this.modelPath}: inference failed for input [${dims.join(',')}] (${reason})`, { cause: err });
    }
    const logits = out[conv.output]!;
    const features = out[featuresTensor]!;
    return {
      logits: toFloat32(logits, conv.output),
      logitsDims: [...logits.dims],
      features: toFloat32(features, featuresTensor),
      featuresDims: [...features.dims],
      ...(secondLayer ? {
        convInput: x ? toFloat32(out[x]!, x) : input,
        convInputDims: x ? [...out[x]!.dims] : [...dims],
      } : {}),
    };
  }

  private released?: Promise<void>;

  /** Frees the ONNX Runtime session. A second call is a no-op (it waits for the first). */
  dispose(): Promise<void> {
    return (this.released ??= this.session.release());
  }
}
