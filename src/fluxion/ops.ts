/**
 * Logged operations: the mutations that go through the write-ahead log, their stable on-disk op
 * codes, and the one function that applies them to a store.
 *
 * A WAL record is `(op code, payload)` where the payload is the request's original `data` string.
 * The live path validates the payload once, logs it, and after the fsync applies the decoded
 * operation; recovery decodes the same payload again and applies it through the same `applyOp`,
 * so live state and recovered state cannot drift apart.
 *
 * Op codes are part of the on-disk format: never renumber them.
 */
import {
  canonicalScope, decodeDcol, decodeDdoc, decodeDmrec, decodeDrec, decodeDrrng, decodeIns, decodeKey,
  decodeKeys, decodeSval, ERR,
  type DdocRequest, type DrecRequest, type DrrngRequest, type InsRecord, type KeyRequest, type KeysRequest,
  type MessageType, type Scope, type SvalRequest,
} from './protocol.js';
import { CorruptionError } from './errors.js';
import type { FluxionStore } from './store.js';

export const OP_CODES = { ins: 1, sval: 2, ddoc: 3, dcol: 4, drec: 5, dmrec: 6, drrng: 7, rval: 8, keys: 9 } as const;
export type LoggedType = keyof typeof OP_CODES;
const BY_CODE = new Map<number, LoggedType>(Object.entries(OP_CODES).map(([k, v]) => [v, k as LoggedType]));

export type LoggedOp =
  | { type: 'ins'; records: InsRecord[] }
  | { type: 'sval'; req: SvalRequest }
  | { type: 'ddoc'; req: DdocRequest }
  | { type: 'dcol'; col: string }
  | { type: 'drec' | 'dmrec'; reqs: DrecRequest[] }
  | { type: 'drrng'; req: DrrngRequest }
  | { type: 'rval'; req: KeyRequest }
  | { type: 'keys'; req: KeysRequest };

export function isLoggedType(t: MessageType): t is LoggedType { return t in OP_CODES; }

/** Decodes a mutating request's payload; throws `PayloadError` when invalid. */
export function decodeOp(type: LoggedType, data: string): LoggedOp {
  switch (type) {
    case 'ins': return { type, records: decodeIns(data) };
    case 'sval': return { type, req: decodeSval(data) };
    case 'ddoc': return { type, req: decodeDdoc(data) };
    case 'dcol': return { type, col: decodeDcol(data).col };
    case 'drec': return { type, reqs: [decodeDrec(data)] };
    case 'dmrec': return { type, reqs: decodeDmrec(data) };
    case 'drrng': return { type, req: decodeDrrng(data) };
    case 'rval': return { type, req: decodeKey('rval', data) };
    case 'keys': return { type, req: decodeKeys(data) };
  }
}

/** Decodes a WAL record; a payload that no longer decodes is corruption. */
export function decodeLogged(code: number, payload: string, where: string): LoggedOp {
  const type = BY_CODE.get(code);
  if (type === undefined) throw new CorruptionError(where, 0, `unknown op code ${code}`);
  try {
    return decodeOp(type, payload);
  } catch (err) {
    throw new CorruptionError(where, 0, `undecodable ${type} record: ${(err as Error).message}`);
  }
}

/** The outcome of an API-key change, so the service can update live sessions and answer. */
export type KeysOutcome =
  | { kind: 'added'; key: string; scope: Scope; requested: Scope }
  | { kind: 'removed'; key: string }
  | { kind: 'error'; error: string };

/**
 * Applies one logged operation to `store`. Deterministic: depends only on the store and `op`.
 * `masterKey` is never stored as a scoped key (adding it changes nothing). Returns the keys
 * outcome for `keys` operations, undefined otherwise.
 */
export function applyOp(store: FluxionStore, masterKey: string, op: LoggedOp): KeysOutcome | undefined {
  switch (op.type) {
    case 'ins': store.insert(op.records); return undefined;
    case 'sval': store.setValue(op.req.col, op.req.key, op.req.value); return undefined;
    case 'ddoc': store.deleteDocument(op.req.doc, op.req.col); return undefined;
    case 'dcol': store.deleteCollection(op.col); return undefined;
    case 'drec': case 'dmrec': store.deleteRecords(op.reqs); return undefined;
    case 'drrng': store.deleteRange(op.req); return undefined;
    case 'rval': store.removeValue(op.req.col, op.req.key); return undefined;
    case 'keys': return applyKeys(store, masterKey, op.req);
  }
}

/** Validates an API-key change before it is logged; returns the error text, or undefined when valid. */
export function checkKeys(masterKey: string, req: KeysRequest): string | undefined {
  switch (req.action) {
    case 'add':
      if (canonicalScope(req.scope) === undefined) return ERR.invalidScope;
      if (req.key === '') return ERR.emptyKey;
      return undefined;
    case 'remove':
      if (req.key === masterKey) return ERR.keyNotRemovable;
      return undefined;
    default:
      return ERR.unknownAction;
  }
}

function applyKeys(store: FluxionStore, masterKey: string, req: KeysRequest): KeysOutcome {
  const invalid = checkKeys(masterKey, req);
  if (invalid !== undefined) return { kind: 'error', error: invalid };
  if (req.action === 'add') {
    const scope = canonicalScope(req.scope)!;
    if (req.key !== masterKey) store.putApiKey(req.key, scope);
    return { kind: 'added', key: req.key, scope: req.key === masterKey ? 'read_write_delete' : scope, requested: scope };
  }
  if (!store.removeApiKey(req.key)) return { kind: 'error', error: ERR.keyNotFound };
  return { kind: 'removed', key: req.key };
}
