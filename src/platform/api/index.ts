/** The platform's HTTP API (fastify, OpenAPI from the route schemas) and its metrics. */
export { createPlatformApi, platformOpenApi, type PlatformApiOptions, type HealthSource } from './server.js';
export { PlatformMetrics, type MetricsSources } from './metrics.js';
