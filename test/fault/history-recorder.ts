/**
 * Records a history while a workload runs: every event gets a monotonic time stamp
 * (nanoseconds since the recorder was created) and is kept in memory and, optionally,
 * appended to a JSONL file as it happens, so a crashed run still leaves its history behind.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import type { HistoryEvent } from './checker/history.js';

/** Events kept in memory at most; beyond this the workload must stop (see `full`). */
export const HISTORY_EVENTS_MAX = 2_000_000;

/** An append-only, time-stamped history shared by the workload clients and the nemesis. */
export class HistoryRecorder {
  private readonly origin = process.hrtime.bigint();
  readonly events: HistoryEvent[] = [];
  private readonly out: WriteStream | undefined;

  /** `file`: JSONL file to append to as events arrive (optional). */
  constructor(file?: string) {
    this.out = file ? createWriteStream(file, { flags: 'w' }) : undefined;
    this.out?.on('error', (err) => { this.writeError ??= err; });
  }

  /** The first error writing the file, if any (the in-memory history stays complete). */
  writeError: Error | undefined;

  /** Nanoseconds since the recorder was created (monotonic). */
  now(): number { return Number(process.hrtime.bigint() - this.origin); }

  /** True when the in-memory limit is reached; workloads stop invoking then. */
  get full(): boolean { return this.events.length >= HISTORY_EVENTS_MAX; }

  /** Appends one event, stamping it with the current time. Returns the stamped event. */
  record(e: Omit<HistoryEvent, 'time'>): HistoryEvent {
    const ev = { ...e, time: this.now() } as HistoryEvent;
    this.events.push(ev);
    this.out?.write(JSON.stringify(ev) + '\n');
    return ev;
  }

  /** Flushes and closes the file. */
  async close(): Promise<void> {
    if (!this.out) return;
    await new Promise<void>((resolve) => this.out!.end(() => resolve()));
    if (this.writeError) throw this.writeError;
  }
}
