/**
 * The injected source of randomness. The raft core never calls Math.random: the only
 * randomness it needs (the election timeout jitter) comes from an `Rng` passed in its config,
 * so a seeded Rng makes a run reproducible.
 */
export interface Rng {
  /** A uniformly distributed integer in [0, bound). `bound` is a positive integer. */
  nextInt(bound: number): number;
}

/**
 * A small, fast, deterministic PRNG (mulberry32). Not cryptographic; the same seed always
 * yields the same sequence. Production nodes seed it from real entropy.
 */
export function createRng(seed: number): Rng {
  let a = seed >>> 0;
  return {
    nextInt(bound: number): number {
      a = (a + 0x6d2b79f5) | 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * bound);
    },
  };
}
