/**
 * Which ports an instance needs on a host (the local driver), as PortAllocator reservations.
 * One owner per process, so that a scale-down frees exactly the members that left:
 *
 *   fluxion   owner `<dbId>`              1 port  (WebSocket + HTTP)
 *   conuredb  owner `<dbId>/<memberId>`   3 ports (HTTP, raft, etcd gRPC), per planned member
 *
 * Pure.
 */
import type { DatabaseSpec } from '../types.js';
import { conureDbTopology } from './conuredb.js';

export interface PortRequest { owner: string; count: number }

/** Ports per ConureDB member: HTTP, raft, etcd gRPC, in this order. */
export const CONUREDB_PORTS_PER_MEMBER = 3;

/** The reservations for `spec` of database `dbId`. */
export function portRequests(dbId: string, spec: DatabaseSpec): PortRequest[] {
  if (spec.engine === 'fluxion') return [{ owner: dbId, count: 1 }];
  return conureDbTopology(spec).members.map((m) => ({ owner: memberPortOwner(dbId, m.id), count: CONUREDB_PORTS_PER_MEMBER }));
}

/** The port owner of one ConureDB member. */
export function memberPortOwner(dbId: string, memberId: string): string { return `${dbId}/${memberId}`; }
