/** Command-line inputs → image files: files as given, folders' images (recursively), and globs. */
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
