/** Status sync: probes every instance and records its phase (every replica). */
export { StatusSync, type StatusSyncOptions, type ProbeResult } from './status-sync.js';
