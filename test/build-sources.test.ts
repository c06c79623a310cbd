/** binding.gyp (npm install) and CMakeLists.txt (cmake-js, CUDA) must compile the same C++ sources. */
import fs from 'node:fs';
import path from 'node:path';

const root = path.join(__dirname, '..');

function gypSources(): string[] {
  const gyp = JSON.parse(fs.readFileSync(path.join(root, 'binding.gyp'), 'utf8')) as { targets: { sources: string[] }[] };
  return gyp.targets[0].sources;
}

function cmakeList(name: string): string[] {
  const text = fs.readFileSync(path.join(root, 'CMakeLists.txt'), 'utf8');
  const m = new RegExp(`set\\(${name}\\s+([^)]*)\\)`).exec(text);
  if (!m) throw new Error(`CMakeLists.txt has no set(${name} ...)`);
  return m[1].split(/\s+/).filter((s) => s !== '');
}

function filesUnder(dir: string, ext: string): string[] {
  return fs.readdirSync(path.join(root, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith(ext))
    .map((f) => path.posix.join(dir, f.split(path.sep).join('/')));
}

test('both builds list the same sources, and every source file is listed', () => {
  expect([...gypSources()].sort()).toEqual([...cmakeList('PGN_SOURCES')].sort());
  expect([...gypSources()].sort()).toEqual(filesUnder('native', '.cc').sort());
  expect([...cmakeList('PGN_CUDA_SOURCES')].sort()).toEqual(filesUnder('native', '.cu').sort());
});
