/** Output names of a batch: unique per input, mirroring the inputs' folders. */
import path from 'node:path';

/** The deepest folder holding every one of these absolute folders. */
function commonFolder(dirs: string[]): string {
  let common = dirs[0].split(path.sep);
  for (const dir of dirs) {
    const parts = dir.split(path.sep);
    let k = 0;
    while (k < common.length && k < parts.length && common[k] === parts[k]) k++;
    common = common.slice(0, k);
  }
  return common.join(path.sep) || path.sep;
}

/**
 * Each input's output stem, relative to the output folder: its path below the inputs' common
 * folder, without the extension (`a/x.jpg` → `a/x`), or with it where inputs of one folder share a
 * stem (`x.jpg`, `x.png` → `x.jpg`, `x.png`). A function of the whole input list only, so every
 * shard and every resumed run names an input's outputs the same way.
 */
export function outputStems(files: readonly string[]): Map<string, string> {
  const stems = new Map<string, string>();
  if (files.length === 0) return stems;
  const abs = files.map((f) => path.resolve(f));
  const root = commonFolder(abs.map((f) => path.dirname(f)));
  const names = files.map((f, i) => ({ file: f, dir: path.relative(root, path.dirname(abs[i])), base: path.basename(f), name: path.parse(f).name }));
  // A shared name falls back to the full file name, unique in its folder; repeat, as a full name
  // can equal another file's stem (`x.jpg` beside `x.jpg.png`).
  for (let clash = true; clash; ) {
    const count = new Map<string, number>();
    for (const n of names) count.set(path.join(n.dir, n.name), (count.get(path.join(n.dir, n.name)) ?? 0) + 1);
    clash = false;
    for (const n of names)
      if (count.get(path.join(n.dir, n.name))! > 1 && n.name !== n.base) (n.name = n.base), (clash = true);
  }
  for (const n of names) stems.set(n.file, path.join(n.dir, n.name));
  return stems;
}
