/**
 * Runs one fuzzed call: 'ok' when it returned (or its promise resolved), else the name of the error
 * it threw or rejected with, which must be a TypeError, RangeError or Error with a real message.
 */
export async function settle(fn: () => unknown): Promise<string> {
  try {
    const out = fn();
    if (out && typeof (out as Promise<unknown>).then === 'function') await out;
    return 'ok';
  } catch (err) {
    const name = (err as Error).name;
    if (!['TypeError', 'RangeError', 'Error'].includes(name)) throw new Error(`unexpected ${name}: ${(err as Error).message}`);
    expect((err as Error).message.length).toBeGreaterThan(5);
    return name;
  }
}
