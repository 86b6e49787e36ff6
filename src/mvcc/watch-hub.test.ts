import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prefixEnd } from './ordered-keys.js';
import { createStack, dec, enc } from './test-harness.js';
import type { WatchDelivery, WatchSink } from './watch-hub.js';

class Collector implements WatchSink {
  deliveries: WatchDelivery[] = [];
  open = true;
  ready(): boolean { return this.open; }
  deliver(d: WatchDelivery): void { this.deliveries.push(d); }
  events(): string[] {
    return this.deliveries.flatMap((d) => d.events.map((e) => `${e.type}:${dec(e.kv.key)}@${e.kv.modRevision}${e.prevKv ? `(prev=${dec(e.prevKv.value)})` : ''}`));
  }
}

const settle = async (rounds = 5) => { for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r)); };

test('synced watchers see puts and deletes in a prefix, with prev_kv and filters', async () => {
  const s = createStack();
  try {
    const all = new Collector();
    const noDel = new Collector();
    s.hub.watch({ key: enc('p/'), rangeEnd: prefixEnd(enc('p/')), prevKv: true }, all);
    s.hub.watch({ key: enc('p/'), rangeEnd: prefixEnd(enc('p/')), noDelete: true }, noDel);
    await s.svc.put({ key: enc('p/a'), value: enc('1') });
    await s.svc.put({ key: enc('q'), value: enc('x') });
    await s.svc.put({ key: enc('p/a'), value: enc('2') });
    await s.svc.deleteRange({ key: enc('p/a') });
    assert.deepEqual(all.events(), ['put:p/a@2', 'put:p/a@4(prev=1)', 'delete:p/a@5(prev=2)']);
    assert.deepEqual(noDel.events(), ['put:p/a@2', 'put:p/a@4']);
  } finally {
    await s.close();
  }
});

test('a watch from a past revision replays history then continues live, without gaps or duplicates', async () => {
  const s = createStack({ hub: { historyBatchEventsMax: 3 } });
  try {
    for (let i = 1; i <= 10; i++) await s.svc.put({ key: enc(`k${i % 3}`), value: enc(String(i)) });
    const c = new Collector();
    const h = s.hub.watch({ key: enc('k'), rangeEnd: prefixEnd(enc('k')), startRevision: 3 }, c);
    assert.equal(h.synced(), false);
    await s.svc.put({ key: enc('k1'), value: enc('live') }); // rev 12, while catching up
    await settle(10);
    assert.equal(h.synced(), true);
    await s.svc.put({ key: enc('k2'), value: enc('live2') }); // rev 13
    const revs = c.deliveries.flatMap((d) => d.events.map((e) => e.kv.modRevision));
    assert.deepEqual(revs, [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
  } finally {
    await s.close();
  }
});

test('a slow watcher never blocks writers and catches up from the store once ready', async () => {
  const s = createStack();
  try {
    const slow = new Collector();
    s.hub.watch({ key: enc('s'), rangeEnd: prefixEnd(enc('s')) }, slow);
    slow.open = false;
    for (let i = 1; i <= 50; i++) await s.svc.put({ key: enc(`s${i}`), value: enc('v') });
    assert.equal(slow.deliveries.length, 0);
    slow.open = true;
    s.hub.kick();
    await settle(10);
    assert.deepEqual(slow.deliveries.flatMap((d) => d.events.map((e) => e.kv.modRevision)), Array.from({ length: 50 }, (_, i) => i + 2));
  } finally {
    await s.close();
  }
});

test('a watch from a compacted revision is cancelled with compact_revision', async () => {
  const s = createStack();
  try {
    for (let i = 0; i < 5; i++) await s.svc.put({ key: enc('c'), value: enc(String(i)) });
    await s.svc.compact(5);
    const c = new Collector();
    s.hub.watch({ key: enc('c'), startRevision: 3 }, c);
    await settle();
    assert.equal(c.deliveries.length, 1);
    assert.deepEqual([c.deliveries[0]!.canceled, c.deliveries[0]!.compactRevision], [true, 5]);
    assert.equal(s.hub.size, 0);
  } finally {
    await s.close();
  }
});

test('lease revocation emits delete events to a prefix watcher', async () => {
  const s = createStack();
  try {
    const g = await s.svc.leaseGrant(10, 0);
    await s.svc.put({ key: enc('u/1/d1'), value: enc('gw1'), lease: g.id });
    await s.svc.put({ key: enc('u/1/d2'), value: enc('gw1'), lease: g.id });
    const c = new Collector();
    s.hub.watch({ key: enc('u/'), rangeEnd: prefixEnd(enc('u/')) }, c);
    await s.svc.leaseRevoke(g.id);
    assert.deepEqual(c.events(), ['delete:u/1/d1@4', 'delete:u/1/d2@4']);
    assert.equal(c.deliveries.length, 1, 'one revision, one delivery');
  } finally {
    await s.close();
  }
});

test('progress_notify sends an empty delivery at the current revision to idle synced watchers', async () => {
  const s = createStack({ hub: { progressIntervalMs: 20 } });
  try {
    await s.svc.put({ key: enc('p'), value: enc('1') });
    const c = new Collector();
    const quiet = new Collector();
    s.hub.watch({ key: enc('p'), progressNotify: true }, c);
    s.hub.watch({ key: enc('p') }, quiet);
    for (let i = 0; i < 100 && c.deliveries.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(c.deliveries.length > 0, 'a progress notification arrived');
    assert.deepEqual([c.deliveries[0]!.events.length, c.deliveries[0]!.revision], [0, 2]);
    assert.equal(quiet.deliveries.length, 0, 'only watchers that asked get progress notifications');
  } finally {
    await s.close();
  }
});

test('the hub refuses watchers beyond its limit', async () => {
  const s = createStack({ hub: { watchersMax: 2 } });
  try {
    s.hub.watch({ key: enc('a') }, new Collector());
    const h = s.hub.watch({ key: enc('b') }, new Collector());
    assert.throws(() => s.hub.watch({ key: enc('c') }, new Collector()), /too many watchers/);
    h.cancel();
    s.hub.watch({ key: enc('c') }, new Collector());
    assert.equal(s.hub.size, 2);
  } finally {
    await s.close();
  }
});

test('property: every watcher sees exactly its events from its start revision, in order, however slow', async () => {
  const fc = (await import('fast-check')).default;
  const keys = ['a', 'a/1', 'a/2', 'b', 'b/1'];
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.oneof(
        { arbitrary: fc.record({ kind: fc.constant('put' as const), key: fc.constantFrom(...keys), yieldAfter: fc.boolean() }), weight: 4 },
        { arbitrary: fc.record({ kind: fc.constant('del' as const), key: fc.constantFrom(...keys) }), weight: 1 },
        { arbitrary: fc.record({ kind: fc.constant('watch' as const), key: fc.constantFrom('a', 'a/', 'b'), prefix: fc.boolean(), back: fc.nat(6), slow: fc.boolean() }), weight: 2 },
        { arbitrary: fc.record({ kind: fc.constant('toggle' as const), mask: fc.nat(63) }), weight: 3 },
        { arbitrary: fc.record({ kind: fc.constant('settle' as const) }), weight: 2 },
      ), { maxLength: 60 }),
      async (steps) => {
        const s = createStack({ hub: { historyBatchEventsMax: 2 } });
        const watchers: { c: Collector; key: string; prefix: boolean; start: number }[] = [];
        try {
          for (const st of steps) {
            if (st.kind === 'put') {
              await s.svc.put({ key: enc(st.key), value: enc(String(s.sm.currentRevision())) });
              // Sometimes let the catch-up loop run between writes, so watchers go synced, get
              // backed up while synced, and catch up again, in every interleaving.
              if (st.yieldAfter) await settle(1);
            }
            else if (st.kind === 'del') await s.svc.deleteRange({ key: enc(st.key) });
            else if (st.kind === 'watch') {
              const start = Math.max(1, s.sm.currentRevision() - st.back);
              const c = new Collector();
              c.open = !st.slow;
              s.hub.watch(st.prefix ? { key: enc(st.key), rangeEnd: prefixEnd(enc(st.key)), startRevision: start } : { key: enc(st.key), startRevision: start }, c);
              watchers.push({ c, key: st.key, prefix: st.prefix, start });
            } else if (st.kind === 'toggle') {
              // Back up or release the watchers whose bit is set.
              watchers.forEach((w, i) => { if (st.mask & (1 << (i % 6))) w.c.open = !w.c.open; });
              s.hub.kick();
            } else {
              await settle(3);
            }
          }
          for (const w of watchers) w.c.open = true;
          s.hub.kick();
          await settle(60);
          // The expected events, straight from the store's history.
          const all = s.sm.history(1, s.sm.currentRevision(), 1_000_000).events;
          for (const w of watchers) {
            const want = all
              .filter((e) => e.kv.modRevision >= w.start)
              .filter((e) => { const k = dec(e.kv.key); return w.prefix ? k.startsWith(w.key) : k === w.key; })
              .map((e) => `${e.type}:${dec(e.kv.key)}@${e.kv.modRevision}`);
            assert.deepEqual(w.c.events(), want, `watcher on ${w.key}${w.prefix ? '*' : ''} from ${w.start}`);
          }
        } finally {
          await s.close();
        }
      },
    ),
    { numRuns: 200 },
  );
});
