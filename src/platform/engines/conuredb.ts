/**
 * The ConureDB engine: validation of create and patch requests and the topology they imply.
 *
 * The topology itself comes from `src/planner` (the Helm chart's rules): bootstrap member, voters,
 * an arbiter by `auto|always|never`, quorum and PDB. This file only adds the platform's bounds:
 * 1–7 voters (beyond 7 raft only slows commits down) and a storage quantity per data-bearing
 * member of 256Mi–1Ti that can grow but never shrink (a PVC cannot shrink).
 *
 * Pure: no I/O, clock or randomness. Errors are `InvalidArgumentError` (`invalid_argument`).
 */
import { planTopology, type ArbiterMode, type Topology } from '../../planner/index.js';
import type { ConureDbSpec } from '../types.js';
import { InvalidArgumentError } from '../../util/index.js';
import { asRecord, refuseUnknown, validateVersion } from './fluxion.js';
import { describe, formatBytes, parseByteQuantity } from './quantity.js';

export const CONUREDB_VOTERS_MIN = 1;
export const CONUREDB_VOTERS_MAX = 7;
export const CONUREDB_STORAGE_BYTES_MIN = 256 * 2 ** 20;
export const CONUREDB_STORAGE_BYTES_MAX = 2 ** 40;
/** Versions of conured the platform can run; the first is the default. */
export const CONUREDB_VERSIONS: readonly string[] = ['0.1.0'];
/** Resource-name prefix of every platform cluster (members `conure-bootstrap-0`, `conure-0`, …). */
export const CONUREDB_FULLNAME = 'conure';

/** What a tenant sends to create a ConureDB cluster. */
export interface ConureDbCreateRequest {
  voters: number;
  arbiter: ArbiterMode;
  storage: string;
  version?: string;
}

/** What a tenant sends to change one: voters (scale) and/or storage (resize, grow only). */
export interface ConureDbPatch { voters?: number; storage?: string }

/** Validates a create request and returns the spec; the topology is checked by the planner too. */
export function validateConureDbCreate(body: unknown): ConureDbSpec {
  const o = asRecord(body, 'a ConureDB create request');
  refuseUnknown(o, ['voters', 'arbiter', 'storage', 'version'], 'a ConureDB create request');
  const voters = validateVoters(o.voters);
  const arbiter = validateArbiter(o.arbiter);
  const storage = validateStorage(o.storage);
  const version = validateVersion(o.version, CONUREDB_VERSIONS, 'ConureDB');
  const spec: ConureDbSpec = { engine: 'conuredb', voters, arbiter, storage, version };
  conureDbTopology(spec); // `never` with an even voter count, etc.
  return spec;
}

/** Validates a patch against the current spec and returns the new spec. */
export function applyConureDbPatch(current: ConureDbSpec, body: unknown): ConureDbSpec {
  const o = asRecord(body, 'a ConureDB patch');
  refuseUnknown(o, ['voters', 'storage'], 'a ConureDB patch');
  if (o.voters === undefined && o.storage === undefined) throw new InvalidArgumentError('a ConureDB patch must change voters or storage');
  const next: ConureDbSpec = { ...current };
  if (o.voters !== undefined) next.voters = validateVoters(o.voters);
  if (o.storage !== undefined) {
    next.storage = validateStorage(o.storage);
    if (parseByteQuantity(next.storage).bytes < parseByteQuantity(current.storage).bytes) {
      throw new InvalidArgumentError(`storage can only grow (a volume cannot shrink): ${current.storage} → ${next.storage} refused`);
    }
  }
  conureDbTopology(next);
  return next;
}

/** The cluster a spec implies (members, quorum, PDB); member ids start with `fullname` (default the local driver's `conure`). */
export function conureDbTopology(spec: Pick<ConureDbSpec, 'voters' | 'arbiter'>, fullname = CONUREDB_FULLNAME): Topology {
  return planTopology({ votersReplicas: spec.voters, arbiterMode: spec.arbiter, fullname });
}

function validateVoters(v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < CONUREDB_VOTERS_MIN || v > CONUREDB_VOTERS_MAX) {
    throw new InvalidArgumentError(`voters must be a whole number from ${CONUREDB_VOTERS_MIN} to ${CONUREDB_VOTERS_MAX} (it counts the bootstrap member); got ${describe(v)}`);
  }
  return v;
}

function validateArbiter(a: unknown): ArbiterMode {
  if (a === 'auto' || a === 'always' || a === 'never') return a;
  throw new InvalidArgumentError(`arbiter must be auto, always or never; got ${describe(a)}`);
}

function validateStorage(s: unknown): string {
  if (s === undefined) throw new InvalidArgumentError('storage is required, as a quantity such as "10Gi" (256Mi to 1Ti)');
  const q = parseByteQuantity(s, 'storage');
  if (q.bytes < CONUREDB_STORAGE_BYTES_MIN || q.bytes > CONUREDB_STORAGE_BYTES_MAX) throw new InvalidArgumentError(`storage must be between 256Mi and 1Ti; got ${JSON.stringify(s)}`);
  return formatBytes(q.bytes, q.family);
}
