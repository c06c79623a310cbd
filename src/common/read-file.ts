/**
 * Input files are read only when they are regular files: a character device (/dev/zero, /dev/urandom)
 * would be read without end until the process is killed, and a FIFO would block for ever.
 */
import fs from 'node:fs';

function kind(stat: fs.Stats): string {
  if (stat.isDirectory()) return 'a directory';
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  if (stat.isSocket()) return 'a socket';
  return 'not a file';
}

/** The message for what is not a regular file ("is a FIFO, not a regular file"), or null for a regular one. */
export function notRegular(stat: fs.Stats): string | null {
  return stat.isFile() ? null : `is ${kind(stat)}, not a regular file`;
}

/**
 * Reads a whole regular file (symlinks followed). Anything else is refused with an Error whose
 * message says what it is; callers wrap it in their own PgnError. The file is opened non-blocking
 * so that opening a FIFO does not wait for a writer before it can be refused.
 */
export async function readRegularFile(file: string): Promise<Buffer> {
  const handle = await fs.promises.open(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  try {
    const problem = notRegular(await handle.stat());
    if (problem) throw new Error(problem);
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}
