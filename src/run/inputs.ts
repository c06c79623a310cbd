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
 * A folder's image files, recursively, sorted; hidden entries skipped. Symlinked folders are
 * followed, but each real folder only once, so that a symlink loop ends (one loop scored an image
 * 41 times, two hung with memory rising).
 */
async function folderImages(root: string): Promise<string[]> {
  const seen = new Set<string>();
  const files: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    let entries: fs.Dirent[];
    try {
      const real = await fs.promises.realpath(dir);
      if (seen.has(real)) return;
      seen.add(real);
      entries = await fs.promises.readdir(dir, { withFileTypes: true });
    } catch (err) {
      throw new ImageError(`${dir}: cannot read the folder (${(err as Error).message})`, { cause: err });
    }
    for (const entry of entries.filter((e) => !e.name.startsWith('.'))) {
      const file = path.join(dir, entry.name);
      const kind = entry.isSymbolicLink() ? await fs.promises.stat(file).catch(() => null) : entry; // null: a dangling link
      if (kind?.isDirectory()) await walk(file);
      else if (kind?.isFile() && isImageFile(file)) files.push(file);
    }
  };
  await walk(root);
  return files.sort();
}

/**
 * A glob's files, sorted. Symlinked folders are not descended into (as bash's `**`), so a loop
 * cannot make it endless; symlinked files are kept.
 */
async function globFiles(pattern: string): Promise<string[]> {
  const matches = await fg(pattern, { onlyFiles: false, followSymbolicLinks: false });
  const kinds = await Promise.all(matches.map((m) => fs.promises.stat(m).catch(() => null)));
  return matches.filter((_, i) => kinds[i]?.isFile()).sort();
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
    else if (stat?.isDirectory()) found = await folderImages(pattern);
    else found = fg.isDynamicPattern(pattern) ? await globFiles(pattern) : [pattern];
    if (found.length === 0) throw new ImageError(`no image found for "${pattern}" (${stat ? 'empty folder' : 'no file matches the glob'})`);
    for (const f of found) if (!seen.has(f)) seen.add(f), files.push(f);
  }
  return files;
}

/** A list larger than this is refused: a device such as /dev/zero would otherwise grow without end. */
const MAX_INPUT_LIST_BYTES = 256 * 1024 * 1024;

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
