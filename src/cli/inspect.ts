/** `pgn inspect`: what graph surgery finds in a model, and optionally the patched model itself. */
import path from 'node:path';
import { Command } from 'commander';
import { ModelError } from '../common/errors';
import { writeFileAtomic } from '../common/files';
import { readRegularFile } from '../common/read-file';
import { analyzeModel, exposeFeatures, ModelAnalysis } from '../model/graph-surgery';
import { loadModelCard, uncheckedWarnings } from '../model/model-card';

interface InspectOptions {
  export?: string;
  json?: boolean;
  secondLayer?: boolean;
}

export function inspectCommand(): Command {
  return new Command('inspect')
    .description('show the model\'s input, classes, feature channels, the final 1x1 conv found and the outputs; --export writes the patched model')
    .argument('<model>', 'model directory (with model.json), model card or .onnx file')
    .option('--export <path>', 'write the patched model (features and conv output exposed as extra outputs)')
    .option('--second-layer', 'also look for the second-to-last conv (pgn2 scores) and expose its input')
    .option('--json', 'print the findings as JSON')
    .action(async (model: string, opts: InspectOptions) => {
      const { card, cardPath, modelPath } = await loadModelCard(model);
      const bytes = await readRegularFile(modelPath).catch((err: Error) => {
        throw new ModelError(`${modelPath}: cannot read the model (${err.message})`, { cause: err });
      });
      const analysis = analyzeModel(bytes, { logitsOutput: card.outputs?.logits, featuresOutput: card.outputs?.features, source: modelPath, modelDir: path.dirname(modelPath), secondLayer: opts.secondLayer });
      const patched = exposeFeatures(bytes, analysis);
      const findings = { ...describe(analysis, modelPath, cardPath, card.classes.map((c) => c.name)), warnings: uncheckedWarnings(card) };
      process.stdout.write(opts.json ? `${JSON.stringify(findings, null, 2)}\n` : text(findings));
      for (const w of findings.warnings) process.stderr.write(`pgn inspect: warning: ${w}\n`);
      if (opts.export) {
        await writeFileAtomic(opts.export, patched);
        process.stdout.write(`patched model written to ${opts.export}\n`);
      }
    });
}

function describe(a: ModelAnalysis, modelPath: string, cardPath: string | null, classNames: string[]) {
  const added = [...a.featureTensors, a.logitsTensor].filter((t) => !a.outputs.includes(t));
  if (a.secondLayer && !a.secondLayer.inputAlreadyOutput && !a.secondLayer.inputIsModelInput) added.push(a.secondLayer.inputTensor);
  return {
    model: modelPath,
    card: cardPath ?? '(none: defaults derived from the model)',
    input: { name: a.input.name, shape: a.input.shape },
    classes: a.numClasses,
    classNames,
    featureChannels: a.featureChannels,
    finalConv: { name: a.conv.name, input: a.conv.input, output: a.conv.output, weight: a.conv.weight, bias: a.conv.bias },
    ...(a.sum ? { summedHead: { add: a.sum.name, output: a.logitsTensor, branches: a.branches.map((b) => ({ name: b.name, input: b.input, channels: b.channels })) } } : {}),
    betweenConvAndOutput: a.chain,
    logitsOutput: a.logitsOutput,
    outputs: a.outputs,
    addedOutputs: added,
    ...(a.secondLayer ? { secondLayer: { conv: a.secondLayer.conv.name, batchNorm: a.secondLayer.batchNorm?.name ?? null, activation: a.secondLayer.activation.op, input: a.secondLayer.inputTensor, geometry: a.secondLayer.layer } } : {}),
  };
}

function text(f: ReturnType<typeof describe>): string {
  const lines = [
    `model:            ${f.model}`,
    `card:             ${f.card}`,
    `input:            ${f.input.name} [${f.input.shape.join(', ')}]`,
    `classes:          ${f.classes} (${f.classNames.join(', ')})`,
    `feature channels: ${f.featureChannels}`,
    `final 1x1 conv:   "${f.finalConv.name}": ${f.finalConv.input} → ${f.finalConv.output} (weight ${f.finalConv.weight}, bias ${f.finalConv.bias ?? 'none'})`,
    `then:             ${f.betweenConvAndOutput.length ? f.betweenConvAndOutput.join(' → ') : '(nothing)'} → output "${f.logitsOutput}"`,
    `outputs:          ${f.outputs.join(', ')}`,
    `surgery adds:     ${f.addedOutputs.length ? f.addedOutputs.join(', ') : '(nothing: already outputs)'}`,
  ];
  if (f.summedHead) lines.push(`summed head:      Add "${f.summedHead.add}" of ${f.summedHead.branches.map((b) => `"${b.name}" (${b.input}, ${b.channels} ch)`).join(' + ')}: features concatenated`);
  if (f.secondLayer) lines.push(`second layer:     conv "${f.secondLayer.conv}"${f.secondLayer.batchNorm ? ` → BatchNorm "${f.secondLayer.batchNorm}"` : ''} → ${f.secondLayer.activation}, input ${f.secondLayer.input}`);
  return `${lines.join('\n')}\n`;
}
