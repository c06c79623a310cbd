/**
 * src/model/ owns the model stage, the subpath entry `pgn-ood/model`: the ONNX protobuf (onnx.ts),
 * the graph surgery that finds the final 1x1 conv and exposes its input (graph-surgery.ts), the
 * model card (model-card.ts) and the ONNX Runtime session (session.ts).
 */
export { ModelSession, cudaAvailable, MAX_INTRA_OP_THREADS } from './session';
export type { ExecutionProvider, SessionOptions, SessionOutputs } from './session';
export { analyzeModel, exposeFeatures } from './graph-surgery';
export type { ModelAnalysis, SecondLayerAnalysis } from './graph-surgery';
export { loadModelCard, parseModelCard, checkCardAgainstModel, modelCardSchema, starterModelCard, recordCalibration, uncheckedWarnings, UNCHECKED_FIELDS } from './model-card';
export type { ModelCard, ModelCardInput, CalibrationRecord, UncheckedField } from './model-card';
