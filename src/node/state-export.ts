import { pack, unpack } from 'msgpackr';
import { InvalidArgumentError } from '../util/index.js';
import type { KeyValue, StateStore } from '../storage/index.js';

const FORMAT = 'conure-state-v1';

/**
 * Exports every bucket of a StateStore as one msgpack document `{format, index, buckets}`.
 * Runs synchronously, so no write can interleave: the export is a consistent cut at `index`.
 * Memory: the whole state is held once in memory while exporting.
 */
export function exportStore(store: StateStore): { index: number; data: Uint8Array } {
  const buckets: Array<[string, Array<[Uint8Array, Uint8Array]>]> = store.buckets().map((b) => [b, store.range(b).map((r) => [r.key, r.value])]);
  const index = store.appliedIndex();
  return { index, data: pack({ format: FORMAT, index, buckets }) };
}

/** Restores an export made by `exportStore`; refuses anything else with InvalidArgumentError. */
export async function restoreStore(store: StateStore, index: number, data: Uint8Array): Promise<void> {
  let doc: { format?: string; index?: number; buckets?: Array<[string, Array<[Uint8Array, Uint8Array]>]> };
  try {
    doc = unpack(data) as typeof doc;
  } catch (err) {
    throw new InvalidArgumentError('snapshot data is not a state export', { cause: err });
  }
  if (doc?.format !== FORMAT || !Array.isArray(doc.buckets)) throw new InvalidArgumentError(`snapshot data has format ${JSON.stringify(doc?.format)}, expected ${FORMAT}`);
  const map = new Map<string, KeyValue[]>(doc.buckets.map(([b, rows]) => [b, rows.map(([key, value]) => ({ key, value }))]));
  await store.restore(Math.max(index, doc.index ?? 0), map);
}
