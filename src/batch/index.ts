/**
 * src/batch/ owns large batch runs: the score record of one image and its uniquely named output
 * files (record.ts, output-names.ts), the resumable journal (journal.ts), shards across machines
 * (shards.ts) and the merge of shard journals (merge.ts).
 */
export { outputStems } from './output-names';
export { errorRecord, inputIdentity, outputFiles, resultRecord, writeOutputs } from './record';
export type { InputIdentity, OutputOptions, ScoreRecord } from './record';
export { JournalWriter, planJournal, readJournal } from './journal';
export type { JournalContents, ResumePlan } from './journal';
export { inShard, parseShard, selectShard } from './shards';
export type { Shard } from './shards';
export { describeProblems, mergeJournals } from './merge';
export type { MergeCheck } from './merge';
