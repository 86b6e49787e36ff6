/**
 * The in-memory Fluxion engine: collections → documents → `Series`, plus a key/value map per
 * collection and the registry of scoped API keys.
 *
 * ```
 *   FluxionStore
 *   ├── collections: Map<col, Collection>
 *   │      ├── docs: Map<doc, Series>   (sorted ts/data columns, see series.ts)
 *   │      └── kv:   Map<key, value>
 *   └── apiKeys: Map<key, Scope>        (scoped keys only; the master key is never stored)
 * ```
 *
 * Ownership and threading: the store is owned by one `FluxionService`; every mutation arrives in
 * write-ahead-log order (live, or replayed at start-up), so applying the same sequence of
 * operations to an empty store always yields the same state. Methods never throw for missing
 * collections, documents or keys (the protocol answers those with empty results).
 *
 * Invariants: a document in `docs` has at least one record; a collection exists once `ins` or
 * `sval` created it and until `dcol`/`ddoc` drops it; collections left empty by record deletes stay
 * (as in the original) until restart, where `pruneEmpty()` removes them.
 */
import type { DrecRequest, DrrngRequest, InsRecord, QdocRequest, QryRequest, Scope } from './protocol.js';
import { parsePattern, QueryBudget, RecordPredicate } from './pattern.js';
import { Series, type SeriesView } from './series.js';

/** Estimated cost of one record beyond its UTF-8 data: ts (8) + offset (8) + average spare capacity. */
export const RECORD_OVERHEAD_BYTES = 20;
/** Estimated cost of a document entry: map slot, name, Series object, three column objects. */
export const DOC_OVERHEAD_BYTES = 400;
/** Estimated cost of one key/value entry beyond its characters. */
export const KV_OVERHEAD_BYTES = 64;

export interface RecordOut { ts: number; data: string }

export class Collection {
  readonly docs = new Map<string, Series>();
  readonly kv = new Map<string, string>();
}

export interface StoreStats {
  collections: number;
  documents: number;
  records: number;
  keyValues: number;
  /** Estimated bytes held by records, documents and key/values (not the whole process); key/value characters count as bytes. */
  estimatedBytes: number;
}

/** A consistent, zero-copy picture of the store for a snapshot writer (see `FluxionStore.pin`). */
export interface StorePicture {
  apiKeys: Array<[string, Scope]>;
  collections: Array<{ name: string; kv: Array<[string, string]>; docs: Array<{ name: string; view: SeriesView; series: Series }> }>;
  records: number;
}

export class FluxionStore {
  private readonly collections = new Map<string, Collection>();
  private readonly apiKeys = new Map<string, Scope>();
  private recordCount = 0;
  private docCount = 0;
  private kvCount = 0;
  private dataBytes = 0;
  private kvChars = 0;
  private restoreCache: Series | undefined;
  private restoreCol = '';
  private restoreDoc = '';

  // ---- records ----------------------------------------------------------------------------

  /** Applies an `ins` batch in array order (a later element with the same identity wins). */
  insert(records: readonly InsRecord[]): void {
    let lastColName: string | undefined;
    let lastCol: Collection | undefined;
    for (const r of records) {
      let col = lastCol;
      if (r.col !== lastColName || col === undefined) {
        col = this.collection(r.col, true);
        lastColName = r.col;
        lastCol = col;
      }
      let s = col.docs.get(r.doc);
      if (s === undefined) {
        s = new Series();
        col.docs.set(r.doc, s);
        this.docCount++;
      }
      const before = s.dataBytes;
      this.recordCount += s.upsert(r.ts, r.data);
      this.dataBytes += s.dataBytes - before;
    }
  }

  /**
   * Appends a run of records of one document while loading a snapshot (see `Series.appendRun`).
   * Runs of a document arrive consecutively and in ascending `ts`, so the last series is cached.
   * A run that is not newer than what the document holds is inserted record by record.
   */
  restoreRun(col: string, doc: string, count: number, tsAt: (k: number) => number, lenAt: (k: number) => number, src: Buffer, srcStart: number): void {
    let s = this.restoreCache;
    if (s === undefined || this.restoreCol !== col || this.restoreDoc !== doc) {
      const c = this.collection(col, true);
      s = c.docs.get(doc);
      if (s === undefined) {
        s = new Series();
        c.docs.set(doc, s);
        this.docCount++;
      }
      this.restoreCache = s;
      this.restoreCol = col;
      this.restoreDoc = doc;
    }
    const before = s.dataBytes;
    const n0 = s.length;
    if (!s.appendRun(count, tsAt, lenAt, src, srcStart)) {
      let off = srcStart;
      for (let k = 0; k < count; k++) {
        const len = lenAt(k);
        s.upsert(tsAt(k), src.toString('utf8', off, off + len));
        off += len;
      }
    }
    this.recordCount += s.length - n0;
    this.dataBytes += s.dataBytes - before;
  }

  /** Ends a snapshot load (drops the cache of `restoreRecord`). */
  restoreDone(): void { this.restoreCache = undefined; }

  /**
   * `qry`: per selected document, the newest record with `ts <= q.ts`, filtered (no fallback).
   * Throws `PatternError` for an unusable regex and `QueryBudgetError` once `budget` runs out.
   */
  latest(q: QryRequest, budget: QueryBudget = QueryBudget.unlimited()): Record<string, RecordOut> {
    const out: Record<string, RecordOut> = Object.create(null) as Record<string, RecordOut>;
    const col = this.collections.get(q.col);
    if (col === undefined) return out;
    const pred = new RecordPredicate(q.where, q.filter);
    const docPattern = parsePattern(q.doc);
    const pick = (name: string, s: Series): void => {
      const i = s.latestAtOrBefore(q.ts);
      if (i < 0) return;
      const ts = s.tsAt(i);
      if (q.from !== 0 && ts < q.from) return;
      const data = s.dataAt(i);
      if (!pred.isEmpty && !pred.keep(data, budget)) return;
      out[name] = { ts, data };
    };
    if (q.doc === '') {
      for (const [name, s] of col.docs) { budget.spend(0); pick(name, s); }
    } else if (docPattern.kind === 'literal') {
      const s = col.docs.get(q.doc);
      if (s !== undefined) pick(q.doc, s);
    } else {
      for (const [name, s] of col.docs) if (budget.search(docPattern, name)) pick(name, s);
    }
    return out;
  }

  /**
   * `qdoc`: records with `from <= ts <= to`, ascending (descending if `reverse`), predicates, then
   * `limit`. Throws `PatternError` for an unusable regex and `QueryBudgetError` once `budget` runs out.
   */
  history(q: QdocRequest, budget: QueryBudget = QueryBudget.unlimited()): RecordOut[] {
    const out: RecordOut[] = [];
    const s = this.collections.get(q.col)?.docs.get(q.doc);
    const pred = new RecordPredicate(q.where, q.filter);
    if (s === undefined) return out;
    const lo = s.lowerBound(q.from);
    const hi = s.upperBound(q.to);
    const limit = q.limit > 0 ? q.limit : Infinity;
    const step = q.reverse ? -1 : 1;
    for (let i = q.reverse ? hi - 1 : lo; i >= lo && i < hi && out.length < limit; i += step) {
      const data = s.dataAt(i);
      budget.spend(0);
      if (pred.isEmpty || pred.keep(data, budget)) out.push({ ts: s.tsAt(i), data });
    }
    return out;
  }

  /** Names of all collections, including key/value-only ones. */
  collectionNames(): string[] { return [...this.collections.keys()]; }

  /**
   * `ddoc`: removes `doc` from `col`, or from every collection when `col` is empty. A visited
   * collection left with no documents and no key/value entries is dropped. (Deliberate deviation:
   * the original also drops the key/value entries of such collections; see docs/fluxion.md.)
   */
  deleteDocument(doc: string, col: string): void {
    const visit = (name: string, c: Collection): void => {
      const s = c.docs.get(doc);
      if (s !== undefined) this.dropSeries(c, doc, s);
      if (c.docs.size === 0 && c.kv.size === 0) this.collections.delete(name);
    };
    if (col !== '') {
      const c = this.collections.get(col);
      if (c !== undefined) visit(col, c);
    } else {
      for (const [name, c] of [...this.collections]) visit(name, c);
    }
  }

  /** `dcol`: drops the collection with all records and key/value entries. */
  deleteCollection(col: string): void {
    const c = this.collections.get(col);
    if (c === undefined) return;
    for (const [doc, s] of [...c.docs]) this.dropSeries(c, doc, s);
    for (const [k, v] of c.kv) this.forgetKv(k, v);
    this.collections.delete(col);
  }

  /** `drec`/`dmrec`: deletes records whose `ts` equals exactly. */
  deleteRecords(reqs: readonly DrecRequest[]): void {
    for (const r of reqs) this.deleteRange({ col: r.col, doc: r.doc, fromTs: r.ts, toTs: r.ts });
  }

  /** `drrng`: deletes records with `fromTs <= ts <= toTs`. */
  deleteRange(r: DrrngRequest): void {
    const c = this.collections.get(r.col);
    const s = c?.docs.get(r.doc);
    if (c === undefined || s === undefined) return;
    const before = s.dataBytes;
    this.recordCount -= s.deleteRange(r.fromTs, r.toTs);
    this.dataBytes += s.dataBytes - before;
    if (s.length === 0) this.dropSeries(c, r.doc, s);
  }

  // ---- key/values -------------------------------------------------------------------------

  setValue(col: string, key: string, value: string): void {
    const c = this.collection(col, true);
    const old = c.kv.get(key);
    if (old !== undefined) this.forgetKv(key, old);
    c.kv.set(key, value);
    this.kvCount++;
    this.kvChars += key.length + value.length;
  }

  /** The value, or `""` when the collection or key is absent. */
  getValue(col: string, key: string): string { return this.collections.get(col)?.kv.get(key) ?? ''; }

  /**
   * `gvalues`: regex → every matching pair; literal → `{key: value-or-""}`; absent collection → `{}`.
   * Throws `PatternError` for an unusable regex and `QueryBudgetError` once `budget` runs out.
   */
  getValues(col: string, key: string, budget: QueryBudget = QueryBudget.unlimited()): Record<string, string> {
    const out: Record<string, string> = Object.create(null) as Record<string, string>;
    const p = parsePattern(key);
    const c = this.collections.get(col);
    if (c === undefined) return out;
    if (p.kind === 'literal') {
      out[key] = c.kv.get(key) ?? '';
    } else {
      for (const [k, v] of c.kv) if (budget.search(p, k)) out[k] = v;
    }
    return out;
  }

  getAllValues(col: string): Record<string, string> {
    const out: Record<string, string> = Object.create(null) as Record<string, string>;
    const c = this.collections.get(col);
    if (c !== undefined) for (const [k, v] of c.kv) out[k] = v;
    return out;
  }

  getKeys(col: string): string[] { return [...(this.collections.get(col)?.kv.keys() ?? [])]; }

  removeValue(col: string, key: string): void {
    const c = this.collections.get(col);
    const old = c?.kv.get(key);
    if (c === undefined || old === undefined) return;
    c.kv.delete(key);
    this.forgetKv(key, old);
  }

  // ---- API keys ---------------------------------------------------------------------------

  /** Registers or re-scopes a scoped key. The caller filters out the master key. */
  putApiKey(key: string, scope: Scope): void { this.apiKeys.set(key, scope); }

  /** Removes a scoped key; false when it was not registered. */
  removeApiKey(key: string): boolean { return this.apiKeys.delete(key); }

  apiKeyScope(key: string): Scope | undefined { return this.apiKeys.get(key); }

  listApiKeys(): Array<[string, Scope]> { return [...this.apiKeys]; }

  // ---- maintenance ------------------------------------------------------------------------

  stats(): StoreStats {
    return {
      collections: this.collections.size,
      documents: this.docCount,
      records: this.recordCount,
      keyValues: this.kvCount,
      estimatedBytes: this.recordCount * RECORD_OVERHEAD_BYTES + this.dataBytes
        + this.docCount * DOC_OVERHEAD_BYTES + this.kvCount * KV_OVERHEAD_BYTES + this.kvChars,
    };
  }

  /** Drops collections with neither documents nor key/value entries (run after recovery). */
  pruneEmpty(): void {
    for (const [name, c] of [...this.collections]) if (c.docs.size === 0 && c.kv.size === 0) this.collections.delete(name);
  }

  /**
   * A consistent picture of the whole store taken in O(documents + key/values) without copying
   * records: each series is pinned (copy-on-write) until the caller passes every
   * `{series, view}` to `release`. Mutations may continue meanwhile.
   */
  pin(): StorePicture {
    const collections: StorePicture['collections'] = [];
    for (const [name, c] of this.collections) {
      const docs: StorePicture['collections'][number]['docs'] = [];
      for (const [doc, series] of c.docs) docs.push({ name: doc, series, view: series.pin() });
      collections.push({ name, kv: [...c.kv], docs });
    }
    return { apiKeys: [...this.apiKeys], collections, records: this.recordCount };
  }

  /** Unpins everything `pin()` pinned. */
  release(p: StorePicture): void {
    for (const c of p.collections) for (const d of c.docs) d.series.unpin(d.view);
  }

  private collection(name: string, create: boolean): Collection {
    let c = this.collections.get(name);
    if (c === undefined && create) {
      c = new Collection();
      this.collections.set(name, c);
    }
    return c!;
  }

  private dropSeries(c: Collection, doc: string, s: Series): void {
    this.recordCount -= s.length;
    this.dataBytes -= s.dataBytes;
    this.docCount--;
    c.docs.delete(doc);
  }

  private forgetKv(key: string, value: string): void {
    this.kvCount--;
    this.kvChars -= key.length + value.length;
  }
}
