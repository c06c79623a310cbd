#!/usr/bin/env node
// `npm pack` / `npm publish` (prepack): the prebuilt binaries, made from the sources being packed,
// into node-gyp-build's layout:
//   prebuilds/<platform>-<arch>/pgn-ood.napi.<libc>.node       the CPU build (node-gyp, build/)
//   prebuilds/<platform>-<arch>/cuda/pgn-ood.napi.<libc>.node  the CUDA variant (cmake-js, build-cuda/)
// Both builds are incremental (make's dependency tracking), so in CI, after `npm ci` and
// `npm run build:cuda`, the binaries packed are the ones the tests ran against, and never older
// than the sources. N-API: one binary per platform serves every Node.js ≥ 20; the CPU passes pick
// AVX-512 / AVX2 / baseline at run time. PGN_PREBUILD_CUDA=0 skips the CUDA variant, =1 requires
// it; by default it is built wherever nvcc is on PATH.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
const onPath = (name) => (process.env.PATH ?? '').split(path.delimiter).some((dir) => dir && fs.existsSync(path.join(dir, name)));
const bin = (name) => path.join(root, 'node_modules', '.bin', name);

/** Copies a build into the prebuilds/ folder, stripped of its symbols (the size users download). */
function place(built, dest) {
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  fs.copyFileSync(built, dest);
  if (process.platform === 'linux') run('strip', ['--strip-all', dest]);
  console.error(`prebuild: ${path.relative(root, dest)} (${(fs.statSync(dest).size / 2 ** 20).toFixed(1)} MiB)`);
}

function main() {
  const libc = process.platform === 'linux' ? (fs.existsSync('/etc/alpine-release') ? '.musl' : '.glibc') : '';
  const name = `pgn-ood.napi${libc}.node`;
  const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  fs.rmSync(path.join(root, 'prebuilds'), { recursive: true, force: true });

  if (!fs.existsSync(path.join(root, 'build', 'config.gypi'))) run(bin('node-gyp'), ['configure']);
  run(bin('node-gyp'), ['build']);
  place(path.join(root, 'build', 'Release', 'pgn_ood.node'), path.join(dir, name));

  const cuda = process.env.PGN_PREBUILD_CUDA ?? (onPath('nvcc') ? '1' : '0');
  if (cuda === '0') {
    console.error('prebuild: no CUDA variant (nvcc is not on PATH, or PGN_PREBUILD_CUDA=0)');
    return;
  }
  run(bin('cmake-js'), ['build', '--out', 'build-cuda', '--CDPGN_CUDA=ON']);
  place(path.join(root, 'build-cuda', 'Release', 'pgn_ood.node'), path.join(dir, 'cuda', name));
}

main();
