/**
 * Run profiles: which nemeses and workloads run, for how long, with which fault schedule.
 * `short` is what CI runs (`make fault`, about 5 minutes at most); `long` runs for about an hour
 * with wide, randomized fault windows (`make fault PROFILE=long`).
 */
import { NEMESIS_NAMES } from './nemesis/nemesis.js';

/** A named set of runs: every (nemesis × workload), each for `runMs`. */
export interface Profile {
  name: string;
  nemeses: readonly string[];
  workloads: readonly string[];
  /** Workload + nemesis time per run. */
  runMs: number;
  /** Quiet time between faults, ms range. */
  quietMs: [number, number];
  /** Fault duration, ms range. */
  faultMs: [number, number];
  /** Faults per run at most. */
  faultsMax: number;
  /** Client workers. */
  workers: number;
  /** Think time between a worker's operations, ms (uniform in [0, thinkMs]). */
  thinkMs: number;
  /** Request timeout: a slower request is recorded as indeterminate. */
  requestTimeoutMs: number;
  /** Operations per run at most. */
  opsMax: number;
  /** Members per cluster (1 until the replicated cluster lands). */
  members: number;
}

export const PROFILES: Record<string, Profile> = {
  short: {
    name: 'short', nemeses: NEMESIS_NAMES, workloads: ['register', 'set'], runMs: 20_000,
    quietMs: [1000, 3000], faultMs: [300, 2000], faultsMax: 20, workers: 5, thinkMs: 10,
    requestTimeoutMs: 5000, opsMax: 50_000, members: 1,
  },
  long: {
    name: 'long', nemeses: NEMESIS_NAMES, workloads: ['register', 'set'], runMs: 540_000,
    quietMs: [200, 15_000], faultMs: [100, 8000], faultsMax: 1000, workers: 8, thinkMs: 20,
    requestTimeoutMs: 5000, opsMax: 2_000_000, members: 1,
  },
};
