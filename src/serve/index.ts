/**
 * src/serve/ owns `pgn serve`'s HTTP server over a Scorer: routes and error replies (server.ts),
 * Prometheus metrics (metrics.ts) and the OpenAPI document (openapi.ts). The command itself
 * (flags, signals) is src/cli/serve.ts.
 */
export { buildServer, DEFAULT_MAX_BODY } from './server';
export type { ServerOptions } from './server';
