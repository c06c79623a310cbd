/** A BullMQ worker over the processor: Redis from a URL, concurrency, stalled-job recovery. */
import { Worker, type RedisOptions } from 'bullmq';
import { ScorerOptions } from '../run/scorer';
import { createProcessor } from './processor';

export interface WorkerOptions extends ScorerOptions {
  /** redis://[user:password@]host:port[/db] (rediss:// for TLS). */
  redis: string;
  queue: string;
  /** Jobs run at once by this worker (one scorer, shared). Default 1. */
  concurrency?: number;
  /**
   * How long a job's lock lasts without renewal (ms, default 30000): a worker killed mid-job has its
   * job handed to another worker after about this long (BullMQ's stalled-job check).
   */
  lockDuration?: number;
}

/** ioredis options from a redis:// URL (BullMQ needs maxRetriesPerRequest: null for its blocking calls). */
export function redisConnection(url: string): RedisOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new RangeError(`--redis: expected redis://host:port, got "${url}"`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new RangeError(`--redis: expected a redis:// or rediss:// URL, got "${url}"`);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  if (!Number.isInteger(db) || db < 0) throw new RangeError(`--redis: the database must be a number, got "${u.pathname.slice(1)}"`);
  return {
    host: u.hostname,
    port: u.port ? Number(u.port) : 6379,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db,
    tls: u.protocol === 'rediss:' ? {} : undefined,
    maxRetriesPerRequest: null,
  };
}

/** Starts consuming the queue; close() waits for the jobs in hand, then releases the model. */
export async function startWorker(options: WorkerOptions): Promise<{ worker: Worker; close(): Promise<void> }> {
  const { redis, queue, concurrency = 1, lockDuration = 30000, ...scorer } = options;
  const connection = redisConnection(redis);
  const processor = await createProcessor(scorer);
  const worker = new Worker(queue, (job) => processor.process(job), {
    connection,
    concurrency,
    lockDuration,
    stalledInterval: Math.max(1000, lockDuration / 2),
  });
  return {
    worker,
    async close() {
      await worker.close();
      await processor.close();
    },
  };
}
