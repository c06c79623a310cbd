/**
 * `pgn merge`: the journals of the shards of one run joined into one, checked against the input
 * list: no input missing, none repeated, none foreign.
 */
import { JournalError } from '../common/errors';
import { readJournal } from './journal';
import { ScoreRecord } from './record';

export interface MergeCheck {
  records: ScoreRecord[];
  /** Inputs of the list that no journal holds. */
  missing: string[];
  /** Inputs held more than once (in one journal or across them), with the journals holding them. */
  repeated: { file: string; journals: string[] }[];
  /** Inputs held that are not in the list. */
  foreign: string[];
}

/** Reads the journals (a torn last line is an error here: resume that shard first). */
export async function mergeJournals(journals: string[], inputs?: readonly string[]): Promise<MergeCheck> {
  const where = new Map<string, string[]>();
  const records: ScoreRecord[] = [];
  for (const journal of journals) {
    const { records: held, torn } = await readJournal(journal);
    if (torn !== undefined) throw new JournalError(`${journal} ends with a torn line: its run was killed; finish it with --resume first`);
    for (const r of held) {
      if (!where.has(r.file)) where.set(r.file, []), records.push(r);
      where.get(r.file)!.push(journal);
    }
  }
  const repeated = [...where].filter(([, js]) => js.length > 1).map(([file, js]) => ({ file, journals: js }));
  const listed = new Set(inputs ?? []);
  const missing = inputs ? inputs.filter((f) => !where.has(f)) : [];
  const foreign = inputs ? [...where.keys()].filter((f) => !listed.has(f)) : [];
  // In input-list order where there is a list, else sorted: the same file whatever the shard order.
  const order = new Map((inputs ?? [...where.keys()].sort()).map((f, k) => [f, k]));
  records.sort((a, b) => (order.get(a.file) ?? Infinity) - (order.get(b.file) ?? Infinity));
  return { records, missing, repeated, foreign };
}

/** The problems of a merge as one message, a few examples each; '' when there are none. */
export function describeProblems(check: MergeCheck, examples = 5): string {
  const list = (files: string[]) => files.slice(0, examples).join(', ') + (files.length > examples ? `, … (${files.length - examples} more)` : '');
  return [
    check.missing.length ? `${check.missing.length} input(s) missing: ${list(check.missing)}` : '',
    check.repeated.length ? `${check.repeated.length} input(s) repeated: ${list(check.repeated.map((r) => `${r.file} (in ${r.journals.join(', ')})`))}` : '',
    check.foreign.length ? `${check.foreign.length} record(s) of files not in the input list: ${list(check.foreign)}` : '',
  ].filter((s) => s !== '').join('; ');
}
