import type { ReadConsistency } from './replication.js';

/**
 * The seed REST API's view of the keyspace (`/kv`). Implementations replicate writes through
 * a Replicator; reads are linearizable unless `serializable` is asked for.
 * Errors: `InvalidArgumentError`, `TooLargeError`, `NotLeaderError`, `UnavailableError`.
 */
export interface KvService {
  put(key: Uint8Array, value: Uint8Array): Promise<void>;
  /** The value, or undefined when the key is absent. */
  get(key: Uint8Array, consistency: ReadConsistency): Promise<Uint8Array | undefined>;
  delete(key: Uint8Array): Promise<void>;
}

/** Limits of the seed API, documented in docs/http-api.md. */
export const KV_LIMITS = {
  keyBytesMax: 1024,
  valueBytesMax: 1024 * 1024,
} as const;

/** A KvService that refuses every call with the error `refusal()` builds (arbiters hold no data). */
export class RefusingKvService implements KvService {
  constructor(private readonly refusal: () => Error) {}
  async put(): Promise<void> { throw this.refusal(); }
  async get(): Promise<Uint8Array | undefined> { throw this.refusal(); }
  async delete(): Promise<void> { throw this.refusal(); }
}
