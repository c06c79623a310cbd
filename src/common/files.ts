/** Output files are written atomically: to a temporary sibling, then renamed over the target. */
import fs from 'node:fs';
import path from 'node:path';
import { OutputError } from './errors';

let counter = 0;

/** The hidden temporary sibling a write goes to before it is renamed over `file`. */
function tempPath(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${counter++}.tmp`);
}

export async function writeFileAtomic(file: string, data: Uint8Array | string): Promise<void> {
  const tmp = tempPath(file);
  try {
    await fs.promises.writeFile(tmp, data);
    await fs.promises.rename(tmp, file);
  } catch (err) {
    await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
    throw new OutputError(`cannot write ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/** A file written piece by piece (e.g. NDJSON lines) that appears at its path only once complete. */
export interface AtomicWriter {
  readonly path: string;
  /** Queues a chunk; a write error of an earlier chunk is thrown here (OutputError). */
  write(chunk: string | Uint8Array): void;
  /** Flushes, closes and renames the temporary file over the target. */
  commit(): Promise<void>;
  /** Discards the temporary file; the target is left as it was. A no-op after commit(). */
  abort(): Promise<void>;
}

/**
 * Opens a temporary sibling of `file` for streaming writes; commit() renames it over `file`. The
 * temporary file is created here, so a path that cannot be written is an OutputError before any work.
 */
export async function openAtomic(file: string): Promise<AtomicWriter> {
  const tmp = tempPath(file);
  const stream = fs.createWriteStream(tmp, { flags: 'wx' });
  let failure: Error | null = null;
  stream.on('error', (err) => (failure ??= err));
  const fail = (err: unknown) => new OutputError(`cannot write ${file}: ${(err as Error).message}`, { cause: err });
  await new Promise<void>((resolve, reject) => {
    stream.once('open', () => resolve());
    stream.once('error', (err) => reject(fail(err)));
  });
  let settled = false;
  // 'close' follows both a finished write and an error (autoClose), so waiting for it never hangs.
  const close = () =>
    new Promise<void>((resolve) => {
      if (stream.closed) return resolve();
      stream.once('close', () => resolve());
      stream.end();
    });
  const discard = async () => {
    stream.destroy();
    await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
  };
  return {
    path: file,
    write(chunk) {
      if (failure) throw fail(failure);
      if (settled) throw new Error(`${file}: written after commit() or abort()`);
      stream.write(chunk);
    },
    async commit() {
      if (settled) return;
      settled = true;
      try {
        await close();
        if (failure) throw failure;
        await fs.promises.rename(tmp, file);
      } catch (err) {
        await discard();
        throw fail(err);
      }
    },
    async abort() {
      if (settled) return;
      settled = true;
      await discard();
    },
  };
}

/** Creates the directory (and parents); a path that exists as a file or can't be created is an OutputError. */
export async function ensureDir(dir: string): Promise<void> {
  try {
    await fs.promises.mkdir(dir, { recursive: true });
    await fs.promises.access(dir, fs.constants.W_OK);
  } catch (err) {
    throw new OutputError(`output directory ${dir} cannot be created or written: ${(err as Error).message}`, { cause: err });
  }
}
