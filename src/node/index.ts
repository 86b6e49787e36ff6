/**
 * node: a running member (DESIGN.md §2): the raft driver loop over storage, the peer transport
 * and its authentication, joins, membership, snapshots and backups. Implements the seams'
 * Replicator (src/seams/), for a cluster (RaftReplicator) or a single node.
 */
export { RaftReplicator, writeBootstrapState, type RaftReplicatorOptions } from './raft-replicator.js';
export { SingleNodeReplicator, type SingleNodeReplicatorOptions } from './single-node-replicator.js';
export { MembershipService, MEMBER_ID, type Resolver, type JoinResult } from './membership-service.js';
export { joinCluster, anySeedInCluster, isSelf, publishClientUrl, type JoinOptions } from './joiner.js';
export { MemberHttp, type MemberFetchInit } from './member-http.js';
export { PeerSecret, ensurePeerSecretFile } from './peer-auth.js';
export { PeerTransport, type PeerTransportOptions, type TransportStats } from './peer-transport.js';
export { saveSnapshot, restoreSnapshot, snapshotStatus, type SaveResult, type RestoreOptions, type SnapshotStatus } from './backup.js';
export { importEtcdSnapshot, readEtcdSnapshot, type ImportEtcdOptions, type ImportEtcdSummary, type EtcdSnapshotContents } from './etcd-import.js';
export { BoltFile, type BoltEntry } from './bbolt.js';
export { forceNewCluster, forcedMarker, planRecovery, readClusterId, type ForcedMarker, type RecoveryPlan } from './recovery.js';
