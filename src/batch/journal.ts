/**
 * The journal of a batch run (`pgn score --ndjson FILE`): one NDJSON line per input, appended when
 * that input is done (completion order), synced to disk after every batch and within a second of
 * any line. A killed run leaves every finished line and at most one torn last line, which the next
 * run drops; `--resume` then skips the inputs the journal holds, so that it ends with every input
 * exactly once.
 */
import fs from 'node:fs';
import path from 'node:path';
import { JournalError, OutputError } from '../common/errors';
import { AppendWriter, openAppend, removeStaleTemporaries, truncateFile, writeFileAtomic } from '../common/files';
import { inputIdentity, ScoreRecord } from './record';

export interface JournalContents {
  records: ScoreRecord[];
  /** Bytes of the complete lines; a torn last line starts here. */
  complete: number;
  /** The torn last line, if any (no newline, or not JSON). */
  torn?: string;
}

function parseLine(line: string, file: string, n: number): ScoreRecord {
  let record: unknown;
  try {
    record = JSON.parse(line);
  } catch {
    throw new JournalError(`${file}, line ${n}: not JSON (${line.slice(0, 80)}): not a journal of pgn score?`);
  }
  if (typeof record !== 'object' || record === null || typeof (record as ScoreRecord).file !== 'string')
    throw new JournalError(`${file}, line ${n}: not a pgn score record (no "file")`);
  return record as ScoreRecord;
}

/** Reads a journal. Only its last line may be torn (a crash mid-write); another bad line is a JournalError. */
export async function readJournal(file: string): Promise<JournalContents> {
  const text = await fs.promises.readFile(file, 'utf8');
  const lines = text.split('\n');
  const last = lines.pop()!; // '' when the text ends with a newline
  const records: ScoreRecord[] = [];
  let complete = 0;
  let torn: string | undefined = last === '' ? undefined : last;
  for (const [k, line] of lines.entries()) {
    if (k === lines.length - 1 && last === '') {
      try {
        records.push(parseLine(line, file, k + 1));
      } catch {
        torn = line; // a line cut at a newline inside a string cannot happen: JSON escapes them
        break;
      }
    } else records.push(parseLine(line, file, k + 1));
    complete += Buffer.byteLength(line) + 1;
  }
  return { records, complete, torn };
}

/** Whether `record` still stands for `file`: same size and mtime (or still missing), outputs all present. */
async function stillValid(record: ScoreRecord): Promise<boolean> {
  const now = await inputIdentity(record.file);
  if (!now || !record.input) return !now && !record.input;
  if (now.size !== record.input.size || now.mtimeMs !== record.input.mtimeMs) return false;
  for (const out of record.outputs ?? []) {
    const stat = await fs.promises.stat(out).catch(() => undefined);
    if (!stat?.isFile() || stat.size === 0) return false;
  }
  return true;
}

export interface ResumePlan {
  /** Records kept from the journal, for inputs of this run. */
  done: ScoreRecord[];
  /** Inputs still to score, in input order. */
  todo: string[];
  /** Journal lines dropped: the torn last line, and records of changed inputs or missing outputs. */
  dropped: number;
  /** Lines kept for inputs that are not among this run's inputs. */
  foreign: number;
}

/**
 * The journal's stat, or undefined when it does not exist yet; a path that cannot be a journal
 * (under a regular file, a folder without write access) is an OutputError before any work.
 */
function statJournal(file: string): fs.Stats | undefined {
  const fail = (err: unknown) => new OutputError(`cannot write ${file}: ${(err as Error).message}`, { cause: err });
  try {
    return fs.statSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fail(err);
    try {
      fs.accessSync(path.dirname(file), fs.constants.W_OK);
    } catch (err2) {
      throw fail(err2);
    }
    return undefined;
  }
}

/**
 * Prepares the journal at `file` for a run over `inputs`. Without `resume`, a non-empty journal is
 * a JournalError (never truncated). With it, the journal is read, its torn last line dropped, and
 * the records of inputs that changed (size, mtime) or lost an output are removed, so that they are
 * scored again and the journal ends with each input once.
 */
export async function planJournal(file: string, inputs: readonly string[], resume: boolean): Promise<ResumePlan> {
  const stat = statJournal(file);
  await removeStaleTemporaries([file]); // of a run killed while it rewrote the journal
  if (!stat?.isFile() || stat.size === 0) {
    if (resume && stat && !stat.isFile()) throw new JournalError(`--resume: ${file} is not a regular file`);
    return { done: [], todo: [...inputs], dropped: 0, foreign: 0 };
  }
  if (!resume) throw new JournalError(`${file} exists: add --resume to continue that run (skipping the inputs it holds), or remove the file to start over`);
  const { records, complete, torn } = await readJournal(file);
  const wanted = new Set(inputs);
  const seen = new Map<string, ScoreRecord>();
  const keep: ScoreRecord[] = [];
  let dropped = torn === undefined ? 0 : 1;
  let foreign = 0;
  for (const r of records) {
    if (!wanted.has(r.file)) foreign++, keep.push(r);
    else if (seen.has(r.file) || !(await stillValid(r))) dropped++;
    else seen.set(r.file, r), keep.push(r);
  }
  if (dropped > (torn === undefined ? 0 : 1)) await writeFileAtomic(file, keep.map((r) => `${JSON.stringify(r)}\n`).join(''));
  else if (torn !== undefined) await truncateFile(file, complete);
  return { done: [...seen.values()], todo: inputs.filter((f) => !seen.has(f)), dropped, foreign };
}

/** Appends records, syncing every `every` records and within a second of any append. */
export class JournalWriter {
  private pending = 0;
  private timer: NodeJS.Timeout | undefined;
  private syncing: Promise<void> = Promise.resolve();
  private failure: unknown;

  private constructor(private readonly writer: AppendWriter, private readonly every: number) {}

  static async open(file: string, every: number): Promise<JournalWriter> {
    return new JournalWriter(await openAppend(file), Math.max(1, every));
  }

  /** Appends the record's line in one write(); a sync follows when a batch is complete, or a second later. */
  async append(record: ScoreRecord): Promise<void> {
    if (this.failure) throw this.failure;
    this.writer.append(`${JSON.stringify(record)}\n`);
    if (++this.pending >= this.every) await this.sync();
    // A slow image must not leave the lines before it unsynced for long.
    else this.timer ??= setTimeout(() => void this.sync().catch((err) => (this.failure ??= err)), 1000).unref();
  }

  async sync(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.pending = 0;
    await this.syncing;
    this.syncing = this.writer.sync();
    await this.syncing;
  }

  async close(): Promise<void> {
    await this.sync();
    await this.writer.close();
  }
}
