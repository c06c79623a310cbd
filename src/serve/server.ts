/**
 * The HTTP server of `pgn serve` (fastify): POST /v1/score scores the encoded image of the body with
 * the scorer (its admission control and dynamic batching bound and batch the requests), GET /healthz,
 * /readyz, /metrics (Prometheus text) and /openapi.json. Every failure is a JSON
 * `{ error: { code, message } }` with a fitting status: the process never goes down for a request.
 */
import Fastify, { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { releaseArrays } from '../addon';
import { encodeNpy } from '../common/npy';
import { ImageError, OverloadedError, PgnError } from '../common/errors';
import { overlayPng, robustRange } from '../image/segment-images';
import type { ImageResult, Scorer } from '../run/scorer';
import { scoreLabel } from '../scoring/scores';
import { summarizeMaps } from '../scoring/summary';
import { ServerMetrics } from './metrics';
import { openApiDocument } from './openapi';

/** 32 MiB: a 24 MP JPEG or a 10 MP PNG fits. */
export const DEFAULT_MAX_BODY = 32 * 1024 * 1024;

export interface ServerOptions {
  /** Largest request body in bytes (413 beyond). Default 32 MiB. */
  maxBody?: number;
  /** Time limit of one scoring request, queue included, in ms (408 beyond). Default: none. */
  timeoutMs?: number;
}

/** What POST /v1/score's query asks for. */
interface ScoreQuery {
  scores: string[] | null;
  threshold?: number;
  minArea?: number;
  output: 'json' | 'npy' | 'overlay';
}

const OUTPUT_TYPES = { npy: 'application/x-npy', overlay: 'image/png', json: 'application/json' } as const;

function httpError(status: number, code: string, message: string): Error & { statusCode: number; code: string } {
  return Object.assign(new Error(message), { statusCode: status, code });
}

function parseNumberParam(name: string, value: unknown, integer: boolean): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (typeof value !== 'string' || value.trim() === '' || !Number.isFinite(n) || (integer && (!Number.isInteger(n) || n < 0)))
    throw httpError(400, 'PGN_BAD_REQUEST', `query parameter ${name} must be ${integer ? 'a non-negative integer' : 'a finite number'}, got "${String(value)}"`);
  return n;
}

/** The query, checked against the scores the scorer computes; the Accept header picks the output when no `output=`. */
function parseQuery(req: FastifyRequest, served: string[]): ScoreQuery {
  const q = req.query as Record<string, unknown>;
  for (const key of Object.keys(q))
    if (!['score', 'threshold', 'minArea', 'output'].includes(key)) throw httpError(400, 'PGN_BAD_REQUEST', `unknown query parameter "${key}" (expected score, threshold, minArea, output)`);
  let scores: string[] | null = null;
  if (q.score !== undefined) {
    scores = String(q.score).split(',').map((s) => {
      let label: string;
      try {
        label = scoreLabel(s.trim());
      } catch (err) {
        throw httpError(400, 'PGN_BAD_REQUEST', `query parameter score: ${(err as Error).message}`);
      }
      if (!served.includes(label)) throw httpError(400, 'PGN_BAD_REQUEST', `score "${label}" is not served (this server computes ${served.join(', ')}; start it with --score to add others)`);
      return label;
    });
  }
  const accept = req.headers.accept ?? '';
  const byAccept = accept.includes(OUTPUT_TYPES.npy) ? 'npy' : accept.includes(OUTPUT_TYPES.overlay) ? 'overlay' : 'json';
  const output = q.output ?? byAccept;
  if (output !== 'json' && output !== 'npy' && output !== 'overlay') throw httpError(400, 'PGN_BAD_REQUEST', `query parameter output must be json, npy or overlay, got "${String(output)}"`);
  return { scores, threshold: parseNumberParam('threshold', q.threshold, false), minArea: parseNumberParam('minArea', q.minArea, true), output };
}

/**
 * The result's segments: the scorer's own, or under the query's score, threshold and min area; an
 * overlay needs their label image, which a scorer without segments.labels did not make.
 */
async function segmentsFor(scorer: Scorer, result: ImageResult, q: ScoreQuery) {
  const own = q.threshold === undefined && q.minArea === undefined && q.scores === null;
  if (own && (q.output !== 'overlay' || !result.segments || result.segmentLabels)) return { segments: result.segments, labels: result.segmentLabels };
  try {
    const found = await scorer.segmentsOf(result, { score: q.scores?.[0], threshold: q.threshold, minArea: q.minArea });
    return { segments: found.segments, labels: found.segmentLabels };
  } catch (err) {
    if (err instanceof RangeError) throw httpError(400, 'PGN_BAD_REQUEST', err.message); // e.g. no threshold for that score
    throw err;
  }
}

async function scoreRoute(scorer: Scorer, metrics: ServerMetrics, options: ServerOptions, req: FastifyRequest, reply: FastifyReply) {
  const served = scorer.specs.map(scoreLabel);
  const q = parseQuery(req, served);
  const body = req.body;
  if (!Buffer.isBuffer(body) || body.length === 0) throw new ImageError('<body>: empty request body, not an image');
  // A client that goes away stops its call: dropped from the queue, or its result discarded. Only
  // while the call runs: a reply's socket closes after every reply, and an abort then would only
  // build an AbortError (a DOMException, with its stack) for nothing.
  const gone = new AbortController();
  const onClose = () => gone.abort();
  reply.raw.once('close', onClose);
  const result = await scorer.score(body, { signal: gone.signal, timeoutMs: options.timeoutMs }).finally(() => reply.raw.off('close', onClose));
  metrics.scored(result);
  let labels: Uint32Array | undefined;
  try {
    const wanted = q.scores ?? served;
    const maps = result.maps.filter((m) => wanted.includes(scoreLabel(m.spec)));
    maps.sort((a, b) => wanted.indexOf(scoreLabel(a.spec)) - wanted.indexOf(scoreLabel(b.spec)));
    const found = await segmentsFor(scorer, result, q);
    labels = found.labels;
    if (q.output === 'npy') return reply.type(OUTPUT_TYPES.npy).send(encodeNpy(maps[0]!.data, [result.height, result.width]));
    if (q.output === 'overlay') {
      const dims: [number, number, number] = [1, result.height, result.width];
      const png = await overlayPng(body, { data: maps[0]!.data, dims }, labels ? { data: labels, dims } : null, { range: robustRange(maps[0]!.data) });
      return reply.type(OUTPUT_TYPES.overlay).send(png);
    }
    const summaries = await summarizeMaps(maps.map((m) => m.data));
    const scores = Object.fromEntries(maps.map((m, k) => [m.name, summaries[k]]));
    return { width: result.width, height: result.height, scores, segments: found.segments, batchSize: result.batchSize, timings: result.timings };
  } finally {
    // Every reply above holds copies or summaries: the image-sized arrays and the body go back now
    // (Scorer.release), not at the collections they would otherwise force.
    scorer.release(result);
    releaseArrays([labels, body]);
  }
}

/** Status, stable code and headers for any error a request ends with. */
function errorReply(err: unknown): { status: number; code: string; message: string; headers?: Record<string, string> } {
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof OverloadedError) return { status: 503, code: err.code, message, headers: { 'retry-after': '1' } };
  if (err instanceof ImageError) return { status: 400, code: err.code, message };
  if (err instanceof PgnError) return { status: 500, code: err.code, message };
  const e = err as Partial<FastifyError> & { name?: string };
  if (e.name === 'TimeoutError') return { status: 408, code: 'PGN_TIMEOUT', message: `the request took longer than the server's limit (${message})` };
  if (e.name === 'AbortError') return { status: 499, code: 'PGN_CLIENT_GONE', message: 'the client closed the connection' };
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return { status: 413, code: 'PGN_BODY_TOO_LARGE', message };
  if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return { status: 415, code: 'PGN_UNSUPPORTED_MEDIA_TYPE', message: `${message}; send the encoded image with Content-Type image/* or application/octet-stream` };
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) return { status: e.statusCode, code: e.code ?? 'PGN_BAD_REQUEST', message };
  return { status: 500, code: 'PGN_INTERNAL', message };
}

/** The server over a ready scorer; `listen()` it. `draining` makes /readyz answer 503 (shutting down). */
export function buildServer(scorer: Scorer, options: ServerOptions = {}): FastifyInstance & { draining: boolean } {
  const maxBody = options.maxBody ?? DEFAULT_MAX_BODY;
  if (!Number.isInteger(maxBody) || maxBody < 1) throw new RangeError(`maxBody must be a positive integer number of bytes, got ${maxBody}`);
  const app = Fastify({ logger: false, bodyLimit: maxBody, return503OnClosing: true }) as unknown as FastifyInstance & { draining: boolean };
  app.draining = false;
  const metrics = new ServerMetrics(() => scorer.load);
  app.removeAllContentTypeParsers();
  const raw = (_req: FastifyRequest, body: Buffer | string, done: (err: null, body: Buffer | string) => void) => done(null, body);
  app.addContentTypeParser(/^image\/[\w.+-]+$/, { parseAs: 'buffer' }, raw);
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, raw);
  // Draining: every response closes its connection, so that no idle keep-alive socket holds the close.
  app.addHook('onSend', async (_req, reply) => {
    if (app.draining) reply.header('connection', 'close');
  });
  app.addHook('onResponse', async (req, reply) => metrics.request(req.routeOptions.url ?? 'unknown', reply.statusCode, reply.elapsedTime / 1000));
  app.setErrorHandler(async (err, _req, reply) => {
    const { status, code, message, headers } = errorReply(err);
    if (status === 500) process.stderr.write(`pgn serve: ${code}: ${message}\n`);
    return reply.code(status).headers(headers ?? {}).send({ error: { code, message } });
  });
  app.setNotFoundHandler(async (req, reply) => reply.code(404).send({ error: { code: 'PGN_NOT_FOUND', message: `no route ${req.method} ${req.url}` } }));
  app.post('/v1/score', (req, reply) => scoreRoute(scorer, metrics, options, req, reply));
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => (app.draining
    ? reply.code(503).send({ status: 'draining' })
    : { status: 'ready', model: scorer.session.card.name, scores: scorer.specs.map(scoreLabel), admission: scorer.admission }));
  app.get('/metrics', async (_req, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));
  app.get('/openapi.json', async () => openApiDocument(scorer.specs.map(scoreLabel)));
  return app;
}
