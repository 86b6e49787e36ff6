/**
 * mvcc: etcd's MVCC on storage (DESIGN.md §2): the replicated state machine (key index,
 * revisions, leases, auth), the service the etcd API calls, watches, snapshots.
 * Implements the seams' StateMachine and KvService; drives a Replicator it is given.
 */
export type * from './types.js';
export { MvccError, type MvccErrorReason } from './errors.js';
export { fnv1a64, memberIdOf, clusterIdOf } from './ids.js';
export { MvccKvService } from './kv-service.js';
export { Lessor, systemClock, type LeaseClock, type LessorOptions } from './lessor.js';
export { MvccService, DEFAULT_MVCC_LIMITS, type MvccLimits, type MvccServiceOptions, type RangeGate } from './mvcc-service.js';
export {
  MvccStateMachine, BUCKETS, LEASE_TTL_MAX_SECONDS, encodeCommand, leaseKey, importedState,
  type MvccCommand, type MvccObserver, type MvccStateMachineOptions, type ImportedRow,
} from './mvcc-state-machine.js';
export { encodeSnapshot, decodeSnapshot } from './snapshot.js';
export {
  WatchHub, type WatchSpec, type WatchEvent, type WatchDelivery, type WatchSink, type WatchHubOptions, type WatchHandle,
} from './watch-hub.js';
