/**
 * storage: LMDB under the state machine and raft (DESIGN.md §2). The StateStore (applied state,
 * with a memory implementation for tests and arbiters) and the durable raft log.
 */
export {
  BUCKET_NAME, compareBytes, encodeUint64, decodeUint64, decodeUint64Exact,
  type StateStore, type KeyValue, type RangeOptions, type StateOp,
} from './state-store.js';
export { LmdbStateStore, envSync, type LmdbStateStoreOptions } from './lmdb-state-store.js';
export { MemoryStateStore, checkBucket, validateOp } from './memory-state-store.js';
export { LmdbRaftLog, raftLogExists, type LogRecord, type SnapshotMark, type PersistBatch } from './raft-log-store.js';
