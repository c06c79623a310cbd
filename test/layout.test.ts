/**
 * The layout of src/ reads as the pipeline (src/index.ts): one folder per stage, each importing only
 * the folders before it, no import cycle between files, each folder saying in its index.ts what it
 * owns; and the package's entries (the `exports` map) load, from CommonJS and from ES modules.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const root = path.join(__dirname, '..');
const src = path.join(root, 'src');
/** The stages in pipeline order: a folder may import itself and the folders before it. */
const ORDER = ['common', 'addon', 'scoring', 'model', 'image', 'run', 'batch', 'worker', 'eval', 'serve', 'cli'];

/** Every .ts module of src/ (relative, no extension) → the src/ modules it imports (also `import type`). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const files = fs.readdirSync(src, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
  for (const file of files) {
    const text = fs.readFileSync(path.join(src, file), 'utf8');
    const deps = [...text.matchAll(/(?:from|import\()\s*'(\.[^']*)'/g)].map((m) => {
      const abs = path.resolve(path.dirname(path.join(src, file)), m[1]);
      const asFile = fs.existsSync(`${abs}.ts`) ? abs : path.join(abs, 'index');
      return path.relative(src, asFile).split(path.sep).join('/');
    });
    graph.set(file.replace(/\.ts$/, '').split(path.sep).join('/'), deps);
  }
  return graph;
}

/** A cycle of the graph as a list of nodes, or null. */
export function findCycle(graph: Map<string, string[]>): string[] | null {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string): string[] | null => {
    if (state.get(node) === 'done') return null;
    if (state.get(node) === 'open') return [...stack.slice(stack.indexOf(node)), node];
    state.set(node, 'open');
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    stack.pop();
    state.set(node, 'done');
    return null;
  };
  for (const node of graph.keys()) {
    const cycle = visit(node);
    if (cycle) return cycle;
  }
  return null;
}

const folder = (module: string): string => (module.includes('/') ? module.split('/')[0] : '');

test('the cycle finder finds a cycle and accepts a DAG', () => {
  expect(findCycle(new Map([['a', ['b']], ['b', ['c']], ['c', ['a']]]))).toEqual(['a', 'b', 'c', 'a']);
  expect(findCycle(new Map([['a', ['b', 'c']], ['b', ['c']], ['c', []]]))).toBeNull();
});

test('no import cycle between the modules of src/', () => {
  const graph = importGraph();
  expect(graph.size).toBeGreaterThan(30);
  expect(findCycle(graph)).toBeNull();
});

test('every module lives in a stage folder, and a folder imports only itself and the folders before it', () => {
  const graph = importGraph();
  const folders = fs.readdirSync(src, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  expect(folders.sort()).toEqual([...ORDER].sort());
  const wrong: string[] = [];
  for (const [module, deps] of graph) {
    if (module === 'index') continue; // the root entry gathers the stages
    expect(ORDER).toContain(folder(module));
    for (const dep of deps) if (ORDER.indexOf(folder(dep)) > ORDER.indexOf(folder(module))) wrong.push(`${module} → ${dep}`);
  }
  expect(wrong).toEqual([]);
});

test.each(ORDER)('src/%s/index.ts opens by saying what the folder owns', (name) => {
  const text = fs.readFileSync(path.join(src, name, 'index.ts'), 'utf8');
  expect(text).toMatch(new RegExp(`^(#!.*\\n)?/\\*\\*\\n \\* src/${name}/ owns `));
});

describe('package entries', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { exports: Record<string, string | { types: string; default: string }> };
  const entries = Object.entries(pkg.exports).filter(([, v]) => typeof v === 'object') as [string, { types: string; default: string }][];
  const names = (entry: string, kind: 'require' | 'import'): string[] => {
    const spec = JSON.stringify(`pgn-ood${entry.slice(1)}`);
    const code = kind === 'require'
      ? `console.log(JSON.stringify(Object.keys(require(${spec})).sort()))`
      : `const m = await import(${spec}); console.log(JSON.stringify(Object.keys(m).filter((k) => k !== 'default' && k !== '__esModule').sort()))`;
    const out = execFileSync(process.execPath, [...(kind === 'import' ? ['--input-type=module'] : []), '-e', code], { cwd: root, encoding: 'utf8' });
    return JSON.parse(out) as string[];
  };

  test.each(entries)('%s: built, typed, and the same names from require and import', (entry, target) => {
    expect(fs.existsSync(path.join(root, target.default))).toBe(true);
    expect(fs.existsSync(path.join(root, target.types))).toBe(true);
    const cjs = names(entry, 'require');
    expect(cjs.length).toBeGreaterThan(2); // pgn-ood/worker has three
    expect(names(entry, 'import')).toEqual(cjs);
  });

  test('the root holds the everyday API; internals stay off it', () => {
    const root_ = names('.', 'require');
    for (const name of ['Scorer', 'score', 'scoreImages', 'scoreStream', 'computeScores', 'upsample', 'findSegments', 'thresholdAtFpr', 'evaluate', 'backends', 'PgnError', 'ModelError', 'DEMO_MODEL'])
      expect(root_).toContain(name);
    for (const name of ['exposeFeatures', 'parseNpy', 'convOutputSize', 'PixelMetrics', 'toTensor'])
      expect(root_).not.toContain(name);
    expect(root_.length).toBeLessThan(40);
  });
});
