import { pack, unpack } from 'msgpackr';
import { InvalidArgumentError, TooLargeError } from '../util/errors.js';
import type { StateStore } from '../storage/state-store.js';
import { KV_LIMITS, type KvService } from './kv-service.js';
import { exportStore, restoreStore } from './state-export.js';
import type { ReadConsistency, Replicator, SnapshottableStateMachine } from './types.js';

const BUCKET = 'kv';

type PlainKvCommand = { t: 'put'; k: Uint8Array; v: Uint8Array } | { t: 'del'; k: Uint8Array };

/**
 * A plain key → value state machine over the `kv` bucket of a StateStore: the keyspace of the
 * seed REST API before the etcd MVCC store serves it. Commands are msgpack-encoded; unknown
 * commands are ignored (the index still advances) so a newer peer cannot wedge an older one.
 */
export class PlainKvStateMachine implements SnapshottableStateMachine {
  constructor(private readonly store: StateStore) {}

  apply(index: number, command: Uint8Array): unknown {
    const cmd = unpack(command) as PlainKvCommand;
    if (cmd?.t === 'put') this.store.apply(index, [{ op: 'put', bucket: BUCKET, key: cmd.k, value: cmd.v }]);
    else if (cmd?.t === 'del') this.store.apply(index, [{ op: 'del', bucket: BUCKET, key: cmd.k }]);
    else this.store.apply(index, []);
    return undefined;
  }

  applyNoop(index: number): void { this.store.apply(index, []); }
  appliedIndex(): number { return this.store.appliedIndex(); }
  sync(): Promise<void> { return this.store.sync(); }
  batch<T>(fn: () => T): T { return this.store.batch(fn); }

  exportState(): { index: number; data: Uint8Array } { return exportStore(this.store); }
  restoreState(index: number, data: Uint8Array): Promise<void> { return restoreStore(this.store, index, data); }

  read(key: Uint8Array): Uint8Array | undefined { return this.store.get(BUCKET, key); }
}

/** KvService over a Replicator and a PlainKvStateMachine. Validates limits before proposing. */
export class PlainKvService implements KvService {
  constructor(private readonly replicator: Replicator, private readonly sm: PlainKvStateMachine) {}

  async put(key: Uint8Array, value: Uint8Array): Promise<void> {
    checkKey(key);
    if (value.length > KV_LIMITS.valueBytesMax) throw new TooLargeError(`value is ${value.length} bytes; the limit is ${KV_LIMITS.valueBytesMax}`);
    await this.replicator.propose(pack({ t: 'put', k: key, v: value } satisfies PlainKvCommand));
  }

  async get(key: Uint8Array, consistency: ReadConsistency): Promise<Uint8Array | undefined> {
    checkKey(key);
    if (consistency === 'linearizable') await this.replicator.readBarrier();
    return this.sm.read(key);
  }

  async delete(key: Uint8Array): Promise<void> {
    checkKey(key);
    await this.replicator.propose(pack({ t: 'del', k: key } satisfies PlainKvCommand));
  }
}

export function checkKey(key: Uint8Array): void {
  if (key.length === 0) throw new InvalidArgumentError('missing key');
  if (key.length > KV_LIMITS.keyBytesMax) throw new TooLargeError(`key is ${key.length} bytes; the limit is ${KV_LIMITS.keyBytesMax}`);
}
