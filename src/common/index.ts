/**
 * src/common/ owns what every stage shares: the typed errors (errors.ts), outputs written whole or
 * not at all (files.ts), inputs read only when they are regular files (read-file.ts), and the .npy
 * format (npy.ts). It imports no other folder of src/.
 * Public: the errors through the root entry, the .npy functions through `pgn-ood/npy`.
 */
export * from './errors';
export { readNpy, readFloatNpy, writeNpy, parseNpy, encodeNpy } from './npy';
export type { Npy, NpyArray } from './npy';
