/** The OpenAPI 3.1 description of `pgn serve`'s routes, served at GET /openapi.json. */
const pkg = require('../../package.json') as { version: string };

const error = {
  description: 'An error',
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
};

export function openApiDocument(scores: string[]): object {
  return {
    openapi: '3.1.0',
    info: { title: 'pgn serve', version: pkg.version, description: 'Pixel-wise gradient uncertainty (OoD scores and segments) of one segmentation model over HTTP.' },
    paths: {
      '/v1/score': {
        post: {
          summary: 'Score one encoded image',
          parameters: [
            { name: 'score', in: 'query', description: `Comma-separated scores to report, among the served ones (${scores.join(', ')}); the first is segmented and rendered`, schema: { type: 'string' } },
            { name: 'threshold', in: 'query', description: 'Segments: score > threshold is OoD (default: the server\'s)', schema: { type: 'number' } },
            { name: 'minArea', in: 'query', description: 'Segments: drop those with fewer pixels', schema: { type: 'integer', minimum: 0 } },
            { name: 'output', in: 'query', description: 'json (default), npy (the first score map as .npy float32 [height, width]) or overlay (PNG); also chosen by Accept: application/x-npy or image/png', schema: { enum: ['json', 'npy', 'overlay'] } },
          ],
          requestBody: { required: true, content: { 'image/*': { schema: { type: 'string', format: 'binary' } }, 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } },
          responses: {
            200: {
              description: 'Scored',
              content: {
                'application/json': { schema: { $ref: '#/components/schemas/ScoreResult' } },
                'application/x-npy': { schema: { type: 'string', format: 'binary' } },
                'image/png': { schema: { type: 'string', format: 'binary' } },
              },
            },
            400: { ...error, description: 'Not a usable image (PGN_IMAGE) or a bad query (PGN_BAD_REQUEST)' },
            408: { ...error, description: 'The request exceeded the server\'s time limit (PGN_TIMEOUT)' },
            413: { ...error, description: 'The body is over the size limit (PGN_BODY_TOO_LARGE)' },
            415: { ...error, description: 'Not an image content type (PGN_UNSUPPORTED_MEDIA_TYPE)' },
            503: { ...error, description: 'Overloaded: the queue is full (PGN_OVERLOADED); retry after Retry-After seconds' },
          },
        },
      },
      '/healthz': { get: { summary: 'The process is up', responses: { 200: { description: 'Up' } } } },
      '/readyz': { get: { summary: 'The model is loaded and the server is not draining', responses: { 200: { description: 'Ready' }, 503: { description: 'Shutting down' } } } },
      '/metrics': { get: { summary: 'Prometheus metrics', responses: { 200: { description: 'Prometheus text format', content: { 'text/plain': {} } } } } },
      '/openapi.json': { get: { summary: 'This document', responses: { 200: { description: 'OpenAPI 3.1' } } } },
    },
    components: {
      schemas: {
        Error: { type: 'object', properties: { error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } }, required: ['code', 'message'] } } },
        ScoreResult: {
          type: 'object',
          properties: {
            width: { type: 'integer' },
            height: { type: 'integer' },
            scores: { type: 'object', additionalProperties: { type: 'object', properties: { min: { type: 'number' }, max: { type: 'number' }, mean: { type: 'number' } } } },
            segments: { type: 'array', items: { $ref: '#/components/schemas/Segment' } },
            batchSize: { type: 'integer', description: 'Images in the inference batch that scored this one' },
            timings: { type: 'object', additionalProperties: { type: 'number' }, description: 'Milliseconds per stage' },
          },
        },
        Segment: {
          type: 'object',
          properties: {
            id: { type: 'integer' },
            area: { type: 'integer' },
            bbox: { type: 'array', items: { type: 'integer' }, minItems: 4, maxItems: 4 },
            centroid: { type: 'array', items: { type: 'number' }, minItems: 2, maxItems: 2 },
            meanScore: { type: 'number' },
            maxScore: { type: 'number' },
            majorityClass: { type: ['integer', 'null'] },
          },
        },
      },
    },
  };
}
