import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkLease, type LeaseViolationKind } from './lease.js';
import { pairOperations, parseHistory, serializeHistory, type HistoryEvent } from './history.js';

const MS = 1e6;

/** Builds a history from operations given with times in ms; events end up in time order. */
class H {
  private evs: { e: HistoryEvent; seq: number }[] = [];
  private seq = 0;
  op(process: number | string, f: string, key: string | undefined, input: unknown, output: unknown, t0: number, t1: number, type: 'ok' | 'fail' | 'info' = 'ok', error?: string): this {
    const k = key !== undefined ? { key } : {};
    this.evs.push({ e: { process, type: 'invoke', f, ...k, value: input, time: t0 * MS }, seq: this.seq++ });
    this.evs.push({ e: { process, type, f, ...k, value: type === 'ok' ? output : (output ?? input), time: t1 * MS, ...(error && { error }) }, seq: this.seq++ });
    return this;
  }
  /** A watch response received at `t` ms. */
  seen(watcher: string, t: number, revision: number, ...events: [type: 'PUT' | 'DELETE', key: string, rev: number, lease?: string][]): this {
    return this.op(watcher, 'watch-event', undefined, null, { revision, events: events.map(([type, key, rev, lease]) => ({ type, key, rev, ...(lease && { lease }) })) }, t, t);
  }
  progress(watcher: string, t: number, revision: number): this {
    return this.op(watcher, 'watch-event', undefined, null, { revision, events: [], progress: true }, t, t);
  }
  events(): HistoryEvent[] {
    return [...this.evs].sort((a, b) => a.e.time - b.e.time || a.seq - b.seq).map((x) => x.e);
  }
}

/**
 * A clean history: two watchers from revision 2; lease 11 (ttl 2, key a, kept alive once at
 * 1000 ms) and lease 22 (ttl 2, key b, let lapse). Revisions: PUT a@2, PUT b@3, DELETE b@4
 * (at 2150 ms ≥ 100 + 2000), DELETE a@5 (at 3500 ms ≥ 1000 + 2000). Final read at revision 5.
 */
function base(mod: { w1?: (h: H) => void; extra?: (h: H) => void; skipW1?: boolean; finalKeys?: string[]; aDeleteAt?: number } = {}): H {
  const h = new H();
  h.op('setup', 'read', 'p/', null, { keys: [], revision: 1 }, 0, 1);
  for (const w of ['watch-0', 'watch-1']) h.op(w, 'watch', 'p/', { fromRevision: 2, endpoint: 'e' }, { watchId: '0' }, 2, 3);
  h.op(0, 'grant', undefined, { lease: '11', ttl: 2 }, { lease: '11', ttl: 2 }, 10, 20);
  h.op(0, 'put', 'p/a', { lease: '11' }, { lease: '11', revision: 2 }, 30, 40);
  h.op(1, 'grant', undefined, { lease: '22', ttl: 2 }, { lease: '22', ttl: 2 }, 100, 110);
  h.op(1, 'put', 'p/b', { lease: '22' }, { lease: '22', revision: 3 }, 120, 130);
  h.op(0, 'keepalive', undefined, { lease: '11' }, { lease: '11', ttl: 2 }, 1000, 1010);
  const aAt = mod.aDeleteAt ?? 3500;
  h.seen('watch-0', 41, 2, ['PUT', 'p/a', 2, '11']).seen('watch-0', 131, 3, ['PUT', 'p/b', 3, '22'])
    .seen('watch-0', 2150, 4, ['DELETE', 'p/b', 4]).seen('watch-0', aAt, 5, ['DELETE', 'p/a', 5]).progress('watch-0', 5100, 5);
  if (mod.w1) mod.w1(h);
  else if (!mod.skipW1) {
    h.seen('watch-1', 42, 2, ['PUT', 'p/a', 2, '11']).seen('watch-1', 132, 3, ['PUT', 'p/b', 3, '22'])
      .seen('watch-1', 2151, 4, ['DELETE', 'p/b', 4]).seen('watch-1', aAt + 1, 5, ['DELETE', 'p/a', 5]).progress('watch-1', 5100, 5);
  }
  h.op('final', 'final-read', 'p/', null, { keys: mod.finalKeys ?? [], revision: 5 }, 5000, 5010);
  h.op('final', 'keepalive', undefined, { lease: '11' }, { lease: '11', ttl: 0 }, 5200, 5210);
  mod.extra?.(h);
  return h;
}

/** The events minus every operation (invoke and completion) matching `pred`. */
function withoutOps(events: HistoryEvent[], pred: (o: ReturnType<typeof pairOperations>[number]) => boolean): HistoryEvent[] {
  const drop = new Set(pairOperations(events).filter(pred).flatMap((o) => o.events));
  return events.filter((e) => !drop.has(e));
}

const kinds = (events: HistoryEvent[], marginMs?: number) => new Set(checkLease(events, marginMs === undefined ? {} : { marginMs }).violations.map((v) => v.kind));
function rejects(events: HistoryEvent[], kind: LeaseViolationKind, marginMs?: number): void {
  const r = checkLease(events, marginMs === undefined ? {} : { marginMs });
  assert.equal(r.valid, false, `expected ${kind}`);
  assert.ok(kinds(events, marginMs).has(kind), `expected ${kind}, got ${JSON.stringify(r.violations)}`);
}

test('lease checker: a clean history is valid, pairs, and round-trips through JSONL', () => {
  const events = base().events();
  const r = checkLease(events);
  assert.equal(r.valid, true, JSON.stringify(r));
  assert.equal(r.undecided, false);
  assert.deepEqual(r.leases, { granted: 2, kept: 1, expiriesObserved: 2 });
  assert.deepEqual(r.keys, { put: 2, acknowledged: 2 });
  assert.equal(r.watchers.count, 2);
  assert.equal(r.closestExpiryMarginMs, 50); // lease 22: 2150 − (100 + 2000); lease 11: 3500 − (1000 + 2000)
  assert.equal(r.finalReadRevision, 5);
  pairOperations(events);
  assert.deepEqual(checkLease(parseHistory(serializeHistory(events))), r);
});

test('lease checker (b): an expiry observed before the last keep-alive + TTL is early; the margin is small', () => {
  rejects(base({ aDeleteAt: 2500 }).events(), 'early-expiry');           // 500 ms early
  assert.equal(checkLease(base({ aDeleteAt: 2970 }).events()).valid, true); // 30 ms early: within the 50 ms margin
  rejects(base({ aDeleteAt: 2970 }).events(), 'early-expiry', 0);
  // Without the keep-alive the grant alone bounds it: 10 + 2000 ms.
  const h = withoutOps(base({ aDeleteAt: 2500 }).events(), (o) => o.f === 'keepalive' && o.invokeTime === 1000 * MS);
  assert.equal(checkLease(h).valid, true);
  // Only a successful keep-alive bounds the expiry: an indeterminate one may not have renewed.
  rejects(base({ aDeleteAt: 2200 }).events(), 'early-expiry');
  const info = base({ aDeleteAt: 2200 }).events().map((e) => (e.f === 'keepalive' && e.time === 1010 * MS ? { ...e, type: 'info' as const, value: { lease: '11' } } : e));
  assert.equal(checkLease(info).valid, true, JSON.stringify(checkLease(info).violations)); // 2200 ≥ grant 10 + 2000
});

test('lease checker (a): revisions going back, watchers disagreeing, a missed or phantom put', () => {
  // watch-1 sees a's expiry before b's: out of order.
  rejects(base({ w1: (h) => h.seen('watch-1', 42, 2, ['PUT', 'p/a', 2, '11']).seen('watch-1', 132, 3, ['PUT', 'p/b', 3, '22'])
    .seen('watch-1', 3501, 5, ['DELETE', 'p/a', 5]).seen('watch-1', 3502, 4, ['DELETE', 'p/b', 4]).progress('watch-1', 5100, 5) }).events(), 'revision-order');
  // watch-1 sees the same events in another order (b's delete at a later revision than a's).
  rejects(base({ w1: (h) => h.seen('watch-1', 42, 2, ['PUT', 'p/a', 2, '11']).seen('watch-1', 132, 3, ['PUT', 'p/b', 3, '22'])
    .seen('watch-1', 3501, 4, ['DELETE', 'p/a', 4]).seen('watch-1', 3502, 5, ['DELETE', 'p/b', 5]).progress('watch-1', 5100, 5) }).events(), 'watchers-disagree');
  // The same event twice.
  rejects(base({ w1: (h) => h.seen('watch-1', 42, 2, ['PUT', 'p/a', 2, '11']).seen('watch-1', 43, 2, ['PUT', 'p/a', 2, '11']).seen('watch-1', 132, 3, ['PUT', 'p/b', 3, '22'])
    .seen('watch-1', 2151, 4, ['DELETE', 'p/b', 4]).seen('watch-1', 3501, 5, ['DELETE', 'p/a', 5]).progress('watch-1', 5100, 5) }).events(), 'revision-order');
  // watch-1 skips the acknowledged PUT b@3.
  rejects(base({ w1: (h) => h.seen('watch-1', 42, 2, ['PUT', 'p/a', 2, '11'])
    .seen('watch-1', 2151, 4, ['DELETE', 'p/b', 4]).seen('watch-1', 3501, 5, ['DELETE', 'p/a', 5]).progress('watch-1', 5100, 5) }).events(), 'missed-put');
  // A PUT of a key nobody put.
  rejects(base({ extra: (h) => h.seen('watch-0', 5300, 6, ['PUT', 'p/zz', 6, '11']) }).events(), 'phantom-put');
  // A PUT with a failed put.
  const failed = base().events().map((e) => (e.f === 'put' && e.key === 'p/b' && e.type === 'ok' ? { ...e, type: 'fail' as const, value: { lease: '22' } } : e));
  rejects(failed, 'phantom-put');
  // A watch re-created past what it covered.
  rejects(base({ extra: (h) => h.op('watch-0', 'watch-broken', undefined, null, { reason: 'x' }, 5300, 5300).op('watch-0', 'watch', 'p/', { fromRevision: 9, endpoint: 'e' }, { watchId: '0' }, 5400, 5410) }).events(), 'watch-gap');
});

test('lease checker (c): renewal after the observed expiry, a lease revived after TTL 0, a key that reappears', () => {
  rejects(base({ extra: (h) => h.op(0, 'keepalive', undefined, { lease: '11' }, { lease: '11', ttl: 2 }, 4000, 4010) }).events(), 'renewed-after-expiry');
  // The final probe answering ttl > 0 is the same violation.
  const probe = base().events().map((e) => (e.f === 'keepalive' && e.time === 5210 * MS ? { ...e, value: { lease: '11', ttl: 2 } } : e));
  rejects(probe, 'renewed-after-expiry');
  rejects(base({ extra: (h) => h.op(2, 'keepalive', undefined, { lease: '22' }, { lease: '22', ttl: 0 }, 500, 510).op(2, 'keepalive', undefined, { lease: '22' }, { lease: '22', ttl: 2 }, 600, 610) }).events(), 'revived');
  rejects(base({ extra: (h) => h.seen('watch-0', 5300, 6, ['PUT', 'p/a', 6, '11']) }).events(), 'key-reappeared');
  rejects(base({ finalKeys: ['p/a'] }).events(), 'key-reappeared');
});

test('lease checker (d): a key never expiring, a watcher that missed an expiry or never caught up', () => {
  // No DELETE of a anywhere and a still present at the end.
  const stays = withoutOps(base().events(), (o) => o.f === 'watch-event' && JSON.stringify(o.output).includes('"DELETE","key":"p/a"'));
  const kept = stays.map((e) => (e.f === 'final-read' && e.type === 'ok' ? { ...e, value: { keys: ['p/a'], revision: 5 } } : e));
  rejects(kept, 'never-expired');
  rejects(stays, 'expiry-not-observed');
  rejects(base({ w1: (h) => h.seen('watch-1', 42, 2, ['PUT', 'p/a', 2, '11']).seen('watch-1', 132, 3, ['PUT', 'p/b', 3, '22']).progress('watch-1', 5100, 3) }).events(), 'watcher-behind');
});

test('lease checker: a compacted watch or a missing final read is undecided, never clean', () => {
  const compacted = checkLease(base({ extra: (h) => h.op('watch-1', 'watch-broken', undefined, null, { reason: 'canceled', compactRevision: 4 }, 5300, 5300) }).events());
  assert.equal(compacted.valid, false);
  assert.equal(compacted.undecided, true);
  assert.match(compacted.reason ?? '', /compaction.*watch-1/);
  const failedCreate = checkLease(base({ extra: (h) => h.op('watch-2', 'watch', 'p/', { fromRevision: 2, endpoint: 'e' }, { compactRevision: 3 }, 5300, 5310, 'fail', 'compacted') }).events());
  assert.equal(failedCreate.undecided, true);
  assert.equal(failedCreate.watchers.compacted, 1);
  const noFinal = checkLease(base().events().filter((e) => e.f !== 'final-read'));
  assert.equal(noFinal.valid, false);
  assert.equal(noFinal.undecided, true);
  assert.equal(noFinal.reason, 'no successful final read');
});

test('lease checker: malformed values are rejected', () => {
  assert.throws(() => checkLease(new H().op(0, 'grant', undefined, { ttl: 2 }, { ttl: 2 }, 0, 1).events()), /value.lease/);
  assert.throws(() => checkLease(new H().op('w', 'watch-event', undefined, null, { revision: 1 }, 0, 0).events()), /events must be an array/);
  assert.throws(() => checkLease(new H().op(0, 'put', 'k', { lease: '1' }, { lease: '1', revision: 2 }, 0, 1).op(1, 'put', 'k', { lease: '1' }, { lease: '1', revision: 3 }, 2, 3).events()), /put twice/);
});
