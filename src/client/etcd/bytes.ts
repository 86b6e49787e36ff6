import { InvalidArgumentError } from '../../util/index.js';
import type { Bytes, KeyValue } from './types.js';

/** `b` as a Buffer (strings are UTF-8). */
export function toBuffer(b: Bytes): Buffer {
  return typeof b === 'string' ? Buffer.from(b, 'utf8') : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/**
 * The range end that selects every key starting with `prefix`: the prefix with its last byte
 * below 0xff incremented and the rest dropped; "\0" (all keys from `prefix`) when every byte is
 * 0xff or the prefix is empty — etcd's `GetPrefixRangeEnd`.
 */
export function prefixEnd(prefix: Bytes): Buffer {
  const b = Buffer.from(toBuffer(prefix));
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i]! < 0xff) {
      const end = b.subarray(0, i + 1);
      end[i] = b[i]! + 1;
      return Buffer.from(end);
    }
  }
  return Buffer.from([0]);
}

/**
 * A wire int64 (decimal string from proto-loader) as a safe non-negative integer. Revisions,
 * versions, counts and TTLs stay far below 2^53; anything else is a protocol violation.
 */
export function safeInt(v: unknown, field: string): number {
  const n = typeof v === 'number' ? v : Number(v ?? 0);
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`etcd answer: ${field} is not a safe integer (${String(v)})`);
  return n;
}

/** A wire int64 that may be negative (a lease TTL of -1 means "expired"). */
export function safeSignedInt(v: unknown, field: string): number {
  return safeInt(v, field);
}

/** A lease id as a canonical decimal string (they are 63-bit: never a double). */
export function leaseId(v: unknown): string {
  const s = String(v ?? '0');
  if (!/^-?\d+$/.test(s)) throw new InvalidArgumentError(`etcd answer: lease id ${s} is not an integer`);
  return BigInt(s).toString();
}

interface WireKv {
  key?: Buffer; value?: Buffer; create_revision?: string; mod_revision?: string; version?: string; lease?: string;
}

/** A wire `mvccpb.KeyValue` as a KeyValue, numbers checked. */
export function fromWireKv(kv: WireKv): KeyValue {
  const create = safeInt(kv.create_revision, 'create_revision');
  const mod = safeInt(kv.mod_revision, 'mod_revision');
  const version = safeInt(kv.version, 'version');
  if (create < 0 || mod < 0 || version < 0) throw new InvalidArgumentError('etcd answer: negative revision or version');
  const keyBytes = kv.key ?? Buffer.alloc(0);
  return {
    key: keyBytes.toString('utf8'),
    keyBytes,
    value: kv.value ?? Buffer.alloc(0),
    createRevision: create,
    modRevision: mod,
    version,
    lease: leaseId(kv.lease),
  };
}

/** The value of `kv` as UTF-8 text. */
export function valueString(kv: KeyValue): string {
  return kv.value.toString('utf8');
}

/** The value of `kv` parsed as JSON; throws `invalid_argument` naming the key when it is not JSON. */
export function valueJson<T>(kv: KeyValue): T {
  try {
    return JSON.parse(kv.value.toString('utf8')) as T;
  } catch (err) {
    throw new InvalidArgumentError(`value of ${kv.key} is not JSON`, { cause: err });
  }
}

/** `value` as the bytes of its JSON text. */
export function jsonBytes(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}
