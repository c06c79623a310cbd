/**
 * Output files are written atomically: to a temporary sibling, then renamed over the target. Only
 * regular files are replaced that way: a symbolic link is followed (its target is written), a FIFO
 * or a character device (/dev/null, /dev/stdout) is written through, and a block device or a
 * directory is refused. The temporaries of this process are tracked, so that a signal handler can
 * remove them (removeLiveTemporaries) and a later run can remove those of a killed one
 * (removeStaleTemporaries).
 */
import fs from 'node:fs';
import path from 'node:path';
import { OutputError } from './errors';

let counter = 0;
/** Temporaries created by this process and not yet renamed or removed. */
const live = new Set<string>();

/** The hidden temporary sibling a write goes to before it is renamed over `file`. */
function tempPath(file: string): string {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${counter++}.tmp`);
  live.add(tmp);
  return tmp;
}

async function removeTemp(tmp: string): Promise<void> {
  await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
  live.delete(tmp);
}

async function renameTemp(tmp: string, file: string): Promise<void> {
  await fs.promises.rename(tmp, file);
  live.delete(tmp);
}

/**
 * Where a write to `file` goes: a regular file (or nothing yet) is replaced atomically at its real
 * path; a FIFO, socket or character device is written through (`direct`). A block device, a
 * directory or a dangling symbolic link is an OutputError.
 */
async function resolveTarget(file: string): Promise<{ path: string; direct: boolean }> {
  const link = await fs.promises.lstat(file).catch(() => undefined);
  if (!link) return { path: file, direct: false };
  const real = await fs.promises.realpath(file).catch(() => {
    throw new OutputError(`cannot write ${file}: it is a symbolic link to nothing (${fs.readlinkSync(file)})`);
  });
  const stat = await fs.promises.stat(real);
  if (stat.isFile()) return { path: real, direct: false };
  if (stat.isDirectory()) throw new OutputError(`cannot write ${file}: it is a directory`);
  if (stat.isBlockDevice()) throw new OutputError(`cannot write ${file}: it is a block device (refused, it would be overwritten)`);
  return { path: real, direct: true };
}

const failure = (file: string, err: unknown) =>
  err instanceof OutputError ? err : new OutputError(`cannot write ${file}: ${(err as Error).message}`, { cause: err });

export async function writeFileAtomic(file: string, data: Uint8Array | string): Promise<void> {
  let tmp: string | undefined;
  try {
    const target = await resolveTarget(file);
    if (target.direct) return await fs.promises.writeFile(target.path, data);
    tmp = tempPath(target.path);
    await fs.promises.writeFile(tmp, data);
    await renameTemp(tmp, target.path);
  } catch (err) {
    if (tmp) await removeTemp(tmp);
    throw failure(file, err);
  }
}

/** A file written piece by piece (e.g. a JSON report) that appears at its path only once complete. */
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
 * A FIFO or character device is written through: commit() only closes it.
 */
export async function openAtomic(file: string): Promise<AtomicWriter> {
  const target = await resolveTarget(file);
  const tmp = target.direct ? undefined : tempPath(target.path);
  const stream = fs.createWriteStream(tmp ?? target.path, { flags: tmp ? 'wx' : 'w' });
  let error: Error | null = null;
  stream.on('error', (err) => (error ??= err));
  await new Promise<void>((resolve, reject) => {
    stream.once('open', () => resolve());
    stream.once('error', (err) => reject(failure(file, err)));
  }).catch(async (err) => {
    if (tmp) await removeTemp(tmp);
    throw err;
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
    if (tmp) await removeTemp(tmp);
  };
  return {
    path: file,
    write(chunk) {
      if (error) throw failure(file, error);
      if (settled) throw new Error(`${file}: written after commit() or abort()`);
      stream.write(chunk);
    },
    async commit() {
      if (settled) return;
      settled = true;
      try {
        await close();
        if (error) throw error;
        if (tmp) await renameTemp(tmp, target.path);
      } catch (err) {
        await discard();
        throw failure(file, err);
      }
    },
    async abort() {
      if (settled) return;
      settled = true;
      await discard();
    },
  };
}

/** A file that only grows, line by line (a journal): each append is one write() call. */
export interface AppendWriter {
  readonly path: string;
  /** Appends at once (synchronously: once this returns, a killed process keeps the bytes). */
  append(chunk: string): void;
  /** fdatasync: the bytes appended so far survive a power loss. */
  sync(): Promise<void>;
  close(): Promise<void>;
}

/** Opens `file` for appending (created if missing; a FIFO or character device is written through). */
export async function openAppend(file: string): Promise<AppendWriter> {
  const target = await resolveTarget(file);
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(target.path, 'a');
  } catch (err) {
    throw failure(file, err);
  }
  const regular = !target.direct;
  return {
    path: file,
    append(chunk) {
      try {
        fs.writeSync(handle.fd, chunk);
      } catch (err) {
        throw failure(file, err);
      }
    },
    async sync() {
      if (regular) await handle.datasync().catch((err) => Promise.reject(failure(file, err)));
    },
    close: () => handle.close(),
  };
}

/** Cuts a regular file to its first `size` bytes (a journal's torn last line). */
export async function truncateFile(file: string, size: number): Promise<void> {
  await fs.promises.truncate(file, size).catch((err) => Promise.reject(failure(file, err)));
}

/** Removes the temporaries this process has open, synchronously: for a SIGINT/SIGTERM handler. */
export function removeLiveTemporaries(): void {
  for (const tmp of live) fs.rmSync(tmp, { force: true });
  live.clear();
}

/**
 * Removes the temporaries that a killed process left beside these targets (`.NAME.PID.N.tmp` for a
 * target NAME). Only the caller's own targets: another process writing other files into the same
 * folder is left alone. One readdir per folder.
 */
export async function removeStaleTemporaries(targets: Iterable<string>): Promise<number> {
  const byDir = new Map<string, Set<string>>();
  for (const t of targets) {
    const dir = path.dirname(t);
    if (!byDir.has(dir)) byDir.set(dir, new Set());
    byDir.get(dir)!.add(path.basename(t));
  }
  let removed = 0;
  for (const [dir, names] of byDir) {
    const entries = await fs.promises.readdir(dir).catch(() => [] as string[]);
    for (const entry of entries) {
      const m = /^\.(.+)\.\d+\.\d+\.tmp$/.exec(entry);
      const tmp = path.join(dir, entry);
      if (m && names.has(m[1]) && !live.has(tmp)) {
        await fs.promises.rm(tmp, { force: true });
        removed++;
      }
    }
  }
  return removed;
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
