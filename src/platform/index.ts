/**
 * platform: the database-as-a-service control plane (DESIGN.md §1, §2). `startPlatform` runs
 * one replica: API, operation workers, status sync, the leader's reconciler, over a ConureDB
 * store. The record types are the platform API's wire types (used by client/platform).
 */
export {
  startPlatform, loadConfig, ConfigError,
  type PlatformConfig, type KubernetesConfig, type Env, type RunningPlatform, type EmbeddedStoreStarter,
} from './platform.js';
export type * from './types.js';
export type { DatabaseView, MutationResult, Principal } from './service/index.js';
export { canBind } from './store/index.js';
export { createPlatformApi, platformOpenApi, PlatformMetrics, type PlatformApiOptions } from './api/index.js';
