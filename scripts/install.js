#!/usr/bin/env node
// npm's install step for pgn-ood. Keeps the prebuilt binary when one matches this platform and loads
// (prebuilds/, node-gyp-build's layout, made by scripts/prebuild.js at pack time); else, and on
// `npm install --build-from-source`, builds from source with node-gyp, first naming any tool it
// lacks. In a clone there are no prebuilds, so `npm ci` builds the sources CI tests.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');

/** Why the prebuilt binary cannot be used, or null when it loads. */
function prebuildProblem() {
  let file;
  try {
    file = require('node-gyp-build').path(root);
  } catch {
    return `no prebuilt binary matches ${process.platform}-${process.arch}`;
  }
  try {
    require(file);
    return null;
  } catch (err) {
    return `the prebuilt binary ${file} does not load (${err.message.split('\n')[0]})`;
  }
}

const executable = (file) => {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
};
const onPath = (name) =>
  path.isAbsolute(name) ? executable(name) : (process.env.PATH ?? '').split(path.delimiter).some((dir) => dir && executable(path.join(dir, name)));

/** The tools node-gyp needs on Unix that are missing (Windows: node-gyp names Visual Studio itself). */
function missingTools() {
  if (process.platform === 'win32') return [];
  const missing = [];
  const compilers = process.env.CXX ? [process.env.CXX.split(' ')[0]] : ['g++', 'c++', 'clang++'];
  if (!compilers.some(onPath)) missing.push(`a C++17 compiler (${compilers.join(', ')})`);
  if (!onPath('make')) missing.push('make');
  const pythons = [process.env.npm_config_python, process.env.PYTHON, 'python3', 'python'].filter(Boolean);
  if (!pythons.some(onPath)) missing.push('Python 3 (python3)');
  return missing;
}

function main() {
  const request = process.env.npm_config_build_from_source;
  const fromSource = request === 'true' || request === 'pgn-ood';
  const reason = fromSource ? '--build-from-source was given' : prebuildProblem();
  if (reason === null) return 0;
  const missing = missingTools();
  if (missing.length > 0) {
    console.error(`pgn-ood: building the native addon from source because ${reason}, but this system lacks ${missing.join(', ')}. ` +
      'Install them (Debian/Ubuntu: apt-get install g++ make python3) and run `npm rebuild pgn-ood`, or install on linux-x64 (glibc), which has a prebuilt binary.');
    return 1;
  }
  console.error(`pgn-ood: building the native addon from source (${reason})`);
  // npm hands its own node-gyp to install scripts (npm_config_node_gyp); node-gyp on PATH otherwise.
  const gyp = process.env.npm_config_node_gyp;
  const run = gyp
    ? spawnSync(process.execPath, [gyp, 'rebuild'], { cwd: root, stdio: 'inherit' })
    : spawnSync('node-gyp', ['rebuild'], { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
  if (run.error) console.error(`pgn-ood: cannot run node-gyp: ${run.error.message}`);
  return run.status ?? 1;
}

process.exitCode = main();
