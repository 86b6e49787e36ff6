/** The platform's store: key layout, typed records with optimistic concurrency, port allocation. */
export { PlatformStore, StoreConflictError, type PlatformStoreOptions, type WriteOptions } from './platform-store.js';
export { KeyLayout, DEFAULT_PREFIX, segment } from './keys.js';
export { StorePortAllocator, canBind, type StorePortAllocatorOptions } from './port-allocator.js';
export type { TenantRecord, TokenRecord, LockRecord, QueueEntry, IdempotencyRecord, PortRecord, Versioned } from './records.js';
