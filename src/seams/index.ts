/**
 * The shared seams (DESIGN.md §2): interfaces that a lower layer implements and a higher one
 * drives, kept below both so neither imports the other. Types and constants only, plus one
 * trivial implementation; nothing here imports another layer.
 *
 *   StateMachine ◄─implements─ mvcc/   driven by ─► node/ (RaftReplicator, SingleNodeReplicator)
 *   Replicator   ◄─implements─ node/   used by   ─► mvcc/ (leases, service), api/http, api/etcd
 *   KvService    ◄─implements─ mvcc/   used by   ─► api/http (the seed REST API's /kv)
 */
export type {
  StateMachine, SnapshottableStateMachine, Replicator, Member, MemberObserver, NodeStatus, RaftStats,
  ReadConsistency, Suffrage,
} from './replication.js';
export { KV_LIMITS, RefusingKvService, type KvService } from './kv-service.js';
