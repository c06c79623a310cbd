/**
 * Issue 17's model matrix: torchvision's segmentation heads (fcn_resnet50, deeplabv3_resnet50,
 * deeplabv3_mobilenet_v3_large, lraspp_mobilenet_v3_large) and a SegFormer-style MLP decoder, at
 * small widths, exported by torch at opsets 13 and 17, float32 and float16, inline and external data
 * (test/fixtures/recipes/model_matrix.py). For each: surgery exposes what torch's hooks saw, the scores
 * equal the float64 reference, pgn-oh equals torch autograd's gradient norm over every final kernel
 * (LRASPP: both summed classifiers), and `pgn score` writes maps at image size.
 *
 * The committed core (test/fixtures/model-matrix: LRASPP and SegFormer-MLP at opset 13) always runs.
 * The whole matrix (13 MB) is generated into a cache with Debian's torch (/usr/bin/python3 with
 * python3-torch, python3-torchvision, python3-onnx) and skipped, saying so, where torch is absent.
 */
import { execFile, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { readFloatNpy } from '../src/common/npy';
import { ModelSession } from '../src/model/session';
import { computeScores } from '../src/scoring/scores';
import { referenceScores } from './helpers/reference';

const run = promisify(execFile);
const cli = path.join(__dirname, '..', 'dist', 'cli', 'index.js');
const recipe = path.join(__dirname, 'fixtures', 'recipes', 'model_matrix.py');
const core = path.join(__dirname, 'fixtures', 'model-matrix');
const image = path.join(__dirname, '..', 'models', 'demo', 'eval', 'images', 'demo_000.jpg');

interface Index {
  classes: number;
  input: number[];
  models: Record<string, { heads: number; features: number; variants: string[]; autograd: { pixels: [number, number][]; norms: Record<string, number[]> } }>;
}

/** The whole matrix in a cache keyed by the recipe's text; null when torch is not there to make it. */
function fullMatrix(): string | null {
  const key = crypto.createHash('sha1').update(fs.readFileSync(recipe)).digest('hex').slice(0, 12);
  const dir = path.join(os.tmpdir(), `pgn-model-matrix-${key}`);
  if (fs.existsSync(path.join(dir, 'index.json'))) return dir;
  const probe = spawnSync('/usr/bin/python3', ['-c', 'import torch, torchvision, onnx'], { encoding: 'utf8' });
  if (probe.status !== 0) {
    console.warn('model matrix: Debian torch (python3-torch, python3-torchvision, python3-onnx) not installed: only the committed core runs');
    return null;
  }
  const made = spawnSync('/usr/bin/python3', [recipe, `${dir}.tmp`], { encoding: 'utf8' });
  if (made.status !== 0) throw new Error(`model matrix recipe failed: ${made.stderr.slice(-2000)}`);
  fs.renameSync(`${dir}.tmp`, dir);
  return dir;
}

const full = fullMatrix();
const sets = [{ name: 'core', dir: core }, ...(full ? [{ name: 'full', dir: full }] : [])];
const results: string[] = [];

afterAll(() => {
  if (results.length) console.log(`model matrix:\n${results.join('\n')}`);
});

function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    m = Math.max(m, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return m / (scale || 1);
}

describe.each(sets)('$name model matrix', ({ dir }) => {
  const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')) as Index;
  const cases = Object.entries(index.models).flatMap(([model, m]) => m.variants.map((variant) => [model, variant] as const));

  test.each(cases)('%s %s', async (model, variant) => {
    const half = variant.includes('.f16.');
    const input = await readFloatNpy(path.join(dir, 'input.npy'));
    const phi = await readFloatNpy(path.join(dir, `${model}.features.npy`));
    const z = await readFloatNpy(path.join(dir, `${model}.conv_out.npy`));
    const file = path.join(dir, variant, 'model.onnx');
    let outcome = 'pass';
    try {
      const session = await ModelSession.create(file, { executionProviders: ['cpu'] });
      try {
        expect(session.analysis.branches).toHaveLength(index.models[model]!.heads);
        const out = await session.run(input.data, input.dims as [number, number, number, number]);
        // surgery exposes what torch's hooks saw (float16: the half-precision network's values)
        expect(out.featuresDims).toEqual(phi.dims);
        expect(out.logitsDims).toEqual(z.dims);
        expect(relDiff(out.features, phi.data)).toBeLessThan(half ? 5e-2 : 1e-4);
        expect(relDiff(out.logits, z.data)).toBeLessThan(half ? 5e-2 : 1e-4);
        // the native scores equal the float64 reference on these tensors
        const specs = [{ kind: 'pgn-oh', p: 0.5 }, { kind: 'pgn-oh', p: 2 }, { kind: 'pgn-uni', p: 1 }] as const;
        const scored = await computeScores({ data: out.logits, dims: out.logitsDims }, { data: out.features, dims: out.featuresDims }, { scores: [...specs] });
        specs.forEach((spec, k) => expect(relDiff(scored.maps[k]!.map.data, referenceScores(out.logits, out.logitsDims, out.features, out.featuresDims[1]!, spec))).toBeLessThan(1e-5));
        // pgn-oh is the gradient norm over every final kernel, as torch autograd computes it
        if (!half) {
          const { pixels, norms } = index.models[model]!.autograd;
          const w = out.logitsDims[3]!;
          for (const p of ['0.5', '1', '2']) {
            const [map] = (await computeScores({ data: out.logits, dims: out.logitsDims }, { data: out.features, dims: out.featuresDims }, { scores: [{ kind: 'pgn-oh', p: Number(p) }] })).maps;
            const ours = pixels.map(([i, j]) => map!.map.data[i * w + j]!);
            expect(relDiff(ours, norms[p]!)).toBeLessThan(1e-4);
          }
        }
      } finally {
        await session.dispose();
      }
      // pgn score: the maps at the image's size
      const out = fs.mkdtempSync(path.join(os.tmpdir(), 'pgn-matrix-'));
      try {
        const { stdout } = await run('node', [cli, 'score', '--model', file, '--out', out, '--no-png', '--no-overlay', '--no-segments', image]);
        const line = JSON.parse(stdout);
        expect([line.width, line.height]).toEqual([512, 256]);
        const map = await readFloatNpy(line.outputs[0]);
        expect(map.dims).toEqual([256, 512]);
        expect(map.data.every(Number.isFinite)).toBe(true);
      } finally {
        fs.rmSync(out, { recursive: true, force: true });
      }
    } catch (err) {
      outcome = (err as Error).message.split('\n')[0]!.slice(0, 160);
      throw err;
    } finally {
      results.push(`| ${model} | ${variant.replace(`${model}.`, '').split('.').join(' | ')} | ${outcome} |`);
    }
  });
});
