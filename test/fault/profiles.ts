/**
 * Run profiles: which (nemesis × workload) runs, for how long, with which fault schedule and on
 * which cluster shapes. `short` is what CI runs (`make fault`, about 5 minutes); `long` runs for
 * about an hour with wide, randomized fault windows (`make fault PROFILE=long`).
 */
import { NEMESIS_NAMES } from './nemesis/nemesis.js';

/** One run of a profile. */
export interface PlannedRun { nemesis: string; workload: string }

/** A named set of runs, each for `runMs`. */
export interface Profile {
  name: string;
  runs: readonly PlannedRun[];
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
  /** Cluster shapes; run seed `s` uses `shapes[s % shapes.length]`. */
  shapes: ReadonlyArray<{ members: number; arbiters: number }>;
}

/** Every workload: the seed REST API's `register` and `set`, their etcd gRPC twins, and leases. */
export const WORKLOAD_NAMES = ['register', 'set', 'etcd-register', 'etcd-set', 'lease'] as const;

/** Every nemesis against every workload. */
export function crossRuns(nemeses: readonly string[], workloads: readonly string[]): PlannedRun[] {
  return nemeses.flatMap((nemesis) => workloads.map((workload) => ({ nemesis, workload })));
}

/**
 * Every nemesis against a register and a set workload, alternating the API (seed REST for one
 * nemesis, etcd gRPC for the next, crossed between the two), plus the lease workload under the
 * faults that move or stop the leader. Both APIs meet every kind of fault, in a third of the
 * time of the full cross product.
 */
function pairedRuns(): PlannedRun[] {
  const runs = NEMESIS_NAMES.flatMap((nemesis, i) => [
    { nemesis, workload: i % 2 === 0 ? 'register' : 'etcd-register' },
    { nemesis, workload: i % 2 === 0 ? 'etcd-set' : 'set' },
  ]);
  return [...runs, ...['kill', 'pause', 'isolate-leader', 'transfer'].map((nemesis) => ({ nemesis, workload: 'lease' }))];
}

/** Three voters, and two voters with an arbiter (the smallest shape that survives a lost voter). */
const SMALL_SHAPES = [{ members: 3, arbiters: 0 }, { members: 3, arbiters: 1 }];

export const PROFILES: Record<string, Profile> = {
  short: {
    name: 'short', runs: pairedRuns(), runMs: 8000,
    quietMs: [500, 2000], faultMs: [300, 2000], faultsMax: 20, workers: 5, thinkMs: 10,
    requestTimeoutMs: 5000, opsMax: 50_000, shapes: SMALL_SHAPES,
  },
  long: {
    name: 'long', runs: crossRuns(NEMESIS_NAMES, WORKLOAD_NAMES), runMs: 60_000,
    quietMs: [200, 10_000], faultMs: [100, 8000], faultsMax: 1000, workers: 8, thinkMs: 20,
    requestTimeoutMs: 5000, opsMax: 2_000_000, shapes: [...SMALL_SHAPES, { members: 5, arbiters: 0 }, { members: 5, arbiters: 1 }],
  },
};
