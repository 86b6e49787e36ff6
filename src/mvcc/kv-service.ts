import type { ReadConsistency } from '../node/types.js';
import type { MvccService } from './mvcc-service.js';

/**
 * The seed REST API's view of the keyspace (`/kv`), shared with the etcd API so a key written
 * with `curl` is visible to `etcdctl get` and vice versa. Structurally identical to
 * `node/kv-service.ts`'s KvService.
 * Errors: MvccError (`empty_key`, `request_too_large`, `no_space`), and Replicator errors.
 */
export interface KvService {
  put(key: Uint8Array, value: Uint8Array): Promise<void>;
  /** The value, or undefined when the key is absent. `linearizable` waits for a read barrier first. */
  get(key: Uint8Array, consistency: ReadConsistency): Promise<Uint8Array | undefined>;
  delete(key: Uint8Array): Promise<void>;
}

/** KvService over the MVCC store: each call is one etcd Put, Range or DeleteRange. */
export class MvccKvService implements KvService {
  constructor(private readonly svc: MvccService) {}

  async put(key: Uint8Array, value: Uint8Array): Promise<void> {
    await this.svc.put({ key, value });
  }

  async get(key: Uint8Array, consistency: ReadConsistency): Promise<Uint8Array | undefined> {
    const r = await this.svc.range({ key, serializable: consistency === 'serializable' });
    return r.kvs[0]?.value;
  }

  async delete(key: Uint8Array): Promise<void> {
    await this.svc.deleteRange({ key });
  }
}
