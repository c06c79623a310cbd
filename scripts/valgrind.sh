#!/usr/bin/env bash
# scripts/valgrind.sh [ITERATIONS] — a small native run under valgrind memcheck: every entry point of
# the addon (test/helpers/native-loop.js: scores, refused and rejected calls, upsample, components,
# the grid emulation, second-layer scores, both metrics accumulators, one dropped unfinished),
# ITERATIONS times (default 12), then a report of what concerns pgn_ood.node:
#   - "definitely lost" blocks allocated under a pgn_ood.node frame (leaks of ours);
#   - memcheck errors (invalid read/write, uninitialised value use, bad free) with a pgn_ood.node frame.
# Node and V8 keep allocations alive until exit and use JIT code valgrind cannot follow precisely, so
# their own records are counted but not judged (no suppression file needed: records are filtered by
# frame). Exit status 0 = none of ours. Needs valgrind (apt-get install -y valgrind).
#
# PGN_OOD_ADDON selects the build under test (default build/Release/pgn_ood.node); a -g build gives
# line numbers (e.g. cmake-js build --out build-valgrind --CDCMAKE_CXX_FLAGS_RELEASE="-O2 -g").
set -euo pipefail
cd "$(dirname "$0")/.."

command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind not found (apt-get install -y valgrind)" >&2; exit 1; }
ITERATIONS=${1:-12}
LOG=${PGN_VALGRIND_LOG:-valgrind.log}
[[ -f dist/addon/index.js ]] || npx tsc -p tsconfig.build.json

start=$(date +%s)
# --expose-gc: the loop collects between iterations, so finalizers of dropped objects run under
# valgrind's eye. One libuv thread keeps valgrind (which serializes threads anyway) from idling.
set +e
UV_THREADPOOL_SIZE=2 valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,possible \
  --errors-for-leak-kinds=definite --num-callers=40 --trace-children=no --log-file="$LOG" \
  node --expose-gc test/helpers/native-loop.js "$ITERATIONS" "$ITERATIONS" >/dev/null
status=$?
set -e
end=$(date +%s)

node - "$LOG" "$status" "$((end - start))" <<'EOF'
const fs = require('fs');
const [log, status, seconds] = process.argv.slice(2);
const text = fs.readFileSync(log, 'utf8').replace(/^==\d+== ?/gm, '');
// A record: a header line then its stack, up to a blank line.
const records = text.split(/\n\s*\n/).map((r) => r.trim()).filter(Boolean);
const ours = (r) => /pgn_ood\.node|pgn::/.test(r);
const definite = records.filter((r) => /definitely lost in loss record/.test(r));
const possible = records.filter((r) => /possibly lost in loss record/.test(r));
const errors = records.filter((r) => /^(Invalid (read|write|free)|Conditional jump|Use of uninitialised|Syscall param|Mismatched free|Source and destination overlap)/m.test(r));
const bytes = (rs) => rs.reduce((a, r) => a + Number((/([\d,]+) bytes in [\d,]+ blocks/.exec(r)?.[1] ?? '0').replace(/,/g, '')), 0);
const summary = /LEAK SUMMARY:[\s\S]*?suppressed:[^\n]*/.exec(text)?.[0] ?? '(no leak summary: did the run finish?)';
console.log(`valgrind memcheck: node --expose-gc test/helpers/native-loop.js, exit ${status}, ${seconds} s`);
console.log(summary.split('\n').map((l) => `  ${l.trim()}`).join('\n'));
console.log(`definitely lost: ${definite.length} records (${bytes(definite)} bytes), of which under pgn_ood.node: ${definite.filter(ours).length} (${bytes(definite.filter(ours))} bytes)`);
console.log(`possibly lost: ${possible.length} records (${bytes(possible)} bytes), of which under pgn_ood.node: ${possible.filter(ours).length}`);
console.log(`memcheck errors: ${errors.length}, of which with a pgn_ood.node frame: ${errors.filter(ours).length}`);
const bad = [...definite.filter(ours), ...errors.filter(ours)];
for (const r of bad) console.log(`\n${r}`);
console.log(`full log: ${log}`);
process.exit(bad.length > 0 || status !== '0' ? 1 : 0);
EOF
