/**
 * Splitting one batch across machines: shard I of N takes every N-th input of the sorted input
 * list, starting at I (0-based), so that every input is in exactly one shard whatever the machine.
 * `--shard auto` reads I (and N where the engine gives it) from the array-job index of Kubernetes
 * Indexed Jobs, Slurm job arrays and AWS Batch array jobs.
 */

export interface Shard {
  index: number;
  count: number;
}

function shardError(message: string): RangeError {
  return new RangeError(`--shard: ${message}`);
}

function checked(index: number, count: number, from: string): Shard {
  if (!Number.isInteger(count) || count < 1) throw shardError(`the shard count from ${from} must be a positive integer, got ${count}`);
  if (!Number.isInteger(index) || index < 0 || index >= count) throw shardError(`the shard index from ${from} must be an integer in [0, ${count - 1}], got ${index}`);
  return { index, count };
}

const int = (value: string | undefined): number => (value !== undefined && /^\s*\d+\s*$/.test(value) ? Number(value) : NaN);

/**
 * The shard of `--shard SPEC`: "I/N" (0 ≤ I < N), or "auto" from the environment:
 * JOB_COMPLETION_INDEX (Kubernetes), SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN and
 * SLURM_ARRAY_TASK_COUNT (Slurm), AWS_BATCH_JOB_ARRAY_INDEX (AWS Batch). `shards` (--shards N) gives
 * N where the engine does not, and must agree with it where it does.
 */
export function parseShard(spec: string, shards?: number, env: NodeJS.ProcessEnv = process.env): Shard {
  if (spec !== 'auto') {
    const m = /^(\d+)\/(\d+)$/.exec(spec.trim());
    if (!m) throw shardError(`expected I/N (e.g. 0/4) or auto, got "${spec}"`);
    if (shards !== undefined && shards !== Number(m[2])) throw shardError(`${spec} contradicts --shards ${shards}`);
    return checked(Number(m[1]), Number(m[2]), spec);
  }
  const needCount = (engine: string) => {
    if (shards === undefined) throw shardError(`${engine} does not give the number of shards: add --shards N`);
    return shards;
  };
  if (env.JOB_COMPLETION_INDEX !== undefined) return checked(int(env.JOB_COMPLETION_INDEX), needCount('a Kubernetes Indexed Job'), 'JOB_COMPLETION_INDEX');
  if (env.SLURM_ARRAY_TASK_ID !== undefined) {
    const count = env.SLURM_ARRAY_TASK_COUNT !== undefined ? int(env.SLURM_ARRAY_TASK_COUNT) : needCount('this Slurm');
    if (shards !== undefined && shards !== count) throw shardError(`SLURM_ARRAY_TASK_COUNT=${count} contradicts --shards ${shards}`);
    const index = int(env.SLURM_ARRAY_TASK_ID) - (env.SLURM_ARRAY_TASK_MIN !== undefined ? int(env.SLURM_ARRAY_TASK_MIN) : 0);
    return checked(index, count, 'SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN');
  }
  if (env.AWS_BATCH_JOB_ARRAY_INDEX !== undefined) return checked(int(env.AWS_BATCH_JOB_ARRAY_INDEX), needCount('AWS Batch'), 'AWS_BATCH_JOB_ARRAY_INDEX');
  throw shardError('auto found no array-job index (JOB_COMPLETION_INDEX, SLURM_ARRAY_TASK_ID, AWS_BATCH_JOB_ARRAY_INDEX)');
}

/** Whether the k-th item of a list (0-based) is in the shard: every count-th, from index on. */
export function inShard(k: number, shard: Shard): boolean {
  return k % shard.count === shard.index;
}

/** This shard's inputs: every count-th of the sorted list, from index on. */
export function selectShard<T extends string>(inputs: readonly T[], shard: Shard): T[] {
  return [...inputs].sort().filter((_, k) => inShard(k, shard));
}
