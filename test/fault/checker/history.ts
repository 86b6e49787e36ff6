/**
 * The fault-test history format and its pairing into operations.
 *
 * A history is a sequence of events, one JSON object per line (JSONL), in the order they were
 * recorded (docs/fault-testing.md):
 *
 *   {"process":3,"type":"invoke","f":"write","key":"r1","value":"3-17","time":120034511}
 *   {"process":3,"type":"ok",    "f":"write","key":"r1","value":"3-17","time":121907220}
 *
 * - `process` names a logical client. A process has at most one operation open at a time: an
 *   `invoke` pairs with the next completion (`ok` | `fail` | `info`) of the same process. A
 *   client that gives up on an operation (timeout) records `info` and continues as a NEW
 *   process, because the abandoned request may still be in flight.
 * - `type`: `ok` = took effect, with the value observed; `fail` = certainly did NOT take
 *   effect; `info` = indeterminate (timeout, connection lost): it may take effect at any time
 *   after its invocation, or never. An invocation without a completion is indeterminate too.
 * - `time` is monotonic nanoseconds since the start of the run. Only the order matters.
 * - `f` / `value` per workload: register `read` (value read; null = absent), `write` (value),
 *   `cas` ([expected, new]); set `add` (element) and `read` (array of elements).
 */
import { InvalidArgumentError } from '../../../src/util/errors.js';

/** Outcome of an event; `invoke` opens an operation, the other three complete it. */
export type EventType = 'invoke' | 'ok' | 'fail' | 'info';

/** One line of a history file. */
export interface HistoryEvent {
  process: number | string;
  type: EventType;
  f: string;
  key?: string;
  value?: unknown;
  /** Monotonic nanoseconds since the start of the run. */
  time: number;
  /** Free-form reason, e.g. why an operation is `info`; ignored by the checkers. */
  error?: string;
}

/** An invocation paired with its completion. */
export interface Operation {
  /** Position of the invocation among all invocations of the history (0-based). */
  index: number;
  process: number | string;
  f: string;
  key: string | undefined;
  /** The value given at invocation (write: the value; cas: [expected, new]). */
  input: unknown;
  /** The value given at completion (read: the value read); undefined unless `ok`. */
  output: unknown;
  status: 'ok' | 'fail' | 'info';
  invokeTime: number;
  /** Completion time; `Infinity` for indeterminate operations. */
  completeTime: number;
  /** The two source events (the completion is absent for a never-completed invocation). */
  events: [HistoryEvent] | [HistoryEvent, HistoryEvent];
}

const TYPES = new Set<EventType>(['invoke', 'ok', 'fail', 'info']);

/**
 * Parses JSONL text into events, validating every field it relies on.
 * Throws InvalidArgumentError naming the line of the first malformed event.
 */
export function parseHistory(text: string): HistoryEvent[] {
  const out: HistoryEvent[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    let e: unknown;
    try {
      e = JSON.parse(line);
    } catch (err) {
      throw new InvalidArgumentError(`history line ${i + 1}: not JSON`, { cause: err });
    }
    out.push(validateEvent(e, `history line ${i + 1}`));
  }
  return out;
}

/** Checks one decoded event; `where` prefixes error messages. */
export function validateEvent(e: unknown, where: string): HistoryEvent {
  if (typeof e !== 'object' || e === null) throw new InvalidArgumentError(`${where}: not an object`);
  const o = e as Record<string, unknown>;
  if (typeof o.process !== 'number' && typeof o.process !== 'string') throw new InvalidArgumentError(`${where}: process must be a number or a string`);
  if (typeof o.type !== 'string' || !TYPES.has(o.type as EventType)) throw new InvalidArgumentError(`${where}: type must be invoke, ok, fail or info`);
  if (typeof o.f !== 'string' || o.f === '') throw new InvalidArgumentError(`${where}: f must be a non-empty string`);
  if (o.key !== undefined && typeof o.key !== 'string') throw new InvalidArgumentError(`${where}: key must be a string`);
  if (typeof o.time !== 'number' || !Number.isFinite(o.time)) throw new InvalidArgumentError(`${where}: time must be a finite number`);
  return o as unknown as HistoryEvent;
}

/** Renders events as JSONL (one event per line, trailing newline). */
export function serializeHistory(events: readonly HistoryEvent[]): string {
  return events.map((e) => JSON.stringify(e)).join('\n') + (events.length > 0 ? '\n' : '');
}

/**
 * Pairs invocations with completions, in invocation order. Throws InvalidArgumentError when a
 * process invokes with an operation open, completes with none open, or when times go backwards
 * within a process.
 */
export function pairOperations(events: readonly HistoryEvent[]): Operation[] {
  const open = new Map<string, Operation>();
  const lastTime = new Map<string, number>();
  const ops: Operation[] = [];
  events.forEach((e, i) => {
    const p = `${typeof e.process}:${e.process}`;
    if ((lastTime.get(p) ?? -Infinity) > e.time) throw new InvalidArgumentError(`event ${i + 1}: time goes backwards for process ${e.process}`);
    lastTime.set(p, e.time);
    if (e.type === 'invoke') {
      if (open.has(p)) throw new InvalidArgumentError(`event ${i + 1}: process ${e.process} invokes while an operation is open`);
      const op: Operation = {
        index: ops.length, process: e.process, f: e.f, key: e.key, input: e.value, output: undefined,
        status: 'info', invokeTime: e.time, completeTime: Infinity, events: [e],
      };
      open.set(p, op);
      ops.push(op);
      return;
    }
    const op = open.get(p);
    if (!op) throw new InvalidArgumentError(`event ${i + 1}: process ${e.process} completes without an open operation`);
    if (op.f !== e.f) throw new InvalidArgumentError(`event ${i + 1}: completion f ${e.f} does not match invocation f ${op.f}`);
    open.delete(p);
    op.status = e.type;
    op.events = [op.events[0], e];
    if (e.type === 'ok') { op.output = e.value; op.completeTime = e.time; }
    if (e.type === 'fail') op.completeTime = e.time;
  });
  return ops;
}

/** The events of the given operations, in time order (invocations before completions on ties). */
export function eventsOf(ops: readonly Operation[]): HistoryEvent[] {
  const evs = ops.flatMap((o) => o.events.map((e, j) => ({ e, j, idx: o.index })));
  evs.sort((a, b) => a.e.time - b.e.time || a.j - b.j || a.idx - b.idx);
  return evs.map((x) => x.e);
}
