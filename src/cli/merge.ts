/** `pgn merge`: shard journals of `pgn score --shard` joined into one, checked for missing and repeated inputs. */
import { Command } from 'commander';
import { JournalError } from '../common/errors';
import { writeFileAtomic } from '../common/files';
import { describeProblems, mergeJournals } from '../batch/merge';
import { expandInputs } from '../run/inputs';

interface MergeOptions {
  out: string;
  inputs?: string[];
}

export function mergeCommand(): Command {
  return new Command('merge')
    .description('join the NDJSON journals of the shards of a `pgn score` run; checks that no input is missing or repeated')
    .argument('<journals...>', 'the shards\' --ndjson files')
    .requiredOption('--out <file>', 'the merged journal')
    .option('--inputs <patterns...>', 'the run\'s inputs (as given to pgn score): also check that each is in exactly one journal')
    .action(async (journals: string[], opts: MergeOptions) => {
      const inputs = opts.inputs ? await expandInputs(opts.inputs) : undefined;
      const check = await mergeJournals(journals, inputs);
      const problems = describeProblems(check);
      if (problems) throw new JournalError(`not merged: ${problems}`);
      await writeFileAtomic(opts.out, check.records.map((r) => `${JSON.stringify(r)}\n`).join(''));
      const failed = check.records.filter((r) => r.error).length;
      process.stderr.write(`pgn merge: ${check.records.length} inputs from ${journals.length} journals: ${check.records.length - failed} scored, ${failed} failed\n`);
      if (failed > 0) process.exitCode = 1;
    });
}
