/**
 * Hand-made register histories with their known verdicts. Used by the checker's own tests and
 * by the porcupine agreement test, so both checkers are held to the same cases.
 *
 * `op(process, f, key, value, start, end, outcome, output)` writes an operation as its two
 * events; `end` null means the invocation never completed.
 */
import type { HistoryEvent } from './history.js';

/** A history with the verdict it must get. */
export interface Fixture {
  name: string;
  linearizable: boolean;
  events: HistoryEvent[];
}

type Outcome = 'ok' | 'fail' | 'info';

/** Builds the events of one operation (time-sorted later by `fixture`). */
export function op(process: number, f: string, key: string, value: unknown, start: number, end: number | null, outcome: Outcome = 'ok', output?: unknown): HistoryEvent[] {
  const inv: HistoryEvent = { process, type: 'invoke', f, key, value: f === 'read' ? null : value, time: start };
  if (end === null) return [inv];
  const done: HistoryEvent = { process, type: outcome, f, key, value: f === 'read' ? (outcome === 'ok' ? output ?? value : null) : value, time: end };
  return [inv, done];
}

/** Sorts events by time (invocations first on ties) into a history. */
export function fixture(name: string, linearizable: boolean, ...ops: HistoryEvent[][]): Fixture {
  const events = ops.flat();
  events.sort((a, b) => a.time - b.time || (a.type === 'invoke' ? 0 : 1) - (b.type === 'invoke' ? 0 : 1));
  return { name, linearizable, events };
}

/** Read helper: `read(p, key, valueRead, start, end)`. */
const read = (p: number, key: string, v: unknown, s: number, e: number | null, outcome: Outcome = 'ok') => op(p, 'read', key, v, s, e, outcome, v);
const write = (p: number, key: string, v: unknown, s: number, e: number | null, outcome: Outcome = 'ok') => op(p, 'write', key, v, s, e, outcome);
const cas = (p: number, key: string, from: unknown, to: unknown, s: number, e: number | null, outcome: Outcome = 'ok') => op(p, 'cas', key, [from, to], s, e, outcome);

export const FIXTURES: Fixture[] = [
  fixture('empty history', true),
  fixture('read of an absent key is null', true, read(0, 'x', null, 0, 1)),
  fixture('read of a value never written', false, read(0, 'x', 'a', 0, 1)),
  fixture('sequential write then read', true, write(0, 'x', 'a', 0, 1), read(1, 'x', 'a', 2, 3)),
  fixture('read after an acknowledged write sees nothing', false, write(0, 'x', 'a', 0, 1), read(1, 'x', null, 2, 3)),
  fixture('stale read after an overwrite', false, write(0, 'x', 1, 0, 10), write(0, 'x', 2, 20, 30), read(1, 'x', 1, 40, 50)),
  fixture('reads concurrent with a write may see either value', true,
    write(0, 'x', 'a', 0, 100), read(1, 'x', null, 10, 20), read(2, 'x', 'a', 30, 40), read(1, 'x', 'a', 50, 60)),
  fixture('a value, once read, cannot be unread without a write', false,
    write(0, 'x', 'a', 0, 100), read(1, 'x', 'a', 10, 20), read(2, 'x', null, 30, 40)),
  fixture('touching intervals count as concurrent', true, write(0, 'x', 'a', 0, 10), read(1, 'x', null, 10, 20)),
  fixture('two concurrent writes, reads fix one order', true,
    write(0, 'x', 1, 0, 50), write(1, 'x', 2, 0, 50), read(2, 'x', 2, 60, 70), read(2, 'x', 2, 80, 90)),
  fixture('two concurrent writes, reads disagree on the final value', false,
    write(0, 'x', 1, 0, 50), write(1, 'x', 2, 0, 50), read(2, 'x', 2, 60, 70), read(3, 'x', 1, 80, 90)),
  fixture('overlapping writes then a read that sees the older one after seeing the newer', false,
    write(0, 'x', 1, 0, 10), write(1, 'x', 2, 5, 30), read(2, 'x', 2, 12, 15), read(2, 'x', 1, 16, 20)),
  fixture('indeterminate write may take effect late', true,
    write(0, 'x', 'a', 0, 5, 'info'), read(1, 'x', null, 10, 20), read(1, 'x', 'a', 30, 40)),
  fixture('indeterminate write may never take effect', true, write(0, 'x', 'a', 0, 5, 'info'), read(1, 'x', null, 100, 110)),
  fixture('indeterminate write cannot take effect before its invocation', false,
    read(1, 'x', 'a', 0, 10), write(0, 'x', 'a', 20, 25, 'info')),
  fixture('indeterminate write observed then unobserved', false,
    write(0, 'x', 'a', 0, 5, 'info'), read(1, 'x', 'a', 10, 11), read(1, 'x', null, 12, 13)),
  fixture('never-completed write behaves as indeterminate', true,
    write(0, 'x', 'a', 0, null), read(1, 'x', null, 10, 20), read(1, 'x', 'a', 30, 40)),
  fixture('indeterminate read constrains nothing', true, write(0, 'x', 'a', 0, 5), read(1, 'x', 'zzz', 10, 20, 'info')),
  fixture('failed write did not take effect', false, write(0, 'x', 'a', 0, 5, 'fail'), read(1, 'x', 'a', 10, 20)),
  fixture('failed write, value never seen', true, write(0, 'x', 'a', 0, 5, 'fail'), read(1, 'x', null, 10, 20)),
  fixture('cas succeeds from the current value', true, write(0, 'x', 1, 0, 1), cas(0, 'x', 1, 2, 2, 3), read(1, 'x', 2, 4, 5)),
  fixture('acknowledged cas from a value the register did not hold', false, write(0, 'x', 1, 0, 1), cas(0, 'x', 3, 4, 2, 3)),
  fixture('indeterminate cas may apply', true, write(0, 'x', 1, 0, 1), cas(0, 'x', 1, 2, 2, 3, 'info'), read(1, 'x', 2, 4, 5)),
  fixture('indeterminate cas may not apply', true, write(0, 'x', 1, 0, 1), cas(0, 'x', 1, 2, 2, 3, 'info'), read(1, 'x', 1, 4, 5)),
  fixture('indeterminate cas cannot apply from a wrong value', false,
    write(0, 'x', 1, 0, 1), cas(0, 'x', 5, 2, 2, 3, 'info'), read(1, 'x', 2, 4, 5)),
  fixture('two cas from the same value cannot both succeed', false,
    write(0, 'x', 0, 0, 1), cas(1, 'x', 0, 1, 2, 10), cas(2, 'x', 0, 2, 2, 10)),
  fixture('keys are independent', true,
    write(0, 'x', 1, 0, 10), write(1, 'y', 1, 0, 10), read(2, 'x', 1, 20, 30), read(3, 'y', null, 5, 8)),
  fixture('violation on one key among several', false,
    write(0, 'x', 1, 0, 10), write(1, 'y', 1, 0, 10), read(2, 'x', 1, 20, 30), read(3, 'y', null, 20, 30)),
  fixture('values compare structurally, not by identity', true, write(0, 'x', { a: [1, 2] }, 0, 1), read(1, 'x', { a: [1, 2] }, 2, 3)),
];
