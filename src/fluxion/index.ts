/**
 * fluxion: the time-series engine and its WebSocket server (DESIGN.md §2). Stands alone on
 * util; `startFluxion` assembles the store, the write-ahead log, snapshots and the server.
 */
export { startFluxion, type FluxionConfig, type FluxionApp } from './app.js';
export { parseBytes, parseInteger } from './options.js';
export { FluxionServer, fluxionOpenApi, type ServerOptions } from './server.js';
export { FluxionService, type ServiceOptions } from './service.js';
export { FluxionStore, type StoreStats } from './store.js';
export { FluxionMetrics } from './metrics.js';
