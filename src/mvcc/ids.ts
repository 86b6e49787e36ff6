/**
 * Stable uint64 identifiers for the etcd API, derived from Conure's string ids.
 *
 * etcd identifies members and clusters by uint64; Conure members have string ids. The mapping
 * is FNV-1a 64-bit over the UTF-8 bytes of the string (offset basis 0xcbf29ce484222325, prime
 * 0x100000001b3), so every member computes the same id for the same name without coordination.
 * A zero result (astronomically unlikely) is mapped to 1, since etcd treats 0 as "none".
 */
export function fnv1a64(s: string): bigint {
  let h = 0xcbf29ce484222325n;
  for (const b of new TextEncoder().encode(s)) {
    h ^= BigInt(b);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h === 0n ? 1n : h;
}

/** The etcd member id of the Conure member `id`. */
export function memberIdOf(id: string): bigint {
  return fnv1a64(`member:${id}`);
}

/** The etcd cluster id of the cluster named `name`. */
export function clusterIdOf(name: string): bigint {
  return fnv1a64(`cluster:${name}`);
}
