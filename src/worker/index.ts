/**
 * src/worker/ owns the queue worker (`pgn worker`, entry `pgn-ood/worker`): a BullMQ processor that
 * scores the image a job names and returns the record of a `pgn score` line (processor.ts), and the
 * worker that runs it against Redis (worker.ts).
 */
export { createProcessor } from './processor';
export type { ScoreJobData, ScoreProcessor } from './processor';
export { redisConnection, startWorker } from './worker';
export type { WorkerOptions } from './worker';
