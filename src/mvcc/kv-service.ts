import { KV_LIMITS, type KvService, type ReadConsistency } from '../seams/index.js';
import { InvalidArgumentError, TooLargeError } from '../util/index.js';
import type { MvccService } from './mvcc-service.js';

export type { KvService };

/**
 * The seed REST API's KvService (`/kv`) over the MVCC store, so a key written with `curl` is
 * visible to `etcdctl get` and vice versa: each call is one etcd Put, Range or DeleteRange.
 * Reads are linearizable (read barrier first) unless `serializable`.
 * Errors: InvalidArgumentError('missing key') for an empty key, TooLargeError beyond the seed
 * API's KV_LIMITS, MvccError (`no_space`, `request_too_large`), and Replicator errors.
 */
export class MvccKvService implements KvService {
  constructor(private readonly svc: MvccService) {}

  async put(key: Uint8Array, value: Uint8Array): Promise<void> {
    checkKey(key);
    if (value.length > KV_LIMITS.valueBytesMax) throw new TooLargeError(`value is ${value.length} bytes; the limit is ${KV_LIMITS.valueBytesMax}`);
    await this.svc.put({ key, value });
  }

  async get(key: Uint8Array, consistency: ReadConsistency): Promise<Uint8Array | undefined> {
    checkKey(key);
    const r = await this.svc.range({ key, serializable: consistency === 'serializable' });
    return r.kvs[0]?.value;
  }

  async delete(key: Uint8Array): Promise<void> {
    checkKey(key);
    await this.svc.deleteRange({ key });
  }
}

function checkKey(key: Uint8Array): void {
  if (key.length === 0) throw new InvalidArgumentError('missing key');
  if (key.length > KV_LIMITS.keyBytesMax) throw new TooLargeError(`key is ${key.length} bytes; the limit is ${KV_LIMITS.keyBytesMax}`);
}
