/**
 * The server's Prometheus metrics (prom-client, a registry of its own): requests by route and
 * status, request latency and per-stage latency histograms, batch sizes, and the scorer's queue
 * depth and images in flight read when scraped; plus prom-client's process metrics (RSS, CPU,
 * event-loop lag).
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ImageResult, StageTimings } from '../run/scorer';
import type { SchedulerLoad } from '../run/scheduler';

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class ServerMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'route' | 'status'>;
  private readonly latency: Histogram<'route'>;
  private readonly stages: Histogram<'stage'>;
  private readonly batches: Histogram;

  constructor(load: () => SchedulerLoad) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.requests = new Counter({ name: 'pgn_http_requests_total', help: 'HTTP requests by route and status code', labelNames: ['route', 'status'], registers });
    this.latency = new Histogram({ name: 'pgn_http_request_duration_seconds', help: 'HTTP request latency by route', labelNames: ['route'], buckets: LATENCY_BUCKETS, registers });
    this.stages = new Histogram({ name: 'pgn_stage_duration_seconds', help: 'Per-image time of each scoring stage (batch stages divided by the batch size)', labelNames: ['stage'], buckets: LATENCY_BUCKETS, registers });
    this.batches = new Histogram({ name: 'pgn_batch_size', help: 'Images per inference batch, per scored image', buckets: [1, 2, 4, 8, 16, 32, 64], registers });
    new Gauge({ name: 'pgn_queue_depth', help: 'Score calls waiting for admission', registers, collect() { this.set(load().queued); } });
    new Gauge({ name: 'pgn_in_flight', help: 'Images admitted: decoding, batching, in inference or post-processing', registers, collect() { this.set(load().inFlight); } });
  }

  request(route: string, status: number, seconds: number): void {
    this.requests.inc({ route, status: String(status) });
    this.latency.observe({ route }, seconds);
  }

  scored(result: ImageResult): void {
    for (const [stage, ms] of Object.entries(result.timings) as [keyof StageTimings, number][]) this.stages.observe({ stage }, ms / 1000);
    if (result.batchSize !== undefined) this.batches.observe(result.batchSize);
  }
}
