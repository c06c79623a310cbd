/**
 * Caller memory that changes under a running native call (issue 20, item 3): resizable buffers shrunk,
 * buffers transferred away and collected, arrays written while the call reads them, a getter that
 * detaches an array already validated. Each case runs test/helpers/hostile-buffers.js in a child
 * `node --expose-gc`: before the fix these killed the process with SIGSEGV.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';

interface Outcome<T> {
  case: string;
  results: T[];
}

function run<T>(name: string): Promise<Outcome<T>> {
  const script = path.join(__dirname, 'helpers', 'hostile-buffers.js');
  return new Promise((resolve, reject) =>
    execFile('node', ['--expose-gc', script, name], { timeout: 300000, maxBuffer: 1 << 22 }, (err, out, stderr) =>
      err ? reject(new Error(`${name}: ${err.message} (signal ${err.signal})\n${stderr}`)) : resolve(JSON.parse(out))));
}

const ENTRY_POINTS = ['scores', 'upsample', 'upsampleArgmax', 'components', 'pixelMetrics', 'instanceMetrics', 'secondLayer'];

test('views of a resizable ArrayBuffer are refused up front by every entry point, naming the argument', async () => {
  const { results } = await run<{ entry: string; arg: string; error: string | null }>('resizable');
  expect(new Set(results.map((r) => r.entry))).toEqual(new Set(ENTRY_POINTS));
  for (const r of results)
    expect(`${r.entry}.${r.arg}: ${r.error}`).toBe(`${r.entry}.${r.arg}: TypeError: ${r.arg} is a view of a resizable ArrayBuffer, ` +
      'which could shrink under the running call: copy it into a fixed-length typed array first');
});

test('an input transferred away and collected during the call: the call reads the original memory', async () => {
  const { results } = await run<{ entry: string; arg: string; detached: boolean; same: boolean }>('transfer');
  expect(results.length).toBe(14);
  for (const r of results) expect({ ...r, detached: true, same: true }).toEqual(r);
});

test('inputs written while the call runs: every call settles and the process survives', async () => {
  const { results } = await run<{ entry: string; arg: string; outcome: string }>('writes');
  expect(results.length).toBe(7 * 12);
  // A write that lands before the check is reported as bad input; after it, the call's private copy is used.
  for (const r of results) expect(r.outcome).toMatch(/^(resolved|RangeError: image 0: score NaN at pixel .*; scores of non-void pixels must be finite)$/);
});

test('a getter that transfers an array already validated makes the call reject, computing nothing', async () => {
  const { results } = await run<string>('getter');
  expect(results).toEqual(['TypeError: an input array was detached (transferred) while the call read its options: nothing was computed']);
});

test('a growable SharedArrayBuffer grown during the call is accepted: its memory never moves', async () => {
  const { results } = await run<{ same: boolean }>('growable');
  expect(results).toEqual([{ same: true }]);
});
