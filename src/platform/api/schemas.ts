/**
 * Response schemas of the platform API (the shapes of src/platform/types.ts as the service
 * returns them), for its OpenAPI document. They describe, they do not filter: the API serializes
 * with JSON.stringify, and the OpenAPI fuzz test (test/e2e/openapi-fuzz) checks every reply
 * against them.
 */
import type { ResponseSpec } from '../../util/index.js';

const str = { type: 'string' } as const;
const time = { type: 'string', format: 'date-time' } as const;
const count = { type: 'integer', minimum: 0 } as const;

export const DATABASE_SCHEMA = {
  type: 'object',
  required: ['id', 'name', 'engine', 'tenant', 'spec', 'status', 'endpoints', 'deletionPolicy', 'generation', 'observedGeneration', 'halted', 'createdAt', 'updatedAt'],
  properties: {
    id: str, name: str, tenant: str,
    engine: { type: 'string', enum: ['fluxion', 'conuredb'] },
    spec: { type: 'object', description: 'Fluxion: engine, ram, storage, cpuRequest, cpuLimit, replicas, version; ConureDB: engine, voters, arbiter, storage, version (empty for a deleted database)' },
    status: {
      type: 'object', required: ['phase', 'message', 'observedAt'],
      properties: {
        phase: { type: 'string', enum: ['Provisioning', 'Ready', 'Critical', 'NotReady', 'Halted', 'Deleting', 'Failed'] },
        message: str, observedAt: time,
        members: { type: 'array', items: { type: 'object', required: ['id', 'role', 'healthy'], properties: { id: str, role: { type: 'string', enum: ['voter', 'learner', 'arbiter'] }, healthy: { type: 'boolean' }, leader: { type: 'boolean' }, detail: str } } },
      },
    },
    endpoints: { type: 'object', additionalProperties: str, description: 'e.g. ws, http, etcd' },
    deletionPolicy: { type: 'string', enum: ['Halt', 'Delete', 'WipeOut', 'DoNotTerminate'] },
    generation: count, observedGeneration: count,
    halted: { type: 'boolean' },
    createdAt: time, updatedAt: time,
  },
};

export const OPERATION_SCHEMA = {
  type: 'object',
  required: ['id', 'type', 'databaseId', 'tenant', 'state', 'params', 'steps', 'progress', 'attempts', 'createdAt', 'updatedAt'],
  properties: {
    id: str, databaseId: str, tenant: str,
    type: { type: 'string', enum: ['create', 'scale', 'resize', 'update', 'backup', 'restore', 'halt', 'resume', 'delete', 'rotate-key', 'repair'] },
    state: { type: 'string', enum: ['queued', 'running', 'succeeded', 'failed', 'cancelled'] },
    params: { type: 'object' },
    steps: { type: 'array', items: { type: 'object', required: ['name', 'state'], properties: { name: str, state: { type: 'string', enum: ['pending', 'running', 'done', 'failed'] }, startedAt: time, finishedAt: time, message: str } } },
    progress: { type: 'integer', minimum: 0, maximum: 100 },
    error: { type: 'object', required: ['code', 'message'], properties: { code: str, message: str } },
    worker: str,
    attempts: count,
    createdAt: time, updatedAt: time, finishedAt: time,
  },
};

export const BACKUP_SCHEMA = {
  type: 'object',
  required: ['id', 'databaseId', 'tenant', 'engine', 'location', 'sizeBytes', 'createdAt'],
  properties: { id: str, databaseId: str, tenant: str, engine: { type: 'string', enum: ['fluxion', 'conuredb'] }, location: str, sizeBytes: count, createdAt: time },
};

export const EVENT_SCHEMA = {
  type: 'object',
  required: ['at', 'databaseId', 'type', 'reason', 'message'],
  properties: { at: time, databaseId: str, type: { type: 'string', enum: ['Normal', 'Warning'] }, reason: str, message: str },
};

export const TENANT_SCHEMA = {
  type: 'object',
  required: ['id', 'name', 'tokens', 'createdAt'],
  properties: { id: str, name: str, tokens: { ...count, description: 'tokens issued' }, createdAt: time },
};

/** A mutation's answer: 202 with the operation that carries it out. */
export const ACCEPTED: ResponseSpec = {
  description: 'accepted: the operation runs asynchronously (GET its Location)',
  headers: { Location: { description: '/v1/operations/<id>', schema: str } },
  content: { 'application/json': { schema: { type: 'object', required: ['database', 'operation'], properties: { database: DATABASE_SCHEMA, operation: OPERATION_SCHEMA } } } },
};

export const list = (name: string, item: object) => ({ type: 'object', required: [name], properties: { [name]: { type: 'array', items: item } } });
