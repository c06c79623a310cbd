/**
 * Installing the package as a user does, on a machine without a compiler: `npm pack`, with its
 * prepack step making the prebuilt binaries from these sources (scripts/prebuild.js), then `npm install <tarball>` into
 * a fresh project whose PATH holds only node, npm, npx and sh (no compiler, make or Python), from
 * the warm npm cache. Then `npx pgn score` writes its outputs, the TypeScript types resolve from a
 * CommonJS and an ES-module consumer, and `--build-from-source` fails naming the missing tools.
 * onnxruntime-node's download of its CUDA provider (from NuGet, not the npm registry) is skipped.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findCudaDriver } from '../src/addon/select';

const root = path.join(__dirname, '..');
const tuple = `${process.platform}-${process.arch}`;
const prebuild = `prebuilds/${tuple}/pgn-ood.napi.glibc.node`;
const demoImage = path.join(root, 'models', 'demo', 'eval', 'images', 'demo_000.jpg');
const supported = tuple === 'linux-x64';
if (!supported) console.warn(`install test skipped: prebuilds are made for linux-x64, this is ${tuple}`);
const maybe = supported ? describe : describe.skip;
// npm install and tsc on a loaded 2-core machine: minutes, not the default 2.
jest.setTimeout(600_000);

/** Where a command is on the PATH of this process. */
const which = (name: string): string => execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim();

maybe('install from the packed tarball without a compiler', () => {
  let tmp: string;
  let project: string;
  let env: NodeJS.ProcessEnv;
  let tarball: string;
  let packed: { size: number; entryCount: number; files: { path: string; size: number }[] };

  const run = (cmd: string, args: string[]) => spawnSync(cmd, args, { cwd: project, env, encoding: 'utf8', timeout: 600_000 });

  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pgn-install-'));
    // npm pack's prepack step, then the pack without scripts: its `prepare` would rewrite dist/
    // under the test files running beside this one (`npm test` built it first).
    execFileSync(process.execPath, ['scripts/prebuild.js'], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
    const out = execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', tmp], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    packed = (JSON.parse(out.slice(out.indexOf('['))) as (typeof packed & { filename: string })[])[0];
    tarball = path.join(tmp, (packed as unknown as { filename: string }).filename);

    // A PATH with node, npm, npx and sh only.
    const bin = path.join(tmp, 'bin');
    fs.mkdirSync(bin);
    fs.symlinkSync(process.execPath, path.join(bin, 'node'));
    for (const tool of ['npm', 'npx', 'sh']) fs.symlinkSync(which(tool), path.join(bin, tool));
    env = { PATH: bin, HOME: os.homedir(), ONNXRUNTIME_NODE_INSTALL: 'skip' };
    project = path.join(tmp, 'project');
    fs.mkdirSync(project);
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
  }, 1_800_000);
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  test('the tarball carries the prebuilt binary (and the CUDA variant where nvcc is), within its size budget', () => {
    const files = packed.files.map((f) => f.path);
    expect(files).toContain(prebuild);
    const cuda = files.includes(`prebuilds/${tuple}/cuda/pgn-ood.napi.glibc.node`);
    let nvcc = true;
    try {
      which('nvcc');
    } catch {
      nvcc = false;
    }
    expect(cuda).toBe(nvcc);
    const size = fs.statSync(tarball).size;
    console.log(`npm pack: ${packed.entryCount} files, ${(size / 1e6).toFixed(2)} MB packed (CUDA variant: ${cuda})`);
    expect(size).toBe(packed.size);
    expect(size).toBeLessThan(cuda ? 40e6 : 4e6);
  });

  test('the PATH has no compiler, make or Python', () => {
    const found = run('sh', ['-c', 'for t in cc c++ g++ gcc clang clang++ make python3 python nvcc; do command -v $t; done; true']);
    expect(found.stdout).toBe('');
  });

  test('npm install <tarball> uses the prebuilt binary and compiles nothing', () => {
    const started = Date.now();
    const install = run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball]);
    const seconds = (Date.now() - started) / 1000;
    console.log(`npm install <tarball>, fresh project, warm cache, no compiler: ${seconds.toFixed(1)} s`);
    expect(install.stderr).not.toMatch(/npm error/);
    expect(install.status).toBe(0);
    const installed = path.join(project, 'node_modules', 'pgn-ood');
    expect(fs.existsSync(path.join(installed, prebuild))).toBe(true);
    expect(fs.existsSync(path.join(installed, 'build'))).toBe(false);
  });

  test('backends() says the prebuilt binary loaded, and why', () => {
    const out = run('node', ['-e', "console.log(JSON.stringify(require('pgn-ood').backends()))"]);
    expect(out.stderr).toBe('');
    const addon = (JSON.parse(out.stdout) as { addon: { variant: string; origin: string; reason: string; path: string } }).addon;
    expect(addon.origin).toBe('prebuilt');
    if (findCudaDriver() === null) {
      expect(addon).toMatchObject({ variant: 'cpu', reason: 'no CUDA driver (libcuda.so.1) is installed' });
      expect(addon.path).toBe(path.join(fs.realpathSync(project), 'node_modules', 'pgn-ood', prebuild));
    }
  });

  test('npx pgn score on a demo image writes its outputs', () => {
    const out = run('npx', ['pgn', 'score', demoImage, '--out', 'pgn-out']);
    expect(out.stderr).not.toMatch(/pgn: |Error/); // its progress line only
    expect(out.status).toBe(0);
    const line = JSON.parse(out.stdout.trim()) as { width: number; height: number };
    expect(line.width).toBeGreaterThan(0);
    const written = fs.readdirSync(path.join(project, 'pgn-out')).sort();
    expect(written).toEqual(expect.arrayContaining(['demo_000.overlay.png', 'demo_000.prediction.png']));
    expect(written.some((f) => /^demo_000\..+\.npy$/.test(f))).toBe(true);
  });

  test('the types resolve from a CommonJS and an ES-module TypeScript consumer, and both run', () => {
    const code = (load: string) => `${load}
const b: { cpu: true; addon: { variant: 'cpu' | 'cuda' } } = backends();
const kinds: readonly string[] = SCORE_KINDS;
const demo: string = DEMO_MODEL;
console.log(b.addon.variant, kinds.length > 0, typeof demo, typeof parseNpy);
`;
    fs.writeFileSync(path.join(project, 'cjs.cts'), code("import { backends, DEMO_MODEL } from 'pgn-ood';\nimport { parseNpy } from 'pgn-ood/npy';\nimport { SCORE_KINDS } from 'pgn-ood/scoring';"));
    fs.writeFileSync(path.join(project, 'esm.mts'), code("import { backends, DEMO_MODEL } from 'pgn-ood';\nimport { parseNpy } from 'pgn-ood/npy';\nimport { SCORE_KINDS } from 'pgn-ood/scoring';"));
    // A wrong use must fail: the types are pgn-ood's, not `any`.
    fs.writeFileSync(path.join(project, 'wrong.mts'), "import { backends } from 'pgn-ood';\nconst n: number = backends().addon.reason;\nconsole.log(n);\n");
    const tsconfig = (files: string[]) => JSON.stringify({
      compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, outDir: 'out', types: ['node'], typeRoots: [path.join(root, 'node_modules', '@types')] },
      files,
    });
    const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    fs.writeFileSync(path.join(project, 'tsconfig.json'), tsconfig(['cjs.cts', 'esm.mts']));
    const ok = run('node', [tsc, '-p', '.']);
    expect(ok.stdout).toBe('');
    expect(ok.status).toBe(0);
    for (const file of ['out/cjs.cjs', 'out/esm.mjs']) {
      const out = run('node', [file]);
      expect(out.stderr).toBe('');
      expect(out.stdout.trim()).toMatch(/^(cpu|cuda) true string function$/);
    }
    fs.writeFileSync(path.join(project, 'tsconfig.json'), tsconfig(['wrong.mts']));
    const wrong = run('node', [tsc, '-p', '.']);
    expect(wrong.status).not.toBe(0);
    expect(wrong.stdout).toMatch(/wrong\.mts\(2,7\): error TS2322: Type 'string' is not assignable to type 'number'/);
  });

  test('--build-from-source without a compiler fails, naming what is missing', () => {
    const out = run('npm', ['rebuild', 'pgn-ood', '--build-from-source']);
    expect(out.status).not.toBe(0);
    expect(out.stderr).toContain('pgn-ood: building the native addon from source because --build-from-source was given, but this system lacks a C++17 compiler (g++, c++, clang++), make, Python 3 (python3)');
  });
});
