/**
 * util: the bottom layer (typed errors, logging, host:port parsing, TLS files, a keyed lock,
 * the OpenAPI generator).
 * Imports no other layer; every layer may import it, raft included (scripts/check-layers.mjs).
 */
export {
  ConureError, InvalidArgumentError, TooLargeError, NotLeaderError, UnavailableError, UnauthenticatedError,
  ClosedError, UnprocessableError, ResourceExhaustedError, asConureError, type ErrorCode, type UnavailableReason,
} from './errors.js';
export { createLogger, type Logger } from './log.js';
export { splitHostPort, joinHostPort } from './host-port.js';
export { TlsFiles, type TlsFilesOptions, type TlsMaterial } from './tls-files.js';
export { KeyedLock } from './keyed-lock.js';
export { openApi, type JsonSchema, type MediaTypes, type ResponseSpec, type SecurityRequirement, type OpenApiSchemaKeys, type OpenApiRoute, type OpenApiOptions } from './openapi.js';
