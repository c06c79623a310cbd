/**
 * A generated segmentation network that is slow on purpose (a stack of 3x3 convolutions), written
 * with its model card into a temporary folder: the tests of the event loop, admission control,
 * batching and `pgn serve` need an inference that takes a known long time, like a real network.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GraphBuilder } from './onnx-builder';

export interface SlowModelOptions {
  /** 3x3 conv layers of `channels` → `channels` after the stem; more = slower. Default 8. */
  layers?: number;
  channels?: number;
  /** The card's input size (resize "stretch"). Default 128. */
  size?: number;
  /** A fixed batch dimension instead of a symbolic one. */
  batch?: number;
  /** resize "none": symbolic H, W, images fed at their own size. */
  anySize?: boolean;
}

/** Writes model.onnx and model.json into a new temporary folder and returns the folder. */
export function writeSlowModel(o: SlowModelOptions = {}): string {
  const layers = o.layers ?? 8;
  const F = o.channels ?? 48;
  const size = o.size ?? 128;
  const classes = 4;
  const g = new GraphBuilder(7);
  g.input('input', o.anySize ? [o.batch ?? 'N', 3, 'H', 'W'] : [o.batch ?? 'N', 3, size, size]);
  g.randomInit('stem.w', [F, 3, 3, 3]);
  g.node('Conv', ['input', 'stem.w'], ['h0'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [2, 2] });
  for (let l = 0; l < layers; l++) {
    // weights scaled so that activations stay moderate through the stack
    g.initializer({ name: `w${l}`, dims: [F, F, 3, 3], dataType: 1, rawData: new Uint8Array(g.randomValues([F, F, 3, 3], 1 / Math.sqrt(9 * F)).buffer) });
    g.node('Conv', [`h${l}`, `w${l}`], [`c${l}`], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] });
    g.node('Relu', [`c${l}`], [l === layers - 1 ? 'feat' : `h${l + 1}`]);
  }
  g.randomInit('head.w', [classes, F, 1, 1]);
  g.randomInit('head.b', [classes]);
  g.node('Conv', ['feat', 'head.w', 'head.b'], ['logits'], { kernel_shape: [1, 1] }, 'classifier');
  g.output('logits');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgn-slow-model-'));
  fs.writeFileSync(path.join(dir, 'model.onnx'), g.build());
  fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify({
    name: 'slow',
    model: 'model.onnx',
    input: { name: 'input', ...(o.anySize ? { resize: 'none' } : { height: size, width: size, resize: 'stretch' }), channelOrder: 'rgb', scale: 255, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] },
    classes: ['a', 'b', 'c', 'd'].map((name) => ({ name, color: [0, 0, 0] })),
    recommended: { score: 'pgn-oh:p=0.5', threshold: 1 },
  }));
  return dir;
}
