/** Leader election with fencing (lease + create-if-absent txn on the leader key). */
export { LeaderElection, FencedError, type LeaderElectionOptions } from './leader-election.js';
