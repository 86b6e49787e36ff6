/**
 * The Fluxion engine: validation of create and patch requests, and the spec derived from them.
 *
 * A Fluxion database is one process/pod. The tenant chooses only RAM (and the master API key);
 * everything else follows from RAM by the rules below, which the chart `charts/fluxiondb`, the
 * platform and the tests share through {@link fluxionResources}:
 *
 *   storage     = 2 × ram                                    (2Gi → 4Gi, 4Gi → 8Gi)
 *   cpu request = clamp(250m per GiB of ram, 250m, 4000m)    rounded up to a whole millicore
 *   cpu limit   = min(4 × request, 8000m)
 *   --max-memory = ram                                       (fluxiond's soft limit)
 *
 *   ram     512Mi  1Gi   2Gi   4Gi    8Gi    16Gi   64Gi
 *   request 250m   250m  500m  1      2      4      4
 *   limit   1      1     2     4      8      8      8
 *
 * At 512Mi this gives the chart's defaults (requests 250m, limits 1000m = "1"). The caps exist
 * because fluxiond is one Node.js event loop plus fsync and GC threads: more than a few cores
 * are never used, and a request the scheduler cannot place helps nobody.
 *
 * Names: namespace `fluxiondb-<user>` and Helm release `db-<user>`, for a DNS-label user id.
 * Pure: no I/O, clock or randomness. Errors are `InvalidArgumentError` (`invalid_argument`).
 */
import type { FluxionSpec } from '../types.js';
import { InvalidArgumentError } from '../../util/index.js';
import { describe, formatBytes, formatCpuMilli, parseByteQuantity } from './quantity.js';

/** RAM bounds, in bytes. */
export const FLUXION_RAM_BYTES_MIN = 256 * 2 ** 20;
export const FLUXION_RAM_BYTES_MAX = 64 * 2 ** 30;
/** API key length bounds, in characters (printable ASCII, no whitespace). */
export const FLUXION_API_KEY_LENGTH_MIN = 16;
export const FLUXION_API_KEY_LENGTH_MAX = 256;
/** Versions of fluxiond the platform can run; the first is the default. */
export const FLUXION_VERSIONS: readonly string[] = ['1.0'];
/** The CPU rule's constants, in millicores (see the file header). */
export const FLUXION_CPU_REQUEST_MILLI_PER_GIB = 250;
export const FLUXION_CPU_REQUEST_MILLI_MIN = 250;
export const FLUXION_CPU_REQUEST_MILLI_MAX = 4000;
export const FLUXION_CPU_LIMIT_FACTOR = 4;
export const FLUXION_CPU_LIMIT_MILLI_MAX = 8000;
/** Longest user id: `fluxiondb-<user>` must be a DNS label (≤ 63 characters). */
export const USER_ID_LENGTH_MAX = 63 - 'fluxiondb-'.length;

/** What a tenant sends to create a Fluxion database. */
export interface FluxionCreateRequest {
  ram: string;
  apiKey: string;
  /** Only 1 is accepted (vertical scaling only). */
  replicas?: number;
  version?: string;
}

/** What a tenant sends to resize one. */
export interface FluxionPatch { ram: string }

/** Resources derived from RAM, in bytes and millicores. */
export interface FluxionResources {
  ramBytes: number;
  storageBytes: number;
  cpuRequestMilli: number;
  cpuLimitMilli: number;
}

/** The one sizing rule (file header). `ramBytes` must already be within bounds. */
export function fluxionResources(ramBytes: number): FluxionResources {
  const proportional = Math.ceil((ramBytes * FLUXION_CPU_REQUEST_MILLI_PER_GIB) / 2 ** 30);
  const cpuRequestMilli = Math.min(FLUXION_CPU_REQUEST_MILLI_MAX, Math.max(FLUXION_CPU_REQUEST_MILLI_MIN, proportional));
  const cpuLimitMilli = Math.min(FLUXION_CPU_LIMIT_MILLI_MAX, FLUXION_CPU_LIMIT_FACTOR * cpuRequestMilli);
  return { ramBytes, storageBytes: 2 * ramBytes, cpuRequestMilli, cpuLimitMilli };
}

/** Validates a RAM quantity (256Mi–64Gi) and returns its canonical form and bytes. */
export function validateFluxionRam(ram: unknown): { ram: string; bytes: number } {
  if (ram === undefined) throw new InvalidArgumentError('ram is required, as a quantity such as "2Gi" (256Mi to 64Gi)');
  const q = parseByteQuantity(ram, 'ram');
  if (q.bytes < FLUXION_RAM_BYTES_MIN || q.bytes > FLUXION_RAM_BYTES_MAX) {
    throw new InvalidArgumentError(`ram must be between 256Mi and 64Gi; got ${JSON.stringify(ram)}`);
  }
  return { ram: formatBytes(q.bytes, q.family), bytes: q.bytes };
}

/** Validates a master API key: 16–256 printable ASCII characters, no whitespace. Never echoes it. */
export function validateFluxionApiKey(apiKey: unknown): string {
  if (typeof apiKey !== 'string') throw new InvalidArgumentError(`apiKey is required, as a string of ${FLUXION_API_KEY_LENGTH_MIN} to ${FLUXION_API_KEY_LENGTH_MAX} characters; got ${apiKey === undefined ? 'nothing' : `a ${apiKey === null ? 'null' : typeof apiKey}`}`);
  if (apiKey.length < FLUXION_API_KEY_LENGTH_MIN) throw new InvalidArgumentError(`apiKey must be at least ${FLUXION_API_KEY_LENGTH_MIN} characters; got ${apiKey.length}`);
  if (apiKey.length > FLUXION_API_KEY_LENGTH_MAX) throw new InvalidArgumentError(`apiKey must be at most ${FLUXION_API_KEY_LENGTH_MAX} characters; got ${apiKey.length}`);
  for (let i = 0; i < apiKey.length; i++) {
    const c = apiKey.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) {
      throw new InvalidArgumentError(`apiKey must be printable ASCII without whitespace; character ${i + 1} is ${c === 0x20 ? 'a space' : `code ${c}`}`);
    }
  }
  return apiKey;
}

/** The spec for a RAM quantity and version (both already valid). */
export function deriveFluxionSpec(ram: string, version: string): FluxionSpec {
  const { ram: canonical, bytes } = validateFluxionRam(ram);
  const r = fluxionResources(bytes);
  return {
    engine: 'fluxion',
    ram: canonical,
    storage: formatBytes(r.storageBytes, parseByteQuantity(canonical).family),
    cpuRequest: formatCpuMilli(r.cpuRequestMilli),
    cpuLimit: formatCpuMilli(r.cpuLimitMilli),
    replicas: 1,
    version,
  };
}

/**
 * Validates a create request and derives the spec; returns the validated key apart, since it is
 * kept in the instance secret, never in the record. Unknown fields are refused.
 */
export function validateFluxionCreate(body: unknown): { spec: FluxionSpec; apiKey: string } {
  const o = asRecord(body, 'a Fluxion create request');
  refuseUnknown(o, ['ram', 'apiKey', 'replicas', 'version'], 'a Fluxion create request');
  checkReplicas(o.replicas);
  const version = validateVersion(o.version, FLUXION_VERSIONS, 'Fluxion');
  const { ram } = validateFluxionRam(o.ram);
  const apiKey = validateFluxionApiKey(o.apiKey);
  return { spec: deriveFluxionSpec(ram, version), apiKey };
}

/** Validates a patch (`{ ram }`, vertical scaling) against the current spec and returns the new spec. */
export function applyFluxionPatch(current: FluxionSpec, body: unknown): FluxionSpec {
  const o = asRecord(body, 'a Fluxion patch');
  checkReplicas(o.replicas);
  if ('apiKey' in o) throw new InvalidArgumentError('apiKey cannot be patched; use the rotate-key operation');
  refuseUnknown(o, ['ram'], 'a Fluxion patch');
  const { ram } = validateFluxionRam(o.ram);
  return deriveFluxionSpec(ram, current.version);
}

/** Throws unless `user` is a DNS label short enough for `fluxiondb-<user>`. */
export function validateUserId(user: unknown): string {
  if (typeof user !== 'string' || user.length === 0 || user.length > USER_ID_LENGTH_MAX || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(user)) {
    throw new InvalidArgumentError(`user id ${describe(user)} must be 1 to ${USER_ID_LENGTH_MAX} lower-case letters, digits or '-', starting and ending with a letter or digit`);
  }
  return user;
}

/** Kubernetes namespace of a user's Fluxion databases: `fluxiondb-<user>`. */
export function fluxionNamespace(user: string): string { return `fluxiondb-${validateUserId(user)}`; }

/** Helm release name of a user's Fluxion database: `db-<user>`. */
export function fluxionRelease(user: string): string { return `db-${validateUserId(user)}`; }

function checkReplicas(replicas: unknown): void {
  if (replicas === undefined || replicas === 1) return;
  throw new InvalidArgumentError(`replicas must be 1 (got ${describe(replicas)}): Fluxion scales vertically only; change ram instead`);
}

// ---- shared request helpers (used by conuredb.ts too) ----------------------------------------

/** `body` as a plain object, or an `InvalidArgumentError` naming `what`. */
export function asRecord(body: unknown, what: string): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new InvalidArgumentError(`${what} must be a JSON object; got ${describe(body)}`);
  return body as Record<string, unknown>;
}

/** Refuses fields outside `allowed`, naming the first one. */
export function refuseUnknown(o: Record<string, unknown>, allowed: readonly string[], what: string): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) throw new InvalidArgumentError(`${what} has an unknown field ${JSON.stringify(k.slice(0, 40))}; allowed: ${allowed.join(', ')}`);
  }
}

/** The requested version, or the default (first of `supported`). */
export function validateVersion(version: unknown, supported: readonly string[], engine: string): string {
  if (version === undefined) return supported[0]!;
  if (typeof version !== 'string' || !supported.includes(version)) {
    throw new InvalidArgumentError(`version ${describe(version)} is not a supported ${engine} version; supported: ${supported.join(', ')}`);
  }
  return version;
}
