/** The platform's domain service: tenants, auth, databases, operations, backups, events. */
export { PlatformService, view, sha256Hex, newToken, type Principal, type DatabaseView, type MutationResult, type Idempotency, type PlatformServiceOptions } from './platform-service.js';
export { DatabaseCache } from './database-cache.js';
