/**
 * One onnxruntime-node session over the patched model: each run returns the final conv's output
 * (logits at feature resolution, before any upsampling in the model) and its input (the
 * penultimate features), which is all the scores need.
 */
import { existsSync } from 'fs';
import * as ort from 'onnxruntime-node';
import { availableParallelism } from 'os';
import * as path from 'path';
import { BackendError, ModelError } from '../common/errors';
import { readRegularFile } from '../common/read-file';
import { analyzeModel, exposeFeatures, ModelAnalysis } from './graph-surgery';
import { checkCardAgainstModel, loadModelCard, ModelCard } from './model-card';
import { InferenceThread, ThreadTensor } from './inference-thread';
import { floatToHalf, halfToFloat, onnx } from './onnx';

export type ExecutionProvider = 'cpu' | 'cuda';

/**
 * More intra-op threads than a few per core only oversubscribe it; thousands hang ONNX Runtime, and
 * one it fails to start (the system's thread limit) aborts the process with an uncaught C++ exception.
 */
export const MAX_INTRA_OP_THREADS = Math.max(64, 4 * availableParallelism());

export interface SessionOptions {
  /** Default: CUDA when onnxruntime-node has its CUDA provider installed, else CPU. */
  executionProviders?: ExecutionProvider[];
  /**
   * 1 to MAX_INTRA_OP_THREADS. Default: the cores this process may run on (os.availableParallelism).
   * ONNX Runtime's own default (one per physical core, by its detection) ran a single thread on our
   * 2-core VM: ESPNetv2 at 2 MP took 351-419 ms per image, 219 ms with 2 threads.
   */
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
  /** ms ONNX Runtime ran (on its thread: without the wait behind runs posted earlier). */
  inferenceMs: number;
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

async function createSession(bytes: Uint8Array, providers: ExecutionProvider[], threads: number | undefined, source: string): Promise<InferenceThread> {
  // No spin-waiting of ONNX Runtime's threads after a run: the native scores run right after
  // inference on the same cores, and spinning threads would take them. The patched model is handed
  // over as bytes, so ONNX Runtime is told where its external data files are (the model's folder;
  // analyzeModel has checked that every location stays inside it).
  const session = { intra_op: { allow_spinning: '0' }, model_external_initializers_file_folder_path: path.dirname(source) };
  const options: ort.InferenceSession.SessionOptions = { executionProviders: providers, extra: { session } };
  options.intraOpNumThreads = threads ?? Math.min(availableParallelism(), MAX_INTRA_OP_THREADS);
  // ONNX Runtime 1.30's telemetry, on by default on Linux, runs a recursive std::regex over
  // /proc/self/cmdline at the first session: ~25 KB of arguments (`pgn score photos/*.jpg`)
  // overflow the stack and the process dies of SIGSEGV. Off, unless the caller chose otherwise.
  process.env.ORT_DISABLE_TELEMETRY ??= '1';
  try {
    return await InferenceThread.start(bytes, options);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    if (providers.includes('cuda')) throw new BackendError(`the CUDA execution provider failed to start (${reason})`, { cause: err });
    throw new ModelError(`${source}: onnxruntime cannot load the model (${reason})`, { cause: err });
  }
}

/** ORT hands float16 out as raw bits (Uint16Array), or as Float16Array where the runtime has one. */
function toFloat32(t: ThreadTensor, name: string): Float32Array {
  if (t.type === 'float32') return t.data as Float32Array;
  if (t.type === 'float16' && t.data instanceof Uint16Array) return Float32Array.from(t.data, halfToFloat);
  if (t.type === 'float16' || t.type === 'float64') return Float32Array.from(t.data as ArrayLike<number>);
  throw new ModelError(`output "${name}" has type ${t.type}; a float tensor was expected`);
}

/** The batch as the model takes it: float32, or converted to float16 at the boundary (the scores stay float32). */
function inputTensor(input: Float32Array, dims: readonly number[], elemType: number): ThreadTensor {
  if (elemType !== onnx.TensorProto.DataType.FLOAT16) return { type: 'float32', data: input, dims: [...dims] };
  return { type: 'float16', data: Uint16Array.from(input, floatToHalf), dims: [...dims] };
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
    private readonly thread: InferenceThread,
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
    if (threads !== undefined && (!Number.isInteger(threads) || threads < 1 || threads > MAX_INTRA_OP_THREADS)) {
      throw new RangeError(`intraOpThreads must be an integer from 1 to ${MAX_INTRA_OP_THREADS}, got ${threads}`);
    }
    const { providers, auto } = chooseProviders(opts.executionProviders);
    const { card, cardPath, modelPath } = await loadModelCard(modelPathOrCardDir);
    const bytes = await readRegularFile(modelPath).catch((err: Error) => {
      throw new ModelError(`${modelPath}: cannot read the model (${err.message})`, { cause: err });
    });
    const analysis = analyzeModel(bytes, { logitsOutput: card.outputs?.logits, featuresOutput: card.outputs?.features, source: modelPath, modelDir: path.dirname(modelPath), secondLayer: opts.secondLayer });
    checkModelShapes(analysis, modelPath);
    checkCardAgainstModel(card, analysis, cardPath ?? modelPath);
    const { FLOAT, FLOAT16 } = onnx.TensorProto.DataType;
    if (analysis.input.elemType !== FLOAT && analysis.input.elemType !== FLOAT16) {
      const type = onnx.TensorProto.DataType[analysis.input.elemType] ?? analysis.input.elemType;
      throw new ModelError(`${modelPath}: the model's input "${analysis.input.name}" is ${type}; pgn-ood feeds float32 or float16 images`);
    }
    const patched = exposeFeatures(bytes, analysis);
    let used = providers;
    let session: InferenceThread;
    try {
      session = await createSession(patched.slice(), providers, threads, modelPath); // its bytes move to the thread
    } catch (err) {
      // CUDA chosen by default (not asked for) but unusable, e.g. no GPU: CPU still works.
      if (!(auto && err instanceof BackendError)) throw err;
      used = ['cpu'];
      session = await createSession(patched, used, threads, modelPath);
    }
    return new ModelSession(session, card, cardPath, modelPath, analysis, used);
  }

  /**
   * The model's fixed batch size, or null when its batch dimension is symbolic. Batches of another
   * size run in chunks of that size, the last one padded with zeros.
   */
  get fixedBatch(): number | null {
    const n = this.analysis.input.shape[0];
    return typeof n === 'number' && n > 0 ? n : null;
  }

  /**
   * Runs a normalized NCHW batch on the session's own thread; only the conv's output and input are
   * fetched. With `transfer: true` the input's buffer moves to that thread (the caller's array is
   * left detached; the returned `convInput` may be it); by default the input is copied.
   */
  async run(input: Float32Array, dims: readonly [number, number, number, number], opts: { transfer?: boolean } = {}): Promise<SessionOutputs> {
    checkInput(input, dims);
    const fixed = this.fixedBatch;
    if (fixed === null || fixed === dims[0]) {
      const give = opts.transfer === true && input.byteLength === input.buffer.byteLength;
      const out = await this.runOnce(give ? input : input.slice(), dims);
      // x is the model input itself: the caller's array, when it was only copied
      return give || !this.analysis.secondLayer?.inputIsModelInput ? out : { ...out, convInput: input };
    }
    const per = input.length / dims[0];
    const chunks: SessionOutputs[] = [];
    for (let start = 0; start < dims[0]; start += fixed) {
      const padded = new Float32Array(fixed * per);
      padded.set(input.subarray(start * per, Math.min(dims[0], start + fixed) * per));
      chunks.push(await this.runOnce(padded, [fixed, dims[1], dims[2], dims[3]]));
    }
    return joinChunks(chunks, dims[0]);
  }

  private async runOnce(input: Float32Array, dims: readonly [number, number, number, number]): Promise<SessionOutputs> {
    const { logitsTensor, featureTensors, secondLayer } = this.analysis;
    const name = this.analysis.input.name;
    const x = secondLayer && !secondLayer.inputIsModelInput ? secondLayer.inputTensor : null;
    let out: Record<string, ThreadTensor>;
    let fed: Float32Array;
    let inferenceMs: number;
    try {
      const feed = inputTensor(input, dims, this.analysis.input.elemType);
      // x may be the model's input itself: float32 as fed comes back (a float16 model is fed a
      // converted copy, and the caller's array stays in place)
      const back = secondLayer?.inputIsModelInput === true && feed.type === 'float32';
      const ran = await this.thread.run({ [name]: feed }, [logitsTensor, ...featureTensors, ...(x ? [x] : [])], back);
      out = ran.result;
      inferenceMs = ran.ms;
      fed = back ? (ran.feeds![name]!.data as Float32Array) : input;
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      throw new ModelError(`${this.modelPath}: inference failed for input [${dims.join(',')}] (${reason})`, { cause: err });
    }
    const logits = out[logitsTensor]!;
    const features = this.features(featureTensors.map((name) => ({ name, tensor: out[name]! })));
    return {
      logits: toFloat32(logits, logitsTensor),
      logitsDims: [...logits.dims],
      ...features,
      inferenceMs,
      ...(secondLayer ? {
        convInput: x ? toFloat32(out[x]!, x) : fed,
        convInputDims: x ? [...out[x]!.dims] : [...dims],
      } : {}),
    };
  }

  /**
   * φ [N,F,h,w]: the one features tensor, or a summed head's branch inputs concatenated over channels
   * (they must share N, h and w: one resolution), checked against K's F.
   */
  private features(parts: { name: string; tensor: ThreadTensor }[]): { features: Float32Array; featuresDims: number[] } {
    const F = this.featureChannels;
    const names = parts.map((p) => `"${p.name}"`).join(', ');
    const shapes = parts.map((p) => `[${p.tensor.dims.join(',')}]`).join(', ');
    const [first] = parts;
    const [N, , h, w] = first!.tensor.dims;
    const ok = parts.every((p) => p.tensor.dims.length === 4 && p.tensor.dims[0] === N && p.tensor.dims[2] === h && p.tensor.dims[3] === w)
      && parts.reduce((a, p) => a + p.tensor.dims[1]!, 0) === F;
    if (!ok) throw new ModelError(`${this.modelPath}: the features ${names} came out as ${shapes}, but the final conv's kernel takes ${F} channels ([N,${F},h,w] expected${parts.length > 1 ? ', the branches at one resolution' : ''})`);
    if (parts.length === 1) return { features: toFloat32(first!.tensor, first!.name), featuresDims: [...first!.tensor.dims] };
    const plane = h! * w!;
    const features = new Float32Array(N! * F * plane);
    let channel = 0;
    for (const p of parts) {
      const data = toFloat32(p.tensor, p.name);
      const Fb = p.tensor.dims[1]!;
      for (let n = 0; n < N!; n++) features.set(data.subarray(n * Fb * plane, (n + 1) * Fb * plane), (n * F + channel) * plane);
      channel += Fb;
    }
    return { features, featuresDims: [N!, F, h!, w!] };
  }

  private released?: Promise<void>;

  /** Stops the inference thread and frees its session. A second call is a no-op (it waits for the first). */
  dispose(): Promise<void> {
    return (this.released ??= this.thread.close());
  }
}

/** The first n images of chunked outputs, as one batch. */
function joinChunks(chunks: SessionOutputs[], n: number): SessionOutputs {
  const join = (pick: (o: SessionOutputs) => [Float32Array, number[]] | undefined): [Float32Array, number[]] | undefined => {
    const parts = chunks.map(pick);
    if (!parts[0]) return undefined;
    const [, dims0] = parts[0];
    const per = parts[0][0].length / dims0[0]!;
    const data = new Float32Array(n * per);
    parts.forEach((p, k) => data.set(p![0].subarray(0, Math.min(dims0[0]!, n - k * dims0[0]!) * per), k * dims0[0]! * per));
    return [data, [n, ...dims0.slice(1)]];
  };
  const [logits, logitsDims] = join((o) => [o.logits, o.logitsDims])!;
  const [features, featuresDims] = join((o) => [o.features, o.featuresDims])!;
  const conv = join((o) => (o.convInput ? [o.convInput, o.convInputDims!] : undefined));
  const inferenceMs = chunks.reduce((sum, c) => sum + c.inferenceMs, 0);
  return { logits, logitsDims, features, featuresDims, inferenceMs, ...(conv ? { convInput: conv[0], convInputDims: conv[1] } : {}) };
}
