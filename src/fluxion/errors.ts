/**
 * Errors specific to Fluxion. All extend `ConureError`, so transports map them by `code`.
 */
import { ConureError } from '../util/index.js';

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

/**
 * The write-ahead log failed (write, fsync or rotation error); no further writes are accepted
 * until restart. The message names the cause's errno code (e.g. `ENOSPC`), which clients see.
 */
export class WalFailedError extends ConureError {
  /** The cause's errno code (`ENOSPC`, `EIO`, …), or undefined when it has none. */
  readonly causeCode: string | undefined;
  constructor(cause: unknown) {
    const code = (cause as { code?: unknown } | null)?.code;
    const causeCode = typeof code === 'string' ? code : undefined;
    const what = causeCode === 'ENOSPC' ? 'ENOSPC: no space left on device' : causeCode ?? (cause instanceof Error ? cause.message : String(cause));
    super('unavailable', `write-ahead log failed (${what}); writes are refused until the server restarts`, { cause });
    this.causeCode = causeCode;
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
