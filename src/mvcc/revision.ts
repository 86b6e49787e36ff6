/**
 * Revisions and their byte encoding.
 *
 * A revision is (main, sub): `main` is the store-wide revision a write transaction creates
 * (a Put, a DeleteRange or a whole Txn bumps it once), `sub` numbers the changes inside that
 * transaction from 0. Revision-keyed rows in the `key` bucket use 16 bytes, big-endian:
 *
 * ```
 *   0        8        16
 *   +--------+--------+
 *   |  main  |  sub   |     memcmp order == (main, sub) order
 *   +--------+--------+
 * ```
 *
 * Both halves are non-negative safe integers (≤ 2^53 − 1), far beyond any reachable revision.
 */
export interface Revision {
  main: number;
  sub: number;
}

export const REVISION_BYTES = 16;

export function encodeRevision(main: number, sub: number): Uint8Array {
  const out = new Uint8Array(REVISION_BYTES);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(main));
  dv.setBigUint64(8, BigInt(sub));
  return out;
}

export function decodeRevision(b: Uint8Array): Revision {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return { main: Number(dv.getBigUint64(0)), sub: Number(dv.getBigUint64(8)) };
}

/** Compares revisions in (main, sub) order. */
export function compareRevision(a: Revision, b: Revision): number {
  return a.main !== b.main ? a.main - b.main : a.sub - b.sub;
}
