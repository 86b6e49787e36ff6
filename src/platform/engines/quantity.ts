/**
 * Kubernetes resource quantities, the subset the platform uses: memory and storage sizes in bytes
 * (binary `Ki Mi Gi Ti Pi Ei`, decimal `k M G T P E`, or plain bytes) and CPU in cores (`"2"`,
 * `"1.5"`) or millicores (`"250m"`).
 *
 * Canonical form follows Kubernetes: a quantity keeps its family (binary or decimal) and is
 * written with the largest unit that divides it exactly, so `2Gi` stays `2Gi`, `2048Mi` becomes
 * `2Gi`, `1536Mi` stays `1536Mi` (1.5Gi is not a whole number of Gi) and `1000k` becomes `1M`.
 * CPU is canonical as whole cores when it is a whole number of cores (`"1000m"` → `"1"`), and
 * as millicores otherwise (`"1.5"` → `"1500m"`).
 *
 * Pure: every function throws `InvalidArgumentError` (code `invalid_argument`) with a message
 * naming the field and the value, and never does I/O.
 */
import { InvalidArgumentError } from '../../util/index.js';

/** Unit family of a byte quantity: powers of 1024 (`Mi`) or of 1000 (`M`). */
export type QuantityFamily = 'binary' | 'decimal';

/** Longest quantity string accepted (a guard before any parsing). */
export const QUANTITY_LENGTH_MAX = 32;

const BINARY: ReadonlyArray<[string, number]> = [['Ei', 2 ** 60], ['Pi', 2 ** 50], ['Ti', 2 ** 40], ['Gi', 2 ** 30], ['Mi', 2 ** 20], ['Ki', 2 ** 10]];
const DECIMAL: ReadonlyArray<[string, number]> = [['E', 1e18], ['P', 1e15], ['T', 1e12], ['G', 1e9], ['M', 1e6], ['k', 1e3]];
const UNIT = new Map<string, { factor: number; family: QuantityFamily }>([
  ...BINARY.map(([u, f]) => [u, { factor: f, family: 'binary' as const }] as const),
  ...DECIMAL.map(([u, f]) => [u, { factor: f, family: 'decimal' as const }] as const),
]);

/** A parsed byte quantity. `bytes` is a safe integer; `family` is the unit family it was written in. */
export interface ByteQuantity { bytes: number; family: QuantityFamily }

/**
 * Parses a byte quantity such as `512Mi`, `2Gi`, `1.5Gi`, `500M` or `1048576`.
 * Refuses signs, exponents, milli-bytes (`m`), unknown or lower-case binary units (`mi`, `MB`),
 * fractions that are not a whole number of bytes, and values beyond `Number.MAX_SAFE_INTEGER`.
 * `field` names the value in messages (e.g. `ram`).
 */
export function parseByteQuantity(text: unknown, field = 'quantity'): ByteQuantity {
  if (typeof text !== 'string') throw new InvalidArgumentError(`${field} must be a string quantity such as "2Gi"; got ${describe(text)}`);
  if (text.length === 0 || text.length > QUANTITY_LENGTH_MAX) {
    throw new InvalidArgumentError(`${field} must be a quantity of 1 to ${QUANTITY_LENGTH_MAX} characters such as "2Gi"; got ${JSON.stringify(text.slice(0, QUANTITY_LENGTH_MAX))}`);
  }
  const m = /^([0-9]+)(?:\.([0-9]+))?([A-Za-z]*)$/.exec(text);
  if (!m) throw new InvalidArgumentError(`${field} ${JSON.stringify(text)} is not a quantity: use a non-negative number with an optional unit, e.g. "512Mi", "2Gi" or "1G"`);
  const [, whole, frac = '', unit = ''] = m as unknown as [string, string, string | undefined, string | undefined];
  let factor = 1;
  let family: QuantityFamily = 'binary';
  if (unit !== '') {
    const u = UNIT.get(unit);
    if (!u) {
      const hint = unit === 'm' ? ' ("m" means thousandths, which a byte count cannot have)' : '';
      throw new InvalidArgumentError(`${field} ${JSON.stringify(text)} has an unknown unit ${JSON.stringify(unit)}${hint}; use Ki, Mi, Gi, Ti, Pi, Ei or k, M, G, T, P, E`);
    }
    factor = u.factor;
    family = u.family;
  }
  // Exact arithmetic: whole * factor + frac * factor / 10^len(frac), in bigint.
  const scale = 10n ** BigInt(frac.length);
  const numerator = (BigInt(whole) * scale + BigInt(frac === '' ? '0' : frac)) * BigInt(factor);
  if (numerator % scale !== 0n) throw new InvalidArgumentError(`${field} ${JSON.stringify(text)} is not a whole number of bytes`);
  const bytes = numerator / scale;
  if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) throw new InvalidArgumentError(`${field} ${JSON.stringify(text)} is too large`);
  // A plain number of bytes is canonical in the family that divides it best (binary first).
  if (unit === '') family = Number(bytes) % 1024 === 0 || Number(bytes) % 1000 !== 0 ? 'binary' : 'decimal';
  return { bytes: Number(bytes), family };
}

/** Parses a byte quantity and returns its size in bytes. */
export function parseBytes(text: unknown, field = 'quantity'): number {
  return parseByteQuantity(text, field).bytes;
}

/**
 * Formats a byte count in its canonical form: the largest unit of `family` that divides it
 * exactly, or plain bytes when none does (`formatBytes(1536 * 2**20)` → `"1536Mi"`,
 * `formatBytes(1000, 'binary')` → `"1000"`). `parseBytes(formatBytes(n, f)) === n` for every
 * safe non-negative integer n.
 */
export function formatBytes(bytes: number, family: QuantityFamily = 'binary'): string {
  if (!Number.isSafeInteger(bytes) || bytes < 0) throw new InvalidArgumentError(`a byte count must be a safe non-negative integer; got ${String(bytes)}`);
  if (bytes === 0) return '0';
  for (const [unit, factor] of family === 'binary' ? BINARY : DECIMAL) {
    if (bytes % factor === 0) return `${bytes / factor}${unit}`;
  }
  return String(bytes);
}

/** The canonical spelling of a byte quantity (`"2048Mi"` → `"2Gi"`); throws like {@link parseByteQuantity}. */
export function canonicalBytes(text: unknown, field = 'quantity'): string {
  const q = parseByteQuantity(text, field);
  return formatBytes(q.bytes, q.family);
}

/** Largest CPU accepted, in millicores (a node with 1024 cores). */
export const CPU_MILLI_MAX = 1024 * 1000;

/**
 * Parses a CPU quantity into millicores: `"250m"` → 250, `"1.5"` → 1500, `"2"` → 2000.
 * Refuses finer than a millicore (`"0.0005"`), other units and values above {@link CPU_MILLI_MAX}.
 */
export function parseCpuMilli(text: unknown, field = 'cpu'): number {
  if (typeof text !== 'string') throw new InvalidArgumentError(`${field} must be a string CPU quantity such as "250m" or "2"; got ${describe(text)}`);
  if (text.length === 0 || text.length > QUANTITY_LENGTH_MAX) throw new InvalidArgumentError(`${field} must be a CPU quantity such as "250m" or "2"; got ${JSON.stringify(text.slice(0, QUANTITY_LENGTH_MAX))}`);
  let milli: number;
  const mm = /^([0-9]+)m$/.exec(text);
  if (mm) milli = Number(mm[1]);
  else {
    const m = /^([0-9]+)(?:\.([0-9]+))?$/.exec(text);
    if (!m) throw new InvalidArgumentError(`${field} ${JSON.stringify(text)} is not a CPU quantity: use cores ("2", "1.5") or millicores ("250m")`);
    const frac = (m[2] ?? '').replace(/0+$/, '');
    if (frac.length > 3) throw new InvalidArgumentError(`${field} ${JSON.stringify(text)} is finer than one millicore`);
    milli = Number(m[1]) * 1000 + Number(frac.padEnd(3, '0') || '0');
  }
  if (!Number.isSafeInteger(milli) || milli > CPU_MILLI_MAX) throw new InvalidArgumentError(`${field} ${JSON.stringify(text)} is above ${CPU_MILLI_MAX / 1000} cores`);
  return milli;
}

/** Formats millicores canonically: whole cores as `"2"`, anything else as `"250m"`. */
export function formatCpuMilli(milli: number): string {
  if (!Number.isSafeInteger(milli) || milli < 0) throw new InvalidArgumentError(`millicores must be a safe non-negative integer; got ${String(milli)}`);
  return milli % 1000 === 0 ? String(milli / 1000) : `${milli}m`;
}

/** The canonical spelling of a CPU quantity (`"1000m"` → `"1"`, `"0.25"` → `"250m"`). */
export function canonicalCpu(text: unknown, field = 'cpu'): string {
  return formatCpuMilli(parseCpuMilli(text, field));
}

/** A short, bounded description of an unexpected value for error messages. */
export function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return Array.isArray(value) ? 'an array' : `a ${typeof value}`;
}
