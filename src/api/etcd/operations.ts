import { MvccError, type KeyValue } from '../../mvcc/index.js';
import {
  decodeDeleteRange, decodePut, decodeRange, decodeTxn, encodeDeleteRangeResult, encodePutResult, encodeRangeResult,
  encodeTxnResult, int64, type Msg,
} from './codec.js';
import type { EtcdServices } from './services.js';
import { RangeTooLargeError, kvEntryBytes } from './range-response.js';

/** A unary etcd RPC: decode the message, call one service method, encode the response. */
export type UnaryOperation = (req: Msg) => Promise<Msg>;

/** Unary RPC names, `Service.Method` as in rpc.proto. */
export type UnaryName =
  | 'KV.Range' | 'KV.Put' | 'KV.DeleteRange' | 'KV.Txn' | 'KV.Compact'
  | 'Lease.LeaseGrant' | 'Lease.LeaseRevoke' | 'Lease.LeaseTimeToLive' | 'Lease.LeaseLeases'
  | 'Cluster.MemberList' | 'Cluster.MemberAdd' | 'Cluster.MemberRemove' | 'Cluster.MemberUpdate' | 'Cluster.MemberPromote'
  | 'Maintenance.Status' | 'Maintenance.Alarm' | 'Maintenance.Defragment' | 'Maintenance.Hash' | 'Maintenance.HashKV'
  | 'Maintenance.MoveLeader' | 'Maintenance.Downgrade'
  | 'Auth.AuthStatus';

/**
 * Every unary etcd RPC as a transport-neutral function over proto-shaped objects. The gRPC
 * server and the JSON gateway both dispatch here, so they cannot drift apart. Thrown errors are
 * mapped by the transport (grpc-status.ts). Auth methods other than AuthStatus are answered by
 * `authNotEnabled`.
 */
export function unaryOperations(svc: EtcdServices): Record<UnaryName, UnaryOperation> {
  const h = (rev?: number) => svc.header(rev);
  const hc = () => svc.clusterHeader();
  const ids = (v: unknown): string => String(v ?? '0');
  const strings = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : []);
  return {
    'KV.Range': async (m) => {
      // The gateway's path (gRPC encodes Range itself, grpc-server.ts): the same response limit.
      const max = svc.mvcc.limits.rangeResponseBytesMax;
      const kvs: KeyValue[] = [];
      let size = 0;
      const r = await svc.mvcc.rangeEach(decodeRange(m), (kv) => {
        size += kvEntryBytes(kv);
        if (size <= max) kvs.push(kv);
      });
      if (size > max) throw new RangeTooLargeError(size, max);
      return encodeRangeResult({ ...r, kvs }, h(r.revision));
    },
    'KV.Put': async (m) => {
      const r = await svc.mvcc.put(decodePut(m));
      return encodePutResult(r, h(r.revision));
    },
    'KV.DeleteRange': async (m) => {
      const r = await svc.mvcc.deleteRange(decodeDeleteRange(m));
      return encodeDeleteRangeResult(r, h(r.revision));
    },
    'KV.Txn': async (m) => {
      const r = await svc.mvcc.txn(decodeTxn(m));
      return encodeTxnResult(r, h(r.revision));
    },
    'KV.Compact': async (m) => {
      const r = await svc.mvcc.compact(int64(m.revision, 'revision'));
      return { header: h(r.revision) };
    },
    'Lease.LeaseGrant': async (m) => {
      const r = await svc.mvcc.leaseGrant(int64(m.TTL, 'TTL'), int64(m.ID, 'ID'));
      return { header: h(r.revision), ID: String(r.id), TTL: String(r.ttlSeconds), error: '' };
    },
    'Lease.LeaseRevoke': async (m) => {
      const r = await svc.mvcc.leaseRevoke(int64(m.ID, 'ID'));
      return { header: h(r.revision) };
    },
    'Lease.LeaseTimeToLive': async (m) => {
      const id = int64(m.ID, 'ID');
      try {
        const r = await svc.mvcc.leaseTimeToLive(id);
        return { header: h(), ID: String(id), TTL: String(r.remainingSeconds), grantedTTL: String(r.grantedSeconds), keys: m.keys === true ? r.keys : [] };
      } catch (err) {
        // etcd answers an unknown lease with TTL -1 rather than an error.
        if (err instanceof MvccError && err.reason === 'lease_not_found') return { header: h(), ID: String(id), TTL: '-1', grantedTTL: '0', keys: [] };
        throw err;
      }
    },
    'Lease.LeaseLeases': async () => ({ header: h(), leases: (await svc.mvcc.leaseLeases()).map((id) => ({ ID: String(id) })) }),
    // Headers, or none, as etcd 3.4 answers: Cluster headers carry no revision; Alarm,
    // Defragment and MoveLeader responses have no header at all.
    'Cluster.MemberList': async () => ({ header: hc(), members: svc.memberList() }),
    'Cluster.MemberAdd': async (m) => {
      const r = await svc.memberAdd(strings(m.peerURLs), m.isLearner === true);
      return { header: hc(), member: r.member, members: r.members };
    },
    'Cluster.MemberRemove': async (m) => ({ header: hc(), members: await svc.memberRemove(ids(m.ID)) }),
    'Cluster.MemberUpdate': async (m) => ({ header: hc(), members: await svc.memberUpdate(ids(m.ID), strings(m.peerURLs)) }),
    'Cluster.MemberPromote': async (m) => ({ header: hc(), members: await svc.memberPromote(ids(m.ID)) }),
    'Maintenance.Status': async () => {
      const s = svc.status();
      return {
        header: h(), version: s.version, dbSize: String(s.dbSize), leader: s.leader, raftIndex: String(s.raftIndex),
        raftTerm: String(s.raftTerm), raftAppliedIndex: String(s.raftAppliedIndex), errors: s.errors,
        dbSizeInUse: String(s.dbSizeInUse), isLearner: s.isLearner,
      };
    },
    'Maintenance.Alarm': async (m) => {
      const action = enumOf(m.action, ['GET', 'ACTIVATE', 'DEACTIVATE']).toLowerCase() as 'get' | 'activate' | 'deactivate';
      const alarm = enumOf(m.alarm, ['NONE', 'NOSPACE', 'CORRUPT']).toLowerCase() as 'none' | 'nospace' | 'corrupt';
      const list = await svc.alarm(action, ids(m.memberID), alarm);
      return { alarms: list.map((a) => ({ memberID: a.memberId, alarm: a.alarm.toUpperCase() })) };
    },
    'Maintenance.Defragment': async () => {
      svc.defragment();
      return {};
    },
    'Maintenance.Hash': async () => ({ header: h(), hash: svc.hash() }),
    'Maintenance.HashKV': async (m) => {
      const r = svc.hashKv(int64(m.revision, 'revision'));
      return { header: h(r.revision), hash: r.hash, compact_revision: String(r.compactRevision) };
    },
    'Maintenance.MoveLeader': async (m) => {
      await svc.moveLeader(ids(m.targetID));
      return {};
    },
    'Maintenance.Downgrade': async () => { throw new MvccError('not_capable', 'downgrade is not supported'); },
    'Auth.AuthStatus': async () => ({ header: h(), enabled: false, authRevision: '0' }),
  };
}

/** Every Auth RPC except AuthStatus: authentication is a follow-up, so say it is not enabled. */
export const authNotEnabled: UnaryOperation = async () => {
  throw new MvccError('auth_not_enabled', 'authentication is not enabled');
};

/**
 * Answers one LeaseKeepAlive request (a stream message). An unknown or expired lease gets TTL 0,
 * as etcd does; other errors (not leader) are thrown and end the stream.
 */
export async function leaseKeepAliveOnce(svc: EtcdServices, m: Msg): Promise<Msg> {
  const id = int64(m.ID, 'ID');
  try {
    const ttl = await svc.mvcc.leaseKeepAlive(id);
    return { header: svc.header(), ID: String(id), TTL: String(ttl) };
  } catch (err) {
    if (err instanceof MvccError && err.reason === 'lease_not_found') return { header: svc.header(), ID: String(id), TTL: '0' };
    throw err;
  }
}

function enumOf(v: unknown, names: string[]): string {
  if (typeof v === 'number') return names[v] ?? names[0]!;
  if (typeof v === 'string' && names.includes(v.toUpperCase())) return v.toUpperCase();
  return names[0]!;
}
