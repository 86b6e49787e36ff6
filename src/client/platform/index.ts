/**
 * client/platform: the TypeScript client of the platform's REST API. A layer above the platform
 * (it speaks the platform's record types), nested in client/ as DESIGN.md places the clients;
 * the rest of client/ (ConureDB's HTTP and etcd clients) is below the platform, which uses it
 * (docs/decisions/003-layer-rules.md). Its imports of the platform are types only, so loading
 * this client does not load the platform.
 */
export {
  PlatformClient, PlatformApiError,
  type PlatformClientOptions, type Accepted, type CreateFluxion, type CreateConureDb, type WaitOptions, type DatabaseView,
} from './platform-client.js';
