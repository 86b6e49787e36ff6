import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import fc from 'fast-check';
import { pino } from 'pino';
import { createLogger } from '../util/index.js';
import { CorruptionError } from './errors.js';
import { DurableLog } from './persistence.js';
import { FluxionService } from './service.js';
import { FluxionStore } from './store.js';

const log = createLogger('test');

async function open(dir: string): Promise<{ svc: FluxionService; dl: DurableLog }> {
  const store = new FluxionStore();
  const dl = await DurableLog.open({ dir, store, masterKey: 'm', log, snapshotWalBytes: 2 ** 40, segmentBytesMax: 2048 });
  return { svc: new FluxionService({ store, log: dl, masterKey: 'm' }), dl };
}

/** Everything observable about a store, in a canonical order. */
function state(s: FluxionStore): unknown {
  return {
    keys: s.listApiKeys().sort(),
    cols: s.collectionNames().filter((c) => s.getKeys(c).length > 0 || Object.keys(s.latest({ col: c, ts: 2 ** 52, doc: '', from: 0, where: '', filter: '' })).length > 0)
      .sort().map((c) => ({
        c,
        kv: Object.entries(s.getAllValues(c)).sort(),
        docs: Object.keys(s.latest({ col: c, ts: 2 ** 52, doc: '', from: 0, where: '', filter: '' })).sort()
          .map((d) => [d, s.history({ col: c, doc: d, from: -(2 ** 52), to: 2 ** 52, limit: 0, reverse: false, where: '', filter: '' })]),
      })),
  };
}

const col = fc.constantFrom('a', 'b', 'c');
const doc = fc.constantFrom('x', 'y', 'z');
const ts = fc.integer({ min: 1, max: 40 });
const op = fc.oneof(
  fc.record({ t: fc.constant('ins'), d: fc.array(fc.record({ col, doc, ts, data: fc.string({ maxLength: 4 }) }), { maxLength: 6 }) }),
  fc.record({ t: fc.constant('drec'), d: fc.record({ col, doc, ts }) }),
  fc.record({ t: fc.constant('drrng'), d: fc.record({ col, doc, fromTs: ts, toTs: fc.integer({ min: 40, max: 60 }) }) }),
  fc.record({ t: fc.constant('ddoc'), d: fc.record({ doc, col: fc.constantFrom('', 'a', 'b') }) }),
  fc.record({ t: fc.constant('dcol'), d: fc.record({ col }) }),
  fc.record({ t: fc.constant('sval'), d: fc.record({ col, key: fc.constantFrom('k1', 'k2'), value: fc.constantFrom('v1', 'v2') }) }),
  fc.record({ t: fc.constant('rval'), d: fc.record({ col, key: fc.constantFrom('k1', 'k2') }) }),
  fc.record({ t: fc.constant('keys'), d: fc.record({ action: fc.constantFrom('add', 'remove'), key: fc.constantFrom('r1', 'r2'), scope: fc.constantFrom('readonly', 'read_write') }) }),
  fc.record({ t: fc.constant('snapshot'), d: fc.constant(null) }),
  fc.record({ t: fc.constant('reopen'), d: fc.constant(null) }),
);

test('recovery reproduces the acknowledged state for random operation sequences, snapshots and restarts', async () => {
  await fc.assert(fc.asyncProperty(fc.array(op, { maxLength: 40 }), async (ops) => {
    const dir = mkdtempSync(join(tmpdir(), 'fluxion-prop-'));
    try {
      let { svc, dl } = await open(dir);
      let s = svc.openSession('m', '', '');
      const pending: Array<Promise<unknown>> = [];
      for (const o of ops) {
        if (o.t === 'snapshot') { await Promise.all(pending); void dl.snapshot(); continue; }
        if (o.t === 'reopen') {
          await Promise.all(pending);
          const before = state(svc.store);
          await dl.close();
          ({ svc, dl } = await open(dir));
          s = svc.openSession('m', '', '');
          assert.deepEqual(state(svc.store), before);
          continue;
        }
        pending.push(Promise.resolve(svc.handle(s, o.t, JSON.stringify(o.d))));
      }
      await Promise.all(pending);
      const before = state(svc.store);
      await dl.close();
      ({ svc, dl } = await open(dir));
      assert.deepEqual(state(svc.store), before);
      await dl.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }), { numRuns: 40 });
});

test('leftover temp files are ignored; a damaged newest snapshot stops start-up', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fluxion-persist-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  let { svc, dl } = await open(dir);
  await svc.handle(svc.openSession('m', '', ''), 'ins', '[{"col":"c","doc":"d","ts":1,"data":"x"}]');
  await dl.snapshot();
  await dl.close();
  writeFileSync(join(dir, 'snapshot-00000000000000000099.snap.tmp'), 'half-written');
  ({ svc, dl } = await open(dir));
  assert.equal(svc.store.stats().records, 1);
  assert.ok(!readdirSync(dir).some((f) => f.endsWith('.tmp')));
  await dl.close();
  const snap = join(dir, readdirSync(dir).find((f) => f.endsWith('.snap'))!);
  const b = readFileSync(snap);
  b.writeUInt8(b.readUInt8(b.length - 10) ^ 0xff, b.length - 10); // readUInt8 throws when out of range
  writeFileSync(snap, b);
  await assert.rejects(open(dir), CorruptionError);
});

test('a second server on the same directory is refused while the first holds it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fluxion-persist-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // A live process whose command line mentions fluxion holds the lock.
  const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)', 'fluxion-lock-holder'], { stdio: 'ignore' });
  t.after(() => holder.kill('SIGKILL'));
  writeFileSync(join(dir, 'LOCK'), `${holder.pid}\n`);
  await assert.rejects(open(dir), new RegExp(`in use by process ${holder.pid}`));
  // A reused pid (an unrelated live process) and a dead pid are both stale locks.
  writeFileSync(join(dir, 'LOCK'), '1\n');
  await (await open(dir)).dl.close();
  writeFileSync(join(dir, 'LOCK'), '999999999\n');
  await (await open(dir)).dl.close();
});

test('after the WAL fails: logged once with its cause, writes refused, snapshots skipped, close is prompt', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fluxion-persist-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const lines: Array<Record<string, unknown>> = [];
  const captured = pino({ level: 'info' }, { write: (s: string) => { lines.push(JSON.parse(s) as Record<string, unknown>); } });
  const store = new FluxionStore();
  const dl = await DurableLog.open({ dir, store, masterKey: 'm', log: captured, snapshotWalBytes: 256 });
  const svc = new FluxionService({ store, log: dl, masterKey: 'm' });
  const s = svc.openSession('m', '', '');
  const ins = (i: number): string => JSON.stringify([{ col: 'c', doc: 'd', ts: i, data: 'x'.repeat(100) }]);
  assert.deepEqual(await svc.handle(s, 'ins', ins(1)), {});
  await dl.snapshot();
  // Pull the WAL file out from under the log (as a dying disk would): the next write fails.
  await (dl as unknown as { wal: { fh: { close(): Promise<void> } } }).wal.fh.close();
  const refused = (await svc.handle(s, 'ins', ins(2))) as { error?: string };
  assert.match(refused.error ?? '', /^write-ahead log failed \(EBADF\); writes are refused until the server restarts$/);
  // Enough further writes to pass the snapshot threshold many times over: every one is refused.
  for (let i = 3; i < 20; i++) assert.match(((await svc.handle(s, 'ins', ins(i))) as { error?: string }).error ?? '', /write-ahead log failed/);
  assert.equal(dl.writable, false);
  assert.equal(store.stats().records, 1, 'nothing refused was applied');
  const within = <T>(p: Promise<T>): Promise<T | 'hung'> => Promise.race([p, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 3000))]);
  assert.notEqual(await within(dl.snapshot()), 'hung');
  assert.notEqual(await within(dl.close()), 'hung');
  const failed = lines.filter((l) => l.msg === 'wal_failed');
  assert.equal(failed.length, 1);
  assert.equal(failed[0]!.cause, 'EBADF');
  assert.equal(lines.filter((l) => l.msg === 'snapshot_written').length, 1, 'no snapshot after the failure');
});
