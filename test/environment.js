/**
 * Jest runs each test file in its own vm context, whose typed-array and error constructors differ
 * from Node's main realm, where native addons (ours and onnxruntime-node) create their objects:
 * `instanceof Float32Array` then fails inside onnxruntime-node and in our own checks. This
 * environment hands the test context the main realm's constructors, as a real program has.
 */
const { TestEnvironment } = require('jest-environment-node');

const SHARED = ['Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array', 'Int32Array', 'Uint32Array',
  'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array', 'Error', 'TypeError', 'RangeError'];

class MainRealmEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of SHARED) this.global[name] = globalThis[name];
  }
}

module.exports = MainRealmEnvironment;
