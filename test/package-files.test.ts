/**
 * What `npm pack` puts in the package (`files` in package.json): what runs and what the source
 * fallback compiles, nothing else (no tests, fixtures, benchmarks and their peers, source maps,
 * CUDA sources or leftovers of deleted modules), within a size budget. The prebuilt binaries are
 * made at pack time (prepack), so this dry run, which skips the scripts, lists everything else;
 * test/install.test.ts packs for real and checks the binaries.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const root = path.join(__dirname, '..');

interface PackResult {
  size: number;
  unpackedSize: number;
  entryCount: number;
  files: { path: string; size: number }[];
}

let pack: PackResult;
let files: string[];

beforeAll(() => {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  pack = (JSON.parse(out) as PackResult[])[0];
  // Binaries left in prebuilds/ by an earlier `npm pack` are checked by the install test.
  files = pack.files.map((f) => f.path).filter((f) => !f.startsWith('prebuilds/'));
});

test('only the runtime, the install script and the sources of the source build', () => {
  const allowed = [/^package\.json$/, /^README\.md$/, /^LICENSE$/, /^binding\.gyp$/, /^scripts\/install\.js$/,
    /^dist\/.+\.(js|d\.ts)$/, /^native\/(core|binding)\/[^/]+\.(cc|h)$/, /^models\/demo\/model\.(onnx|json)$/];
  expect(files.filter((f) => !allowed.some((re) => re.test(f)))).toEqual([]);
  for (const needed of ['package.json', 'binding.gyp', 'scripts/install.js', 'dist/index.js', 'dist/index.d.ts', 'dist/cli/index.js', 'models/demo/model.onnx', 'models/demo/model.json'])
    expect(files).toContain(needed);
});

test('every source that binding.gyp compiles is packed, with the headers they include', () => {
  const gyp = JSON.parse(fs.readFileSync(path.join(root, 'binding.gyp'), 'utf8')) as { targets: { sources: string[] }[] };
  const sources = gyp.targets[0].sources;
  expect(sources.length).toBeGreaterThan(10);
  for (const source of sources) expect(files).toContain(source);
  // The CUDA headers are included only under PGN_WITH_CUDA, which the source build leaves off.
  const cpuText = (file: string) => fs.readFileSync(path.join(root, file), 'utf8').replace(/#ifdef PGN_WITH_CUDA[\s\S]*?#endif/g, '');
  const headers = (file: string) => [...cpuText(file).matchAll(/#include "([^"]+)"/g)].map((m) => path.posix.normalize(path.posix.join(path.posix.dirname(file), m[1])));
  const unresolved = files.filter((f) => /\.(cc|h)$/.test(f)).flatMap(headers).filter((h) => !files.includes(h));
  expect(unresolved).toEqual([]);
});

test('dist/ holds only modules of src/ (no leftovers of deleted ones)', () => {
  const orphans = files.filter((f) => f.startsWith('dist/')).map((f) => f.replace(/^dist\//, 'src/').replace(/(\.d)?\.ts$|\.js$/, '.ts')).filter((f) => !fs.existsSync(path.join(root, f)));
  expect(orphans).toEqual([]);
});

test('packing makes the prebuilt binaries, and installing keeps them or builds from source', () => {
  const scripts = (JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
  expect(scripts.prepack).toBe('node scripts/prebuild.js');
  expect(scripts.install).toBe('node scripts/install.js');
});

test('packed size and file count stay small', () => {
  const sizes = pack.files.filter((f) => !f.path.startsWith('prebuilds/')).reduce((a, f) => a + f.size, 0);
  console.log(`npm pack without prebuilds: ${files.length} files, ${(sizes / 1e6).toFixed(2)} MB unpacked`);
  expect(files.length).toBeLessThan(200);
  // The demo model is 1.35 MB of it.
  expect(sizes).toBeLessThan(2.5e6);
});
