/**
 * Command-line inputs → image files: files as given, folders' images (recursively), and globs,
 * from the arguments and from a list file (`--files-from`).
 */
import fs from 'node:fs';
import path from 'node:path';
import fg from 'fast-glob';
import { ImageError } from '../common/errors';

export const IMAGE_EXTENSIONS = ['png', 'jpg', 'jpeg', 'webp', 'tif', 'tiff', 'gif', 'avif', 'heic', 'bmp'];

function isImageFile(file: string): boolean {
  return IMAGE_EXTENSIONS.includes(path.extname(file).slice(1).toLowerCase());
}

/**
 * Expands, in order and without duplicates. A path that does not exist is kept (it then fails on
 * its own when decoded, and the run goes on); a folder or glob matching nothing is an ImageError.
 */
export async function expandInputs(patterns: string[]): Promise<string[]> {
  const seen = new Set<string>();
  const files: string[] = [];
  for (const pattern of patterns) {
    const stat = fs.statSync(pattern, { throwIfNoEntry: false });
    let found: string[];
    if (stat?.isFile()) found = [pattern];
    else if (stat?.isDirectory()) found = (await fg('**/*', { cwd: pattern, onlyFiles: true })).filter(isImageFile).sort().map((f) => path.join(pattern, f));
    else found = fg.isDynamicPattern(pattern) ? (await fg(pattern, { onlyFiles: true })).sort() : [pattern];
    if (found.length === 0) throw new ImageError(`no image found for "${pattern}" (${stat ? 'empty folder' : 'no file matches the glob'})`);
    for (const f of found) if (!seen.has(f)) seen.add(f), files.push(f);
  }
  return files;
}

/** A list larger than this is refused: a device such as /dev/zero would otherwise grow without end. */
export const MAX_INPUT_LIST_BYTES = 256 * 1024 * 1024;

/**
 * The lines of a list file, or of stdin for "-": one file, folder or glob per line, blank lines
 * skipped. Pipes are welcome (`--files-from <(find ...)`), so the read is bounded instead.
 */
export async function readInputList(source: string): Promise<string[]> {
  const name = source === '-' ? 'stdin' : source;
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    const stream = source === '-' ? process.stdin : fs.createReadStream(source);
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_INPUT_LIST_BYTES) {
        stream.destroy();
        throw new ImageError(`--files-from ${name}: more than ${MAX_INPUT_LIST_BYTES} bytes; not an input list`);
      }
      chunks.push(chunk);
    }
  } catch (err) {
    if (err instanceof ImageError) throw err;
    throw new ImageError(`--files-from ${name}: cannot read the input list (${(err as Error).message})`, { cause: err });
  }
  return Buffer.concat(chunks).toString('utf8').split(/\r?\n/).filter((line) => line.trim() !== '');
}

/**
 * The command line's inputs: the arguments, then the list's lines. No inputs at all is an
 * ImageError (the arguments are optional so that a list alone can be given).
 */
export async function commandLineInputs(args: string[], filesFrom?: string): Promise<string[]> {
  const patterns = [...args, ...(filesFrom !== undefined ? await readInputList(filesFrom) : [])];
  if (patterns.length === 0) throw new ImageError('no inputs: give image files, folders or globs, or --files-from FILE (- for stdin)');
  return expandInputs(patterns);
}
