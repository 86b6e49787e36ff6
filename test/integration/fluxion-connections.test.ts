/**
 * Connection limits of a real `fluxiond`: a cap per scoped key, slots reserved for the master key
 * (so a readonly key holding every connection cannot lock it out), and no ghost sessions from
 * upgrades that fail halfway.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { Client, startDaemon, waitForLog, type Daemon } from './fluxion-harness.js';

async function tryConnect(d: Daemon, key: string): Promise<Client | { status: number; body: string }> {
  try {
    return await Client.connect(d.url(`api-key=${key}`));
  } catch (err) {
    const e = err as { status?: number; body?: string };
    if (e.status === undefined) throw err;
    return { status: e.status, body: e.body ?? '' };
  }
}

test('connection caps: per scoped key, and slots reserved for the master key', async (t) => {
  const d = await startDaemon(['--secret-key', 'k', '--max-connections', '8', '--connections-per-key-max', '3', '--master-connections-reserved', '2']);
  t.after(() => d.kill('SIGKILL'));
  const m = await Client.connect(d.url('api-key=k'));
  for (const key of ['r1', 'r2', 'r3']) await m.request('keys', { action: 'add', key, scope: 'readonly' });
  await m.close();
  const held: Client[] = [];
  t.after(() => { for (const c of held) c.ws.terminate(); });
  for (let i = 0; i < 3; i++) held.push(await Client.connect(d.url('api-key=r1')));
  const fourth = await tryConnect(d, 'r1');
  assert.ok(!(fourth instanceof Client), 'a 4th connection of one key must be refused');
  assert.equal(fourth.status, 429);
  assert.match(fourth.body, /too many connections for this API key \(limit 3 per key\)/);
  for (let i = 0; i < 3; i++) held.push(await Client.connect(d.url('api-key=r2')));
  // 6 scoped connections = 8 - 2 reserved: another scoped key is refused, the master key is not.
  const other = await tryConnect(d, 'r3');
  assert.ok(!(other instanceof Client));
  assert.equal(other.status, 503);
  assert.match(other.body, /too many connections \(limit 8, of which 2 are reserved for the master key\)/);
  const masters = [await Client.connect(d.url('api-key=k')), await Client.connect(d.url('api-key=k'))];
  held.push(...masters);
  assert.equal(((await masters[0]!.request('conn', {})).connections as unknown[]).length, 8);
  const ninth = await tryConnect(d, 'k');
  assert.ok(!(ninth instanceof Client));
  assert.equal(ninth.status, 503);
  // Closing a connection frees its slot for the same key.
  await held[0]!.close();
  await new Promise((r) => setTimeout(r, 100));
  held.push(await Client.connect(d.url('api-key=r1')));
  assert.ok(await waitForLog(d, (l) => l.includes('"connection_refused"') && l.includes('connections_per_key_max')), 'refusals are logged');
});

test('upgrades that ws rejects (no Sec-WebSocket-Key) leave no ghost session counting against the cap', async (t) => {
  const d = await startDaemon(['--secret-key', 'k']);
  t.after(() => d.kill('SIGKILL'));
  const m = await Client.connect(d.url('api-key=k'));
  await m.request('keys', { action: 'add', key: 'r', scope: 'readonly' });
  for (let i = 0; i < 5; i++) {
    await new Promise<void>((resolve) => {
      const s = connect(d.port, '127.0.0.1', () => {
        s.write(`GET /?api-key=r HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n`);
      });
      s.on('data', () => s.destroy());
      s.on('close', () => resolve());
      s.on('error', () => resolve());
    });
  }
  assert.equal(((await m.request('conn', {})).connections as unknown[]).length, 1);
  const a = await Client.connect(d.url('api-key=r'));
  const b = await Client.connect(d.url('api-key=r'));
  await a.close();
  await b.close();
});
