/**
 * Parsing of `fluxiond` option values. Pure functions; each throws `InvalidArgumentError` with a
 * message naming the offending value.
 */
import { InvalidArgumentError } from '../util/index.js';

const BYTE_UNITS: Record<string, number> = {
  '': 1, b: 1,
  k: 1e3, m: 1e6, g: 1e9, t: 1e12,
  ki: 2 ** 10, mi: 2 ** 20, gi: 2 ** 30, ti: 2 ** 40,
  kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12,
  kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40,
};

/** Parses a byte size in Kubernetes notation: `1048576`, `512Mi`, `2Gi`, `1G`, `1.5Gi`. */
export function parseBytes(text: string, flag: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = m ? BYTE_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new InvalidArgumentError(`${flag}: ${JSON.stringify(text)} is not a size; use e.g. 512Mi or 2Gi`);
  return Math.floor(Number(m[1]) * unit);
}

/** Parses a whole number (the original server's `invalid numeric option` cases). */
export function parseInteger(text: string, flag: string, min: number, max: number): number {
  if (!/^\s*-?\d+\s*$/.test(text)) throw new InvalidArgumentError(`invalid numeric option ${flag}=${JSON.stringify(text)}`);
  const n = Number(text);
  if (n < min || n > max) throw new InvalidArgumentError(`${flag} must be between ${min} and ${max}, got ${n}`);
  return n;
}
