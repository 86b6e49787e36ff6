/**
 * Engines: pure validation, sizing and step plans for Fluxion and ConureDB (no I/O, clock or
 * randomness). Used by the API (validation), the operation executor (steps), the drivers
 * (derived resources, ports) and the charts' tests (the Fluxion sizing rule).
 */
export * from './quantity.js';
export * from './fluxion.js';
export * from './conuredb.js';
export * from './steps.js';
export * from './ports.js';
