/**
 * api/etcd: the etcd v3 gRPC services and their JSON gateway (DESIGN.md §2), thin handlers
 * over mvcc's MvccService and the seams' Replicator. The protobuf definitions and their loader
 * are the layer below, api/etcd/proto (shared with the etcd client).
 */
export { createEtcdApi, type EtcdApi, type EtcdApiOptions } from './compose.js';
export { createEtcdGrpcServer, type EtcdGrpcServer, type EtcdGrpcServerOptions } from './grpc-server.js';
export { registerEtcdGateway, toJson, type EtcdGatewayOptions } from './gateway.js';
export { ClientListener, type ClientListenerOptions, type ClientListenerStats } from './client-listener.js';
export { createEtcdClientHttp, type EtcdClientHttpOptions } from './client-http.js';
export { EtcdGrpcMetrics, EtcdServerMetrics, etcdGauges } from './metrics.js';
export { EtcdServices, ETCD_API_VERSION, type EtcdMember, type EtcdServicesOptions, type MembershipForwarder } from './services.js';
export { grpcStatusOf, toServiceError, httpStatusOfGrpc, RpcStatusError } from './grpc-status.js';
