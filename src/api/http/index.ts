/**
 * api/http: the seed REST API, probes and metrics of a member (DESIGN.md §2), thin handlers
 * over the seams (KvService, Replicator) and node's MembershipService. `sendError` is the one
 * mapping of error codes to HTTP statuses, shared with the platform's API.
 */
export { createHttpApi, HEADER_BYTES_MAX, MEMBER_ONLY, type HttpApiOptions } from './server.js';
export { HttpMetrics } from './metrics.js';
export { sendError, HTTP_STATUS, ERROR_SCHEMA } from './errors.js';
