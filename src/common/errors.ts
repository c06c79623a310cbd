/**
 * Typed errors of pgn-ood. Argument mistakes in API calls are the built-in TypeError / RangeError
 * (as Node's own APIs do); everything about files, models, images and data sets is a PgnError
 * subclass with a stable `code`, so callers can branch on `instanceof` or on `code`.
 */
export class PgnError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The ONNX model cannot be used: not ONNX, truncated, or no usable final 1x1 convolution. */
export class ModelError extends PgnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PGN_MODEL', message, options);
  }
}

/** The model card (model.json) is missing, malformed or contradicts the model. */
export class ModelCardError extends PgnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PGN_MODEL_CARD', message, options);
  }
}

/** An image cannot be decoded or is not acceptable (corrupt, unsupported, too large, empty). */
export class ImageError extends PgnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PGN_IMAGE', message, options);
  }
}

/** A tensor file (.npy) is malformed or holds an unsupported dtype, layout or shape. */
export class TensorFileError extends PgnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PGN_TENSOR_FILE', message, options);
  }
}

/** A data set folder does not follow the benchmark layout (images/, labels_masks/). */
export class DatasetError extends PgnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PGN_DATASET', message, options);
  }
}

/** A requested compute backend (e.g. CUDA) is not compiled in or has no device. */
export class BackendError extends PgnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PGN_BACKEND', message, options);
  }
}

/** An output cannot be written (directory missing or not writable). */
export class OutputError extends PgnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PGN_OUTPUT', message, options);
  }
}

/**
 * A scorer (or `pgn serve`) has as many images in flight and calls queued as it was allowed
 * (maxInFlight, maxQueue): the call is refused at once rather than queued without bound. Retry later.
 */
export class OverloadedError extends PgnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PGN_OVERLOADED', message, options);
  }
}

/** A journal (`pgn score --ndjson`) cannot be continued or merged: exists without --resume, malformed, incomplete. */
export class JournalError extends PgnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PGN_JOURNAL', message, options);
  }
}
