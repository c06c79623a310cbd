/** The tensor shapes the scoring passes take and return (shared by the first- and second-layer scores). */

/** A dense NCHW tensor. */
export interface Tensor {
  data: Float32Array;
  dims: number[];
}

/** A stack of maps [N, h, w]. */
export interface MapStack<T extends Float32Array | Int32Array = Float32Array> {
  data: T;
  dims: [number, number, number];
}
