/**
 * Errors specific to Fluxion. All extend `ConureError`, so transports map them by `code`.
 */
import { ConureError } from '../util/errors.js';

/**
 * On-disk data (a WAL segment before the last one, or a snapshot) failed its checksum or framing.
 * Start-up refuses to continue rather than silently dropping acknowledged data; a torn tail of the
 * newest WAL segment is *not* corruption (it is truncated).
 */
export class CorruptionError extends ConureError {
  readonly file: string;
  readonly offset: number;
  constructor(file: string, offset: number, detail: string) {
    super('internal', `corrupt data in ${file} at byte ${offset}: ${detail}`);
    this.file = file;
    this.offset = offset;
  }
}

/** An insert was refused because the `--max-memory` soft limit is reached. Reads and deletes still work. */
export class MemoryLimitError extends ConureError {
  constructor(usedBytes: number, limitBytes: number) {
    super('no_space', `memory limit reached (${formatBytes(usedBytes)} used of ${formatBytes(limitBytes)}); ` +
      'insert refused: delete data or raise --max-memory');
  }
}

/** The write-ahead log failed (write or fsync error); no further writes are accepted until restart. */
export class WalFailedError extends ConureError {
  constructor(cause: unknown) {
    super('unavailable', 'write-ahead log failed; writes are refused until the server restarts', { cause });
  }
}

/** Human-readable byte count, e.g. `1.50 GiB`. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${i === 0 ? v : v.toFixed(2)} ${units[i]}`;
}
