/**
 * Which build of the addon this process loads, and why (backends() reports it). In order:
 * 1. PGN_OOD_ADDON: a path, resolved against the working directory;
 * 2. a source build (build/Release: `npm run build`, `--build-from-source`, or no prebuild for the
 *    platform): what CI tests, so it wins over the prebuilt binaries;
 * 3. the binaries prebuilt into the package (node-gyp-build's layout, prebuilds/<platform>-<arch>/):
 *    the CUDA variant (cuda/ beside the CPU one) when a CUDA driver (libcuda.so.1) is installed,
 *    else the CPU build. Both carry every x86-64 instruction-set level (native/core/cpu_isa.cc).
 */
import fs from 'node:fs';
import path from 'node:path';
import { BackendError } from '../common/errors';

// node-gyp-build ships no types: path(dir) is its resolution (build/Release, then prebuilds/).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const nodeGypBuild = require('node-gyp-build') as { path(dir: string): string };

export type AddonOrigin = 'PGN_OOD_ADDON' | 'source build' | 'prebuilt';

export interface AddonChoice {
  /** Absolute path of the .node file. */
  path: string;
  origin: AddonOrigin;
  /** Why this build, in words (backends().addon.reason). */
  reason: string;
  /** What to load instead when this one fails to load (the CPU prebuild behind the CUDA one). */
  fallback?: AddonChoice;
}

/** What chooseAddon decides from; addonFacts() gathers them from the package and the machine. */
export interface AddonFacts {
  /** PGN_OOD_ADDON as set, undefined when unset. */
  override?: string;
  cwd: string;
  /** node-gyp-build's pick (build/Release first, then the matching prebuild), null when none. */
  cpu: { path: string; prebuilt: boolean } | null;
  /** The CUDA prebuild beside a CPU prebuild, when the package has one. */
  cuda: string | null;
  /** Where libcuda.so.1 (the CUDA driver's library) is, null when it is not installed. */
  driver: string | null;
  /** "<platform>-<arch>", for the messages. */
  target: string;
}

const isFile = (file: string): boolean => fs.statSync(file, { throwIfNoEntry: false })?.isFile() ?? false;

export function chooseAddon(facts: AddonFacts): AddonChoice {
  if (facts.override !== undefined) {
    const file = path.resolve(facts.cwd, facts.override);
    if (facts.override === '' || !isFile(file))
      throw new BackendError(`PGN_OOD_ADDON=${JSON.stringify(facts.override)}: no such file ${file} (a relative path is resolved against the working directory, ${facts.cwd}); unset it to load the installed build`);
    return { path: file, origin: 'PGN_OOD_ADDON', reason: 'PGN_OOD_ADDON is set' };
  }
  if (facts.cpu === null)
    throw new BackendError(`no build of the pgn-ood addon for ${facts.target}: no prebuilt binary matches this platform and there is no source build (build/Release); build one with \`npm rebuild pgn-ood --build-from-source\` (needs a C++17 compiler, make and Python 3)`);
  if (!facts.cpu.prebuilt)
    return { path: facts.cpu.path, origin: 'source build', reason: 'a source build (build/Release) comes before the prebuilt binaries' };
  const cpu = (reason: string): AddonChoice => ({ path: facts.cpu!.path, origin: 'prebuilt', reason });
  if (facts.cuda === null) return cpu(`no CUDA variant is prebuilt for ${facts.target}`);
  if (facts.driver === null) return cpu('no CUDA driver (libcuda.so.1) is installed');
  return {
    path: facts.cuda,
    origin: 'prebuilt',
    reason: `CUDA driver found at ${facts.driver}`,
    fallback: cpu(`the CUDA variant (driver at ${facts.driver}) failed to load`),
  };
}

/** Where libcuda.so.1 is, looked up as dlopen does (LD_LIBRARY_PATH, ld.so.cache, the default directories), the toolkit's stubs left out. */
export function findCudaDriver(env: NodeJS.ProcessEnv = process.env, ldCache = '/etc/ld.so.cache'): string | null {
  if (process.platform !== 'linux') return null;
  const candidates = (env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean).map((dir) => path.join(dir, 'libcuda.so.1'));
  // ld.so.cache holds the NUL-terminated paths of every library ldconfig found.
  const cache = fs.existsSync(ldCache) ? fs.readFileSync(ldCache, 'latin1') : '';
  for (const m of cache.matchAll(/\/[^\0]*\/libcuda\.so\.1(?=\0)/g)) candidates.push(m[0]);
  for (const dir of ['/lib64', '/usr/lib64', '/lib', '/usr/lib']) candidates.push(path.join(dir, 'libcuda.so.1'));
  return candidates.find((file) => !file.includes('/stubs/') && isFile(file)) ?? null;
}

/** The facts about the package at `root` and this machine. */
export function addonFacts(root: string, env: NodeJS.ProcessEnv = process.env): AddonFacts {
  let cpuPath: string | null = null;
  try {
    cpuPath = nodeGypBuild.path(root);
  } catch {
    // no build and no matching prebuild: chooseAddon says so
  }
  const prebuilt = cpuPath !== null && !cpuPath.startsWith(path.join(root, 'build') + path.sep);
  const cuda = prebuilt && cpuPath !== null ? path.join(path.dirname(cpuPath), 'cuda', path.basename(cpuPath)) : null;
  return {
    override: env.PGN_OOD_ADDON,
    cwd: process.cwd(),
    cpu: cpuPath === null ? null : { path: cpuPath, prebuilt },
    cuda: cuda !== null && isFile(cuda) ? cuda : null,
    driver: findCudaDriver(env),
    target: `${process.platform}-${process.arch}`,
  };
}
