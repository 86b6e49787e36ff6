/**
 * FluxionDB wire protocol: message types, permission classes, scopes, field coercion and the
 * payload decoders (see shared/specs/fluxion-protocol.md §2, §5, §6).
 *
 * Decoders are pure: they take the `data` string of a request and return a typed request, or
 * throw `PayloadError` (the original server closes the socket in that case; `fluxiond` answers
 * with an error carrying the request id unless started with `--compat-close`). They never touch
 * the store.
 */
import { ConureError, InvalidArgumentError } from '../util/index.js';

/** Every request type the server understands. `auth` is answered with a fixed error. */
export const MESSAGE_TYPES = [
  'ins', 'qry', 'qdoc', 'cols', 'ddoc', 'dcol', 'drec', 'dmrec', 'drrng',
  'sval', 'gval', 'gvalues', 'gvals', 'gkeys', 'rval', 'conn', 'keys',
] as const;
export type MessageType = (typeof MESSAGE_TYPES)[number];

/** R read, W write, D delete, M master key only (checked after the D scope check). */
export type Permission = 'R' | 'W' | 'D' | 'M';

export const PERMISSIONS: Readonly<Record<MessageType, Permission>> = {
  qry: 'R', qdoc: 'R', cols: 'R', gval: 'R', gvalues: 'R', gvals: 'R', gkeys: 'R', conn: 'R',
  ins: 'W', sval: 'W',
  ddoc: 'D', dcol: 'D', drec: 'D', dmrec: 'D', drrng: 'D', rval: 'D',
  keys: 'M',
};

const TYPE_SET: ReadonlySet<string> = new Set(MESSAGE_TYPES);
export function isMessageType(t: string): t is MessageType { return TYPE_SET.has(t); }

/** Types that change state and therefore go through the write-ahead log. */
export const MUTATING: ReadonlySet<MessageType> = new Set<MessageType>([
  'ins', 'sval', 'ddoc', 'dcol', 'drec', 'dmrec', 'drrng', 'rval', 'keys',
]);

export type Scope = 'readonly' | 'read_write' | 'read_write_delete';

/** Whether `scope` may run a request of permission class `p` (the M class needs D, then the master check). */
export function scopeAllows(scope: Scope, p: Permission): boolean {
  switch (p) {
    case 'R': return true;
    case 'W': return scope !== 'readonly';
    case 'D': case 'M': return scope === 'read_write_delete';
  }
}

/** Lower-cases and strips spaces, commas, hyphens and underscores (used for `action` and `scope`). */
export function normalizeToken(s: string): string {
  return s.toLowerCase().replace(/[\s,\-_]/g, '');
}

/** Canonical scope of a user-supplied scope string, or undefined when it is not one. */
export function canonicalScope(s: string): Scope | undefined {
  switch (normalizeToken(s)) {
    case 'readonly': return 'readonly';
    case 'readwrite': return 'read_write';
    case 'readwritedelete': return 'read_write_delete';
    default: return undefined;
  }
}

/** A request payload failed validation (wrong JSON kind, a required field missing or invalid). */
export class PayloadError extends InvalidArgumentError {}

/** The `error` texts the original server sends, shared by the service and the tests. */
export const ERR = {
  permissionDenied: 'permission denied',
  unknownType: 'Unknown message type',
  auth: 'auth messages are not supported; use the api-key query parameter',
  masterOnly: 'only the master key may manage API keys',
  invalidScope: 'invalid scope',
  emptyKey: 'api key cannot be empty',
  keyNotFound: 'api key not found',
  keyNotRemovable: 'api key cannot be removed',
  unknownAction: 'unknown action',
} as const;

// ---- field coercion (spec §2) -------------------------------------------------------------

/** A JSON string, or `""` for any other kind. */
export function str(v: unknown): string { return typeof v === 'string' ? v : ''; }

/** JSON integer (floats truncated), a string's leading integer, else 0. */
export function int(v: unknown): number {
  if (typeof v === 'number') return Number.isFinite(v) ? Math.trunc(v) : 0;
  if (typeof v === 'string') {
    const m = /^[+-]?\d+/.exec(v);
    return m ? Math.trunc(Number(m[0])) : 0;
  }
  return 0;
}

/** JSON boolean, or a number (non-zero = true), else false. */
export function bool(v: unknown): boolean {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v !== 0;
  return false;
}

// ---- decoded requests ---------------------------------------------------------------------

export interface InsRecord { col: string; doc: string; ts: number; data: string }
export interface QryRequest { col: string; ts: number; doc: string; from: number; where: string; filter: string }
export interface QdocRequest {
  col: string; doc: string; from: number; to: number; limit: number; reverse: boolean; where: string; filter: string;
}
export interface DdocRequest { doc: string; col: string }
export interface ColRequest { col: string }
export interface DrecRequest { col: string; doc: string; ts: number }
export interface DrrngRequest { col: string; doc: string; fromTs: number; toTs: number }
export interface SvalRequest { col: string; key: string; value: string }
export interface KeyRequest { col: string; key: string }
export interface KeysRequest { action: string; key: string; scope: string }

type Obj = Record<string, unknown>;

function parseJson(type: string, data: string): unknown {
  try {
    return JSON.parse(data);
  } catch (err) {
    throw new PayloadError(`${type}: data is not valid JSON`, { cause: err });
  }
}

function parseObject(type: string, data: string): Obj {
  const v = parseJson(type, data);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new PayloadError(`${type}: data must be a JSON object`);
  return v as Obj;
}

function parseArray(type: string, data: string): unknown[] {
  const v = parseJson(type, data);
  if (!Array.isArray(v)) throw new PayloadError(`${type}: data must be a JSON array`);
  return v;
}

function need(ok: boolean, type: string, what: string): void {
  if (!ok) throw new PayloadError(`${type}: ${what}`);
}

function isObj(v: unknown): v is Obj { return typeof v === 'object' && v !== null && !Array.isArray(v); }

/**
 * `ins`: an array of objects; element fields are coerced, not validated (spec quirk). The parsed
 * elements are normalised in place and returned (no per-record copy on the hot path).
 */
export function decodeIns(data: string): InsRecord[] {
  const arr = parseArray('ins', data);
  for (let i = 0; i < arr.length; i++) {
    const e = arr[i];
    if (!isObj(e)) throw new PayloadError(`ins: element ${i} must be an object`);
    if (typeof e.col !== 'string') e.col = '';
    if (typeof e.doc !== 'string') e.doc = '';
    if (typeof e.ts !== 'number' || !Number.isSafeInteger(e.ts)) e.ts = int(e.ts);
    if (typeof e.data !== 'string') e.data = '';
  }
  return arr as InsRecord[];
}

export function decodeQry(data: string): QryRequest {
  const o = parseObject('qry', data);
  const r: QryRequest = {
    col: str(o.col), ts: int(o.ts), doc: str(o.doc), from: int(o.from), where: str(o.where), filter: str(o.filter),
  };
  need(r.col !== '', 'qry', '`col` is required');
  need(r.ts > 0, 'qry', '`ts` must be a positive integer');
  return r;
}

export function decodeQdoc(data: string): QdocRequest {
  const o = parseObject('qdoc', data);
  const r: QdocRequest = {
    col: str(o.col), doc: str(o.doc), from: int(o.from), to: int(o.to), limit: int(o.limit),
    reverse: bool(o.reverse), where: str(o.where), filter: str(o.filter),
  };
  need(r.col !== '', 'qdoc', '`col` is required');
  need(r.doc !== '', 'qdoc', '`doc` is required');
  need(r.to > 0, 'qdoc', '`to` must be a positive integer');
  need(r.from <= r.to, 'qdoc', '`from` must not exceed `to`');
  return r;
}

export function decodeDdoc(data: string): DdocRequest {
  const o = parseObject('ddoc', data);
  const r = { doc: str(o.doc), col: str(o.col) };
  need(r.doc !== '', 'ddoc', '`doc` is required');
  return r;
}

/** `dcol`: `col` required. */
export function decodeDcol(data: string): ColRequest {
  const o = parseObject('dcol', data);
  const r = { col: str(o.col) };
  need(r.col !== '', 'dcol', '`col` is required');
  return r;
}

/** `gvals`, `gkeys`: `col` (an absent collection simply yields an empty answer). */
export function decodeCol(type: 'gvals' | 'gkeys', data: string): ColRequest {
  return { col: str(parseObject(type, data).col) };
}

function drecFrom(type: string, o: Obj): DrecRequest {
  const r = { col: str(o.col), doc: str(o.doc), ts: int(o.ts) };
  need(r.col !== '' && r.doc !== '', type, '`col` and `doc` are required');
  need(r.ts > 0, type, '`ts` must be a positive integer');
  return r;
}

export function decodeDrec(data: string): DrecRequest { return drecFrom('drec', parseObject('drec', data)); }

/** `dmrec`: every element is validated before anything is deleted. */
export function decodeDmrec(data: string): DrecRequest[] {
  const arr = parseArray('dmrec', data);
  return arr.map((e, i) => {
    if (!isObj(e)) throw new PayloadError(`dmrec: element ${i} must be an object`);
    return drecFrom('dmrec', e);
  });
}

export function decodeDrrng(data: string): DrrngRequest {
  const o = parseObject('drrng', data);
  const r = { col: str(o.col), doc: str(o.doc), fromTs: int(o.fromTs), toTs: int(o.toTs) };
  need(r.col !== '' && r.doc !== '', 'drrng', '`col` and `doc` are required');
  need(r.fromTs > 0 && r.toTs > 0, 'drrng', '`fromTs` and `toTs` must be positive integers');
  need(r.fromTs <= r.toTs, 'drrng', '`fromTs` must not exceed `toTs`');
  return r;
}

export function decodeSval(data: string): SvalRequest {
  const o = parseObject('sval', data);
  const r = { col: str(o.col), key: str(o.key), value: str(o.value) };
  need(r.col !== '' && r.key !== '' && r.value !== '', 'sval', '`col`, `key` and `value` must be non-empty strings');
  return r;
}

/** `gval`, `gvalues`, `rval`: `col` and `key` required. */
export function decodeKey(type: 'gval' | 'gvalues' | 'rval', data: string): KeyRequest {
  const o = parseObject(type, data);
  const r = { col: str(o.col), key: str(o.key) };
  need(r.col !== '' && r.key !== '', type, '`col` and `key` are required');
  return r;
}

export function decodeKeys(data: string): KeysRequest {
  const o = parseObject('keys', data);
  return { action: normalizeToken(str(o.action)), key: str(o.key), scope: str(o.scope) };
}

/** Maps an error to the `error` text of a reply; internal failures never leak stack traces. */
export function errorText(err: unknown): string {
  if (err instanceof ConureError) return err.message;
  return 'internal error';
}
