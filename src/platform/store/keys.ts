/**
 * The platform's key layout in the store (etcd v3 API), all under one prefix
 * (default `/conure-platform/`):
 *
 * ```
 *  /conure-platform/
 *    tenants/<tenantId>                 TenantRecord (JSON)
 *    tokens/<sha256 of a token>         TokenRecord { tenant } (the lookup index of bearer tokens)
 *    databases/<dbId>                   DatabaseRecord
 *    secrets/<dbId>                     InstanceSecret (never served by the API)
 *    operations/<opId>                  OperationRecord
 *    queue/<opId>                       QueueEntry        ─┐ created with the operation, deleted
 *    locks/<dbId>                       LockRecord         │ with its final state, in one txn
 *    claims/<opId>                      workerId (text)   ─┘ bound to the worker process's lease
 *    idempotency/<tenant>/<key>         IdempotencyRecord (key URI-encoded)
 *    backups/<dbId>/<backupId>          BackupRecord
 *    events/<dbId>/<seq>                EventRecord (seq: 15-digit ms time "-" 6-digit counter)
 *    ports/<n>                          PortRecord (create-if-absent)
 *    leader                             instance id of the leader, bound to its lease
 * ```
 *
 * Ids are path segments: 1..128 characters of [A-Za-z0-9._:-], not starting with '.'; anything
 * else is `invalid_argument`, so no id can reach into another kind's range. Idempotency keys
 * come from clients and are URI-encoded (at most 255 characters before encoding).
 */
import { InvalidArgumentError } from '../../util/index.js';

const SEGMENT = /^[A-Za-z0-9_:-][A-Za-z0-9._:-]{0,127}$/;

/** Checks that `id` is a safe key segment; returns it. */
export function segment(id: string, what = 'id'): string {
  if (typeof id !== 'string' || !SEGMENT.test(id)) throw new InvalidArgumentError(`${what} ${JSON.stringify(id)} is not a valid id (1..128 of [A-Za-z0-9._:-])`);
  return id;
}

export const DEFAULT_PREFIX = '/conure-platform/';

/** Builds every key of the layout under one prefix. */
export class KeyLayout {
  constructor(readonly prefix: string = DEFAULT_PREFIX) {
    if (!prefix.endsWith('/')) throw new InvalidArgumentError(`store prefix must end with '/', got ${prefix}`);
  }
  /** `<prefix><kind>/` — the range of one kind. */
  kind(kind: 'tenants' | 'tokens' | 'databases' | 'secrets' | 'operations' | 'queue' | 'locks' | 'claims' | 'idempotency' | 'backups' | 'events' | 'ports'): string { return `${this.prefix}${kind}/`; }
  tenant(id: string): string { return `${this.prefix}tenants/${segment(id, 'tenant id')}`; }
  /** `tokens/<sha256 hex>` → { tenant }: the index a bearer token is looked up by. */
  token(hash: string): string { return `${this.prefix}tokens/${segment(hash, 'token hash')}`; }
  database(id: string): string { return `${this.prefix}databases/${segment(id, 'database id')}`; }
  secret(dbId: string): string { return `${this.prefix}secrets/${segment(dbId, 'database id')}`; }
  operation(id: string): string { return `${this.prefix}operations/${segment(id, 'operation id')}`; }
  queue(opId: string): string { return `${this.prefix}queue/${segment(opId, 'operation id')}`; }
  lock(dbId: string): string { return `${this.prefix}locks/${segment(dbId, 'database id')}`; }
  claim(opId: string): string { return `${this.prefix}claims/${segment(opId, 'operation id')}`; }
  idempotency(tenant: string, key: string): string {
    if (typeof key !== 'string' || key.length === 0 || key.length > 255) throw new InvalidArgumentError('Idempotency-Key must be 1..255 characters');
    return `${this.prefix}idempotency/${segment(tenant, 'tenant id')}/${encodeURIComponent(key)}`;
  }
  backups(dbId: string): string { return `${this.prefix}backups/${segment(dbId, 'database id')}/`; }
  backup(dbId: string, id: string): string { return `${this.backups(dbId)}${segment(id, 'backup id')}`; }
  events(dbId: string): string { return `${this.prefix}events/${segment(dbId, 'database id')}/`; }
  event(dbId: string, seq: string): string { return `${this.events(dbId)}${segment(seq, 'event seq')}`; }
  port(n: number): string {
    if (!Number.isSafeInteger(n) || n < 1 || n > 65535) throw new InvalidArgumentError(`port ${n} is not in 1..65535`);
    return `${this.prefix}ports/${n}`;
  }
  leader(): string { return `${this.prefix}leader`; }
  /** The last segment of `key` (the id of the record it holds). */
  idOf(key: string): string { return key.slice(key.lastIndexOf('/') + 1); }
}
