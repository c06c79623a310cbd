/** Output files are written atomically: to a temporary sibling, then renamed over the target. */
import fs from 'node:fs';
import path from 'node:path';
import { OutputError } from './errors';

let counter = 0;

export async function writeFileAtomic(file: string, data: Uint8Array | string): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${counter++}.tmp`);
  try {
    await fs.promises.writeFile(tmp, data);
    await fs.promises.rename(tmp, file);
  } catch (err) {
    await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
    throw new OutputError(`cannot write ${file}: ${(err as Error).message}`, { cause: err });
  }
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
