/**
 * The etcd v3 client: EtcdClient (unary calls with failover), Txn builders, LeaseKeeper,
 * Watcher, and JSON helpers; EtcdMirror (a live copy between two servers, `conurectl migrate
 * from-etcd`). See client.ts for the failover and error rules.
 */
export { EtcdClient, type EtcdClientOptions } from './client.js';
export { LeaseKeeper, type LeaseKeeperOptions } from './lease-keeper.js';
export { Watcher, type WatchHandler, type WatchOptions } from './watch.js';
export { compare, op, Txn } from './txn.js';
export { prefixEnd, valueJson, valueString, jsonBytes, toBuffer } from './bytes.js';
export { fromGrpcError } from './errors.js';
export {
  EtcdMirror, MirrorError, printable, hexLease,
  type MirrorOptions, type MirrorStats, type CheckResult, type Mismatch, type MismatchKind, type MirrorErrorReason,
} from './mirror.js';
export type * from './types.js';
