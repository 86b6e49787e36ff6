/**
 * client: TypeScript clients of ConureDB: the seed REST API (ConureHttpClient) and the etcd v3
 * API (EtcdClient and its leases, watches and transactions, in ./etcd/). Below the platform,
 * which keeps its state through them. The platform's own client is the layer client/platform.
 */
export {
  ConureHttpClient, normaliseEndpoint,
  type ConureHttpClientOptions, type StatusResponse, type RaftServer, type RaftConfigResponse,
} from './http-client.js';
export * from './etcd/index.js';
