/** `pgn card init`: a starter model card from the model, with the fields a person must check marked. */
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { ModelCardError, ModelError } from '../common/errors';
import { writeFileAtomic } from '../common/files';
import { readRegularFile } from '../common/read-file';
import { analyzeModel } from '../model/graph-surgery';
import { CARD_FILE, checkCardAgainstModel, formatModelCard, starterModelCard, uncheckedWarnings } from '../model/model-card';

interface InitOptions {
  out?: string;
  force?: boolean;
}

export function cardCommand(): Command {
  const card = new Command('card').description('write and maintain model cards');
  card.addCommand(
    new Command('init')
      .description('write a starter model card from the model: input name and size, class count, outputs; guessed fields are marked unchecked')
      .argument('<model>', 'the .onnx file')
      .option('--out <file>', `where to write the card (default: ${CARD_FILE} beside the model)`)
      .option('--force', 'replace an existing card')
      .action(async (model: string, opts: InitOptions) => {
        const modelPath = path.resolve(model);
        const bytes = await readRegularFile(modelPath).catch((err: Error) => {
          throw new ModelError(`${modelPath}: cannot read the model (${err.message})`, { cause: err });
        });
        const analysis = analyzeModel(bytes, { source: modelPath, modelDir: path.dirname(modelPath) });
        const out = path.resolve(opts.out ?? path.join(path.dirname(modelPath), CARD_FILE));
        if (!opts.force && fs.existsSync(out)) throw new ModelCardError(`${out} already exists: give --force to replace it, or --out elsewhere`);
        const starter = starterModelCard(analysis, modelPath, path.dirname(out));
        checkCardAgainstModel(starter, analysis, out);
        await writeFileAtomic(out, formatModelCard(starter));
        process.stdout.write(`model card written to ${out}\n`);
        for (const w of uncheckedWarnings(starter)) process.stderr.write(`pgn card init: check ${w}\n`);
      }),
  );
  return card;
}
