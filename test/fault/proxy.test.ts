import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { FaultProxy } from './proxy.js';
import { NetworkNemesis, linkName } from './nemesis/network.js';
import { bridge, isolate, majorityMinority, oneWay, reachable } from './nemesis/partition.js';

/** An echo server that also records everything it received. */
async function echoServer(): Promise<{ port: number; received: () => string; close: () => Promise<void> }> {
  let got = '';
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('data', (d) => { got += d.toString(); s.write(d); });
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  return { port, received: () => got, close: async () => { for (const s of sockets) s.destroy(); server.close(); await once(server, 'close'); } };
}

/** A client socket that accumulates what it reads. */
async function client(port: number): Promise<{ sock: net.Socket; data: () => string; closed: Promise<unknown> }> {
  const sock = net.connect(port, '127.0.0.1');
  let data = '';
  sock.on('data', (d) => { data += d.toString(); });
  sock.on('error', () => undefined);
  const closed = new Promise((resolve) => sock.once('close', resolve));
  await once(sock, 'connect');
  return { sock, data: () => data, closed };
}

/** Polls `cond` every 10 ms, at most `ms` in total; fails with `what` when it never holds. */
async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  for (let i = 0; i < ms / 10; i++) { if (cond()) return; await sleep(10); }
  assert.fail(`timed out waiting for: ${what}`);
}

async function setup(t: { after: (fn: () => Promise<void>) => void }) {
  const echo = await echoServer();
  const proxy = await FaultProxy.start({ target: { host: '127.0.0.1', port: echo.port }, name: 'test' });
  t.after(async () => { await proxy.close(); await echo.close(); });
  return { echo, proxy };
}

test('pass forwards both directions', async (t) => {
  const { echo, proxy } = await setup(t);
  const c = await client(proxy.port);
  c.sock.write('hello');
  await until(() => c.data() === 'hello', 'echo through the proxy');
  assert.equal(echo.received(), 'hello');
  assert.deepEqual(proxy.stats().bytesForwarded, { up: 5, down: 5 });
  assert.deepEqual(proxy.stats().bytesDelayed, { up: 0, down: 0 });
  c.sock.destroy();
});

test('delay keeps order across a change back to pass', async (t) => {
  const { proxy } = await setup(t);
  const c = await client(proxy.port);
  proxy.set('up', { kind: 'delay', ms: 2000 });
  c.sock.write('first;');
  await until(() => proxy.stats().bytesDelayed.up === 6, 'chunk held in the delay queue');
  assert.equal(proxy.stats().bytesForwarded.up, 0);
  proxy.set('up', { kind: 'pass' });
  c.sock.write('second;');
  await until(() => c.data().length === 13, 'both chunks echoed');
  assert.equal(c.data(), 'first;second;');
  c.sock.destroy();
});

test('drop up: the target hears nothing, the dialer still connects', async (t) => {
  const { echo, proxy } = await setup(t);
  const c = await client(proxy.port);
  proxy.set('up', { kind: 'drop' });
  c.sock.write('lost');
  await until(() => proxy.stats().bytesDropped.up === 4, 'bytes dropped');
  assert.equal(echo.received(), '');
  assert.equal(c.data(), '');
  c.sock.destroy();
});

test('drop down: the target hears, the dialer gets no answer (one-way)', async (t) => {
  const { echo, proxy } = await setup(t);
  const c = await client(proxy.port);
  proxy.set('down', { kind: 'drop' });
  c.sock.write('ping');
  await until(() => proxy.stats().bytesDropped.down === 4, 'answer dropped');
  assert.equal(echo.received(), 'ping');
  assert.equal(c.data(), '');
  c.sock.destroy();
});

test('block holds bytes and delivers them, in order, when lifted', async (t) => {
  const { echo, proxy } = await setup(t);
  const c = await client(proxy.port);
  await until(() => proxy.stats().open === 1, 'connection paired');
  proxy.set('up', { kind: 'block' });
  c.sock.write('held-1;');
  c.sock.write('held-2;');
  await sleep(200); // a blocked link must never deliver, however long we wait
  assert.equal(echo.received(), '');
  proxy.set('up', { kind: 'pass' });
  await until(() => c.data() === 'held-1;held-2;', 'held bytes delivered');
  assert.equal(echo.received(), 'held-1;held-2;');
  c.sock.destroy();
});

test('cut resets live connections and drops new ones; restore lets new connections through', async (t) => {
  const { echo, proxy } = await setup(t);
  const before = await client(proxy.port);
  await until(() => proxy.stats().open === 1, 'connection paired');
  proxy.cut();
  await before.closed;
  const during = await client(proxy.port);
  during.sock.write('x');
  await until(() => proxy.stats().bytesDropped.up === 1, 'dropped during the cut');
  assert.equal(echo.received(), '');
  proxy.restore();
  await during.closed; // restore resets connections made during the cut
  const after = await client(proxy.port);
  after.sock.write('back');
  await until(() => after.data() === 'back', 'echo after restore');
  after.sock.destroy();
});

test('the network nemesis cuts both carriers of a directed link and heals them', async (t) => {
  const echo = await echoServer();
  const members = ['n1', 'n2', 'n3'];
  const proxies = new Map<string, FaultProxy>();
  for (const a of members) for (const b of members) if (a !== b) proxies.set(linkName(a, b), await FaultProxy.start({ target: { host: '127.0.0.1', port: echo.port }, name: linkName(a, b) }));
  t.after(async () => { for (const p of proxies.values()) await p.close(); await echo.close(); });
  const nemesis = new NetworkNemesis(proxies);
  nemesis.partition(oneWay(members, 'n1'));
  assert.equal(proxies.get('n1->n2')!.fault('up').kind, 'drop');
  assert.equal(proxies.get('n2->n1')!.fault('down').kind, 'drop');
  assert.equal(proxies.get('n2->n1')!.fault('up').kind, 'pass', 'n2 can still send to n1');
  assert.equal(proxies.get('n2->n3')!.fault('up').kind, 'pass');
  // End to end: n1's dial to n2 goes silent.
  const c = await client(proxies.get('n1->n2')!.port);
  c.sock.write('q');
  await until(() => proxies.get('n1->n2')!.stats().bytesDropped.up === 1, 'n1 -> n2 dropped');
  nemesis.heal();
  assert.equal(nemesis.current, undefined);
  for (const p of proxies.values()) assert.deepEqual([p.fault('up').kind, p.fault('down').kind], ['pass', 'pass']);
  c.sock.destroy();
});

test('partition plans have the documented shapes', () => {
  let seed = 1;
  const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
  const five = ['n1', 'n2', 'n3', 'n4', 'n5'];
  for (let i = 0; i < 20; i++) {
    const mm = majorityMinority(five, random);
    const [maj, min] = mm.groups as [string[], string[]];
    assert.equal(maj.length, 3); assert.equal(min.length, 2);
    for (const a of maj) for (const b of min) { assert.ok(!reachable(five, mm.cuts, a, b)); assert.ok(!reachable(five, mm.cuts, b, a)); }
    for (const a of maj) for (const b of maj) assert.ok(reachable(five, mm.cuts, a, b));

    const br = bridge(five, random);
    const [a, [mid], b] = br.groups as [string[], string[], string[]];
    assert.ok(br.cuts.every(([x, y]) => x !== mid && y !== mid), 'the bridge keeps all its links');
    for (const x of a) for (const y of b) assert.ok(reachable(five, br.cuts, x, y) && br.cuts.some(([p, q]) => p === x && q === y));
  }
  const ow = oneWay(five, 'n3');
  assert.ok(!reachable(five, ow.cuts, 'n3', 'n1'));
  assert.ok(reachable(five, ow.cuts, 'n1', 'n3'));
  const iso = isolate(five, 'n2');
  assert.equal(iso.cuts.length, 8);
  assert.throws(() => bridge(['n1', 'n2'], random), /at least 3/);
  assert.throws(() => isolate(five, 'nx'), /not a member/);
});
