#!/usr/bin/env bash
# npm run test:asan — the addon built with AddressSanitizer + UndefinedBehaviorSanitizer (gcc's
# libasan / libubsan) into build-asan/, and the native-facing tests run against it.
#
# Node itself is not built with ASan, so the ASan runtime is preloaded (LD_PRELOAD) and leak
# detection is off (node and V8 keep their allocations until exit, and every stack runs through
# node's own frames, so suppressions cannot tell ours apart): leaks are scripts/valgrind.sh's and
# test/leaks.test.ts's job. Any ASan report (out-of-bounds, use-after-free, double free) or UBSan
# report (overflow, bad shift, misaligned access, float→int overflow, ...) aborts the process, so the
# test run fails.
#
#   scripts/test-asan.sh                 build (if the sources changed) and run the tests
#   scripts/test-asan.sh test/foo.ts     run only these test files
#   PGN_ASAN_REBUILD=1 ...               build from scratch
#   PGN_FUZZ_ITERATIONS=100000 ...       a longer fuzz
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "$(uname -s)" != Linux ]]; then
  echo "test:asan: Linux with gcc only" >&2
  exit 1
fi

CXX=${CXX:-g++}
LIBASAN=$("$CXX" -print-file-name=libasan.so)
LIBUBSAN=$("$CXX" -print-file-name=libubsan.so)
if [[ ! -e "$LIBASAN" || ! -e "$LIBUBSAN" ]]; then
  echo "test:asan: $CXX has no libasan/libubsan; on Debian/Ubuntu: apt-get install -y libasan8 libubsan1 (they come with g++)" >&2
  exit 1
fi
# The runtime the compiler links against, resolved to the real shared object for LD_PRELOAD.
LIBASAN=$(readlink -f "$LIBASAN")

OUT=build-asan
# No vptr check: the V8 objects the binding holds (the shared_ptr of an ArrayBuffer's backing store,
# native/binding/pinned_memory.cc) come from node, built without RTTI, so UBSan cannot tell their type.
FLAGS="-fsanitize=address,undefined,float-cast-overflow -fno-sanitize=vptr -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1"
STAMP="$OUT/.sources.sha1"
SUM=$( (echo "$FLAGS"; cat CMakeLists.txt native/*/*.h native/*/*.cc) | sha1sum | cut -d' ' -f1)

start=$(date +%s)
if [[ "${PGN_ASAN_REBUILD:-0}" == 1 || ! -f "$OUT/Release/pgn_ood.node" || "$(cat "$STAMP" 2>/dev/null)" != "$SUM" ]]; then
  echo "test:asan: building the addon with ASan + UBSan into $OUT/"
  npx cmake-js rebuild --out "$OUT" \
    --CDCMAKE_CXX_FLAGS_RELEASE="$FLAGS" \
    --CDCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined,float-cast-overflow" >"$OUT.log" 2>&1 \
    || { tail -40 "$OUT.log" >&2; exit 1; }
  echo "$SUM" >"$STAMP"
fi
built=$(date +%s)
# ldd's output taken whole: `ldd | grep -q` can kill ldd with SIGPIPE, which pipefail reports as failure.
if [[ "$(ldd "$OUT/Release/pgn_ood.node")" != *libasan* ]]; then
  echo "test:asan: $OUT/Release/pgn_ood.node is not linked against libasan" >&2
  exit 1
fi

# The tests of everything that reaches native code; the CLI and model tests only add ONNX Runtime
# and sharp, which are not instrumented.
TESTS=("$@")
if [[ ${#TESTS[@]} -eq 0 ]]; then
  TESTS=(test/scores.test.ts test/upsample.test.ts test/summary.test.ts test/binding-fuzz.test.ts test/fuzz-all.test.ts
         test/components.test.ts test/segments.test.ts test/pixel-metrics.test.ts test/instance-metrics.test.ts)
  [[ -f test/second-layer.test.ts ]] && TESTS+=(test/second-layer.test.ts)
fi

npx tsc -p tsconfig.build.json
export PGN_OOD_ADDON="$PWD/$OUT/Release/pgn_ood.node"
export PGN_ASAN=1
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:allocator_may_return_null=1:detect_stack_use_after_return=0:handle_segv=1:print_summary=1"
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1"
# Jest's workers inherit the preload; npx itself is started without it.
LD_PRELOAD="$LIBASAN" node node_modules/jest/bin/jest.js --runInBand "${TESTS[@]}"
end=$(date +%s)
echo "test:asan: clean (build $((built - start)) s, tests $((end - built)) s)"
