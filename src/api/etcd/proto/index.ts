/**
 * api/etcd/proto: the etcd v3 protobuf definitions we own (the .proto files beside this module)
 * and their loader. A layer of its own below both of its users, the etcd API (api/etcd) and
 * the etcd client (client/etcd), as etcd's own `api/etcdserverpb` is: the client must not
 * import the server's layer (docs/decisions/003-layer-rules.md).
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPackageDefinition, type GrpcObject } from '@grpc/grpc-js';
import { loadSync, type Options, type PackageDefinition } from '@grpc/proto-loader';
import { ConureError } from '../../../util/index.js';

const PROTO_SUBDIR = join('src', 'api', 'etcd', 'proto');

/**
 * Where our .proto files live. tsc does not copy them next to the compiled code, so walk up
 * from this module (src/api/etcd/proto or <outDir>/src/api/etcd/proto) to the first directory holding
 * `src/api/etcd/proto/rpc.proto`: the repository (or installed package) root.
 */
export function protoDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 12; i++) {
    const candidate = join(dir, PROTO_SUBDIR);
    if (existsSync(join(candidate, 'rpc.proto'))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new ConureError('internal', `cannot find ${PROTO_SUBDIR}/rpc.proto above ${fileURLToPath(import.meta.url)}`);
}

/**
 * proto-loader options shared by the server and tests: field names as in the .proto files,
 * int64 as decimal strings, enums as names, bytes as Buffers, defaults filled in, oneof names.
 */
export const LOADER_OPTIONS: Options = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

let cached: GrpcObject | undefined;
let cachedDef: PackageDefinition | undefined;

/** proto-loader's definition of rpc.proto (message descriptors, for wire-check.ts), loaded once. */
export function etcdPackageDefinition(): PackageDefinition {
  cachedDef ??= loadSync('rpc.proto', { ...LOADER_OPTIONS, includeDirs: [protoDir()] });
  return cachedDef;
}

/** The `etcdserverpb` package (services and message types), loaded once. */
export function etcdProto(): GrpcObject {
  cached ??= loadPackageDefinition(etcdPackageDefinition()).etcdserverpb as GrpcObject;
  return cached;
}
