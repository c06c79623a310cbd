/**
 * Which build of the addon loads (src/addon/select.ts): PGN_OOD_ADDON, then a source build, then the
 * prebuilt binaries, the CUDA variant only where a CUDA driver is installed, and the CPU build when
 * the CUDA one fails to load. There is no GPU here, so a CUDA driver is an empty libcuda.so.1 on
 * LD_LIBRARY_PATH: the choice depends on the file being there, and the CUDA variant, loaded beside
 * a library that is no driver, must still load and report no device.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chooseAddon, findCudaDriver, type AddonFacts } from '../src/addon/select';
import { BackendError } from '../src/common/errors';
import { backends, computeScores } from '../src/scoring/scores';

const root = path.join(__dirname, '..');
const cpuBuild = path.join(root, 'build', 'Release', 'pgn_ood.node');
const cudaBuild = path.join(root, 'build-cuda', 'Release', 'pgn_ood.node');
const tuple = `${process.platform}-${process.arch}`;
let tmp: string;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pgn-select-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const write = (file: string, data: string | Buffer = ''): string => {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, data);
  return file;
};

const facts = (over: Partial<AddonFacts> = {}): AddonFacts => ({
  cwd: tmp,
  cpu: { path: '/pkg/prebuilds/linux-x64/pgn-ood.napi.glibc.node', prebuilt: true },
  cuda: '/pkg/prebuilds/linux-x64/cuda/pgn-ood.napi.glibc.node',
  driver: null,
  target: 'linux-x64',
  ...over,
});

describe('chooseAddon', () => {
  test('PGN_OOD_ADDON: a relative path is resolved against the working directory and wins', () => {
    write(path.join(tmp, 'build-cuda', 'Release', 'pgn_ood.node'));
    const choice = chooseAddon(facts({ override: 'build-cuda/Release/pgn_ood.node', driver: '/usr/lib/libcuda.so.1' }));
    expect(choice).toEqual({ path: path.join(tmp, 'build-cuda', 'Release', 'pgn_ood.node'), origin: 'PGN_OOD_ADDON', reason: 'PGN_OOD_ADDON is set' });
  });

  test.each(['missing/pgn_ood.node', '', 'build-cuda'])('PGN_OOD_ADDON=%j that is no file is a BackendError naming the path it tried', (value) => {
    const run = () => chooseAddon(facts({ override: value }));
    expect(run).toThrow(BackendError);
    expect(run).toThrow(`PGN_OOD_ADDON=${JSON.stringify(value)}: no such file ${path.resolve(tmp, value)}`);
    expect(run).toThrow('resolved against the working directory');
  });

  test('a source build comes before the prebuilt binaries, even with a CUDA driver', () => {
    const choice = chooseAddon(facts({ cpu: { path: '/pkg/build/Release/pgn_ood.node', prebuilt: false }, driver: '/usr/lib/libcuda.so.1' }));
    expect(choice.path).toBe('/pkg/build/Release/pgn_ood.node');
    expect(choice.origin).toBe('source build');
    expect(choice.fallback).toBeUndefined();
  });

  test('no CUDA driver: the CPU prebuild, saying why', () => {
    const choice = chooseAddon(facts());
    expect(choice).toEqual({ path: facts().cpu!.path, origin: 'prebuilt', reason: 'no CUDA driver (libcuda.so.1) is installed' });
  });

  test('a CUDA driver but no CUDA prebuild for the platform: the CPU prebuild', () => {
    const choice = chooseAddon(facts({ cuda: null, driver: '/usr/lib/libcuda.so.1' }));
    expect(choice.path).toBe(facts().cpu!.path);
    expect(choice.reason).toBe('no CUDA variant is prebuilt for linux-x64');
  });

  test('a CUDA driver and a CUDA prebuild: the CUDA variant, with the CPU prebuild behind it', () => {
    const choice = chooseAddon(facts({ driver: '/usr/lib/libcuda.so.1' }));
    expect(choice.path).toBe(facts().cuda);
    expect(choice.reason).toBe('CUDA driver found at /usr/lib/libcuda.so.1');
    expect(choice.fallback?.path).toBe(facts().cpu!.path);
    expect(choice.fallback?.reason).toMatch(/^the CUDA variant \(driver at \/usr\/lib\/libcuda\.so\.1\) failed to load/);
  });

  test('no build at all: a BackendError saying how to build one', () => {
    const run = () => chooseAddon(facts({ cpu: null, cuda: null, target: 'linux-riscv64' }));
    expect(run).toThrow(BackendError);
    expect(run).toThrow(/no build of the pgn-ood addon for linux-riscv64: .*npm rebuild pgn-ood --build-from-source/);
  });
});

test('asking a build without CUDA for backend "cuda" is a BackendError that says which build loaded and why', async () => {
  const { addon, cuda } = backends();
  if (cuda.compiled) return console.warn('addon-select: this build has CUDA; the no-CUDA message is not tested');
  const logits = { data: new Float32Array(8), dims: [1, 2, 2, 2] };
  await expect(computeScores(logits, undefined, { scores: ['entropy'], backend: 'cuda' })).rejects.toThrow(BackendError);
  await expect(computeScores(logits, undefined, { scores: ['entropy'], backend: 'cuda' })).rejects.toThrow(`backend "cuda" is not compiled into this build (${addon.reason}): the prebuilt CUDA variant loads where a CUDA driver is installed`);
});

describe('findCudaDriver', () => {
  const linux = process.platform === 'linux' ? test : test.skip;

  linux('finds libcuda.so.1 on LD_LIBRARY_PATH, then in ld.so.cache, and never a stub', () => {
    const onPath = write(path.join(tmp, 'ldpath', 'libcuda.so.1'));
    const cached = write(path.join(tmp, 'cached', 'libcuda.so.1'));
    const stub = write(path.join(tmp, 'cuda', 'stubs', 'libcuda.so.1'));
    // ld.so.cache: NUL-terminated library names and paths among binary fields.
    const cache = write(path.join(tmp, 'ld.so.cache'), Buffer.concat([
      Buffer.from([0x01, 0x00, 0xff]), Buffer.from(`libcuda.so.1\0${stub}\0libcuda.so.1\0${cached}\0libm.so.6\0/lib/libm.so.6\0`, 'latin1'),
    ]));
    const none = path.join(tmp, 'no-such-cache');
    expect(findCudaDriver({ LD_LIBRARY_PATH: `/nonexistent:${path.dirname(onPath)}` }, cache)).toBe(onPath);
    expect(findCudaDriver({}, cache)).toBe(cached);
    expect(findCudaDriver({ LD_LIBRARY_PATH: path.dirname(stub) }, none)).not.toBe(stub);
    expect(findCudaDriver({ LD_LIBRARY_PATH: path.dirname(stub) }, cache)).toBe(cached);
  });
});

/**
 * The whole chain in a child process, on a package laid out as npm installs it: dist/ and the
 * prebuilt binaries, no build/ (copies of this checkout's builds stand for the prebuilds).
 */
describe('loading the prebuilt binaries', () => {
  let pkg: string;
  const driverDir = () => path.join(tmp, 'driver');

  beforeAll(() => {
    pkg = path.join(tmp, 'pkg');
    fs.cpSync(path.join(root, 'dist'), path.join(pkg, 'dist'), { recursive: true });
    fs.copyFileSync(path.join(root, 'package.json'), path.join(pkg, 'package.json'));
    fs.symlinkSync(path.join(root, 'node_modules'), path.join(pkg, 'node_modules'));
    fs.mkdirSync(path.join(pkg, 'prebuilds', tuple, 'cuda'), { recursive: true });
    fs.copyFileSync(cpuBuild, path.join(pkg, 'prebuilds', tuple, 'pgn-ood.napi.glibc.node'));
    write(path.join(driverDir(), 'libcuda.so.1'));
  });

  const backendsIn = (env: NodeJS.ProcessEnv) => {
    const { LD_LIBRARY_PATH: _, PGN_OOD_ADDON: __, ...rest } = process.env;
    const out = execFileSync(process.execPath, ['-e', `console.log(JSON.stringify(require(${JSON.stringify(pkg)}).backends()))`], {
      cwd: tmp, env: { ...rest, ...env }, encoding: 'utf8',
    });
    return JSON.parse(out) as { cuda: { compiled: boolean; devices: number }; addon: { variant: string; path: string; origin: string; reason: string } };
  };
  const cudaPrebuild = () => path.join(pkg, 'prebuilds', tuple, 'cuda', 'pgn-ood.napi.glibc.node');
  const noDriverHere = findCudaDriver() === null;
  const here = noDriverHere ? test : test.skip;
  if (!noDriverHere) console.warn('addon-select: this machine has a CUDA driver; the no-driver cases are skipped');

  here('no CUDA driver: the CPU prebuild loads, and backends() says which and why', () => {
    write(cudaPrebuild(), 'not an addon');
    const b = backendsIn({});
    expect(b.addon).toEqual({ variant: 'cpu', path: path.join(pkg, 'prebuilds', tuple, 'pgn-ood.napi.glibc.node'), origin: 'prebuilt', reason: 'no CUDA driver (libcuda.so.1) is installed' });
    expect(b.cuda.compiled).toBe(false);
  });

  here('a CUDA driver, but the CUDA variant does not load: the CPU prebuild, with the loader error as the reason', () => {
    write(cudaPrebuild(), 'not an addon');
    const b = backendsIn({ LD_LIBRARY_PATH: driverDir() });
    expect(b.addon.variant).toBe('cpu');
    expect(b.addon.path).toBe(path.join(pkg, 'prebuilds', tuple, 'pgn-ood.napi.glibc.node'));
    expect(b.addon.reason).toBe(`the CUDA variant (driver at ${path.join(driverDir(), 'libcuda.so.1')}) failed to load: ${cudaPrebuild()}: file too short`);
  });

  const withCuda = noDriverHere && fs.existsSync(cudaBuild) ? test : test.skip;
  if (!fs.existsSync(cudaBuild)) console.warn(`addon-select: ${cudaBuild} not built (npm run build:cuda); the CUDA variant's load is not tested`);

  withCuda('a CUDA driver and the CUDA variant: it loads, and with no usable GPU reports no device', () => {
    fs.copyFileSync(cudaBuild, cudaPrebuild());
    const b = backendsIn({ LD_LIBRARY_PATH: driverDir() });
    expect(b.addon).toEqual({ variant: 'cuda', path: cudaPrebuild(), origin: 'prebuilt', reason: `CUDA driver found at ${path.join(driverDir(), 'libcuda.so.1')}` });
    expect(b.cuda).toEqual({ compiled: true, devices: 0 });
    // Without the driver the same package loads its CPU build.
    expect(backendsIn({}).addon.variant).toBe('cpu');
  });

  test('a build that does not load is a BackendError naming it, where it came from and the loader error', () => {
    const broken = write(path.join(tmp, 'broken', 'pgn_ood.node'), 'not an addon');
    const { LD_LIBRARY_PATH: _, ...rest } = process.env;
    const out = execFileSync(process.execPath, ['-e', `try { require(${JSON.stringify(pkg)}).backends() } catch (e) { console.log(e.name, e.code, e.message) }`], {
      cwd: tmp, env: { ...rest, PGN_OOD_ADDON: broken }, encoding: 'utf8',
    });
    expect(out.trim()).toBe(`BackendError PGN_BACKEND cannot load the pgn-ood addon ${broken} (PGN_OOD_ADDON): ${broken}: file too short`);
  });

  test('PGN_OOD_ADDON relative to the working directory overrides the prebuilds; a missing one is one clear CLI line', () => {
    const b = backendsIn({ PGN_OOD_ADDON: path.relative(tmp, cpuBuild) });
    expect(b.addon).toMatchObject({ path: cpuBuild, origin: 'PGN_OOD_ADDON' });
    let stderr = '';
    let status = 0;
    try {
      execFileSync(process.execPath, [path.join(pkg, 'dist', 'cli', 'index.js'), 'score', path.join(root, 'models/demo/eval/images/demo_000.jpg')], {
        cwd: pkg, env: { ...process.env, PGN_OOD_ADDON: 'build-cuda/Release/pgn_ood.node' }, encoding: 'utf8', stdio: 'pipe',
      });
    } catch (err) {
      ({ stderr, status } = err as { stderr: string; status: number });
    }
    expect(status).toBe(2);
    expect(stderr).toBe(`pgn: PGN_BACKEND: PGN_OOD_ADDON="build-cuda/Release/pgn_ood.node": no such file ${path.join(pkg, 'build-cuda/Release/pgn_ood.node')} (a relative path is resolved against the working directory, ${pkg}); unset it to load the installed build\n`);
  });
});
