/**
 * Random register histories that are linearizable by construction, for property tests.
 *
 * A sequential model (one value per key) is driven by a schedule of process picks. Each pick
 * advances one process through invoke → take effect (apply to the model at this instant) →
 * complete. Because every operation takes effect between its invocation and its completion,
 * the history is linearizable. Some operations complete `info` (after taking effect, or without
 * ever taking effect) and some `fail` (without taking effect), as a real client sees them.
 */
import type { HistoryEvent } from './history.js';

/** One step of a schedule: which process moves, and the random choices it may need. */
export interface ScheduleStep {
  process: number;
  /** 0..2: read, write, cas (at invocation). */
  kind: number;
  key: number;
  /** 0..99: chooses cas expected values and completion outcomes. */
  roll: number;
}

interface Open { f: 'read' | 'write' | 'cas'; key: string; value: unknown; applied: boolean; output?: unknown; casOk?: boolean }

/** Options of `generateHistory`. */
export interface GenerateOptions {
  /** Prefix of written values, to keep them unique across concatenated segments. */
  valuePrefix?: string;
  /** First time stamp. */
  startTime?: number;
  /** Process ids are offset by this (fresh processes for a new segment). */
  processBase?: number;
  /** Initial register values (mutated to the final values). */
  state?: Map<string, unknown>;
}

/** Replays `schedule` against a sequential register model; returns the recorded events. */
export function generateHistory(schedule: readonly ScheduleStep[], opts: GenerateOptions = {}): { events: HistoryEvent[]; endTime: number; state: Map<string, unknown> } {
  const state = opts.state ?? new Map<string, unknown>();
  const open = new Map<number, Open>();
  const events: HistoryEvent[] = [];
  let t = opts.startTime ?? 0;
  let seq = 0;
  const base = opts.processBase ?? 0;
  for (const s of schedule) {
    t += 1 + (s.roll % 3);
    const p = base + s.process;
    const cur = open.get(p);
    const key = `k${s.key}`;
    if (!cur) {
      const f = (['read', 'write', 'cas'] as const)[s.kind % 3]!;
      let value: unknown = null;
      if (f === 'write') value = `${opts.valuePrefix ?? 'v'}${seq++}`;
      if (f === 'cas') {
        const now = state.get(key) ?? null;
        value = [s.roll < 60 ? now : `${opts.valuePrefix ?? 'v'}x${seq}`, `${opts.valuePrefix ?? 'v'}${seq++}`];
      }
      open.set(p, { f, key, value, applied: false });
      events.push({ process: p, type: 'invoke', f, key, value, time: t });
    } else if (!cur.applied && s.roll >= 15) {
      cur.applied = true;
      const now = state.get(cur.key) ?? null;
      if (cur.f === 'read') cur.output = now;
      if (cur.f === 'write') state.set(cur.key, cur.value);
      if (cur.f === 'cas') {
        const [from, to] = cur.value as [unknown, unknown];
        cur.casOk = JSON.stringify(from) === JSON.stringify(now);
        if (cur.casOk) state.set(cur.key, to);
      }
    } else {
      open.delete(p);
      // Not applied: complete as fail or info (did not take effect). Applied: ok, or info for a
      // lost acknowledgement; a cas whose expected value did not match is a fail.
      let type: 'ok' | 'fail' | 'info';
      if (!cur.applied) type = s.roll % 2 === 0 ? 'fail' : 'info';
      else if (cur.f === 'cas' && !cur.casOk) type = 'fail';
      else type = s.roll % 10 === 0 ? 'info' : 'ok';
      const value = cur.f === 'read' ? (type === 'ok' ? cur.output : null) : cur.value;
      events.push({ process: p, type, f: cur.f, key: cur.key, value, time: t });
    }
  }
  return { events, endTime: t, state };
}

/**
 * Builds a history with a guaranteed stale read: a random linearizable segment, then on a fresh
 * process write(k, A) and write(k, B) in sequence, then a second random segment and a final read
 * of k that returns A. A and B are unique values and B's write completes before the read is
 * invoked, so reading A is not linearizable.
 */
export function historyWithStaleRead(before: readonly ScheduleStep[], after: readonly ScheduleStep[], key = 0): HistoryEvent[] {
  const first = generateHistory(before, { valuePrefix: 'a', processBase: 0 });
  let t = first.endTime + 10;
  // Close what the first segment left open as indeterminate (no completion), then start fresh processes.
  const k = `k${key}`;
  const P = 1000;
  const ev: HistoryEvent[] = [...first.events];
  ev.push({ process: P, type: 'invoke', f: 'write', key: k, value: 'STALE', time: t++ });
  ev.push({ process: P, type: 'ok', f: 'write', key: k, value: 'STALE', time: t++ });
  ev.push({ process: P, type: 'invoke', f: 'write', key: k, value: 'NEWER', time: t++ });
  ev.push({ process: P, type: 'ok', f: 'write', key: k, value: 'NEWER', time: t++ });
  first.state.set(k, 'NEWER');
  const second = generateHistory(after, { valuePrefix: 'b', processBase: 2000, startTime: t, state: first.state });
  ev.push(...second.events);
  t = second.endTime + 10;
  ev.push({ process: P, type: 'invoke', f: 'read', key: k, value: null, time: t++ });
  ev.push({ process: P, type: 'ok', f: 'read', key: k, value: 'STALE', time: t++ });
  return ev;
}
