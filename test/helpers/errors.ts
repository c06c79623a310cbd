/**
 * Errors created by the native addon belong to Node's main realm, while Jest runs each test file in
 * its own vm context, so `instanceof RangeError` fails across that boundary; compare by name instead.
 */
export async function expectRejection(promise: Promise<unknown>, name: string, message: RegExp): Promise<void> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeDefined();
  expect((caught as Error).name).toBe(name);
  expect((caught as Error).message).toMatch(message);
}

export function expectThrow(fn: () => unknown, name: string, message: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeDefined();
  expect((caught as Error).name).toBe(name);
  expect((caught as Error).message).toMatch(message);
}
