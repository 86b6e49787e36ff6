import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MvccError, type MvccErrorReason } from '../../mvcc/index.js';
import { ProposalDroppedError } from '../../raft/index.js';
import { ClosedError, ConureError, NotLeaderError, ResourceExhaustedError, TooLargeError, UnavailableError } from '../../util/index.js';
import { grpcStatusOf } from './grpc-status.js';
import { RPC_ERRORS, type RpcErrorName } from './rpctypes.js';

const etcd = (name: RpcErrorName) => ({ code: RPC_ERRORS[name][0], details: RPC_ERRORS[name][1] });

test('every error the etcd API raises is an entry of etcd 3.4\'s rpctypes table, code and text', () => {
  const reasons: Array<[Exclude<MvccErrorReason, 'invalid'>, RpcErrorName]> = [
    ['empty_key', 'EmptyKey'], ['key_not_found', 'KeyNotFound'], ['value_provided', 'ValueProvided'], ['lease_provided', 'LeaseProvided'],
    ['too_many_ops', 'TooManyOps'], ['duplicate_key', 'DuplicateKey'], ['compacted', 'Compacted'], ['future_revision', 'FutureRev'],
    ['no_space', 'NoSpace'], ['lease_not_found', 'LeaseNotFound'], ['lease_exists', 'LeaseExist'], ['lease_ttl_too_large', 'LeaseTTLTooLarge'],
    ['request_too_large', 'RequestTooLarge'], ['member_not_found', 'MemberNotFound'], ['member_exists', 'MemberExist'],
    ['member_not_learner', 'MemberNotLearner'], ['peer_url_exists', 'PeerURLExist'], ['auth_not_enabled', 'AuthNotEnabled'], ['not_capable', 'NotCapable'],
  ];
  for (const [reason, name] of reasons) assert.deepEqual(grpcStatusOf(new MvccError(reason, 'whatever')), etcd(name), reason);
  const others: Array<[unknown, RpcErrorName]> = [
    [new UnavailableError('x', 1, { reason: 'no_leader' }), 'NoLeader'],
    [new UnavailableError('x', 1, { reason: 'leader_changed' }), 'LeaderChanged'],
    [new UnavailableError('x', 1, { reason: 'timeout' }), 'Timeout'],
    [new UnavailableError('x', 1, { reason: 'too_many_requests' }), 'RequestTooManyRequests'],
    [new UnavailableError('x', 1, { reason: 'stopped' }), 'Stopped'],
    [new NotLeaderError(), 'NoLeader'],
    [new NotLeaderError('10.0.0.1:7001'), 'NotLeader'],
    [new ConureError('timeout', 'x'), 'Timeout'],
    [new ClosedError('replicator'), 'Stopped'],
    [new TooLargeError('x'), 'RequestTooLarge'],
    [new ResourceExhaustedError('x'), 'RequestTooManyRequests'],
  ];
  for (const [err, name] of others) assert.deepEqual(grpcStatusOf(err), etcd(name), name);
  // A raft drop without a reason etcd names keeps Unavailable with its own text.
  assert.deepEqual(grpcStatusOf(new ProposalDroppedError('conf-pending')), { code: 14, details: 'etcdserver: proposal dropped: conf-pending' });
});

test('the table is etcd 3.4\'s (spot checks against api/v3rpc/rpctypes/error.go at v3.4)', () => {
  assert.deepEqual(RPC_ERRORS.NoLeader, [14, 'etcdserver: no leader']);
  assert.deepEqual(RPC_ERRORS.NotCapable, [14, 'etcdserver: not capable']); // FailedPrecondition only from 3.5
  assert.deepEqual(RPC_ERRORS.NotSupportedForLearner, [14, 'etcdserver: rpc not supported for learner']);
  assert.deepEqual(RPC_ERRORS.Corrupt, [15, 'etcdserver: corrupt cluster']);
  assert.deepEqual(RPC_ERRORS.RequestTooManyRequests, [8, 'etcdserver: too many requests']);
});
