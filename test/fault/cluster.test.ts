/**
 * The process-control building blocks on a real standalone `conured`: kill -9 and restart keep
 * the data and the HTTP port; SIGSTOP stalls requests and SIGCONT lets them finish.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../support/conured-process.js';
import { standaloneLauncher } from './cluster.js';
import { kvGet, kvPut, waitReady } from './workload/http-kv.js';

test('kill -9, restart, pause and resume a standalone member', { timeout: 90_000 }, async (t) => {
  const { dir, cleanup } = tempDir('conure-fault-cluster-');
  const cluster = await standaloneLauncher.launch({ size: 1, dataRoot: join(dir, 'data'), logDir: join(dir, 'logs') });
  t.after(async () => { await cluster.close(); cleanup(); });
  const [node] = cluster.nodes;
  assert.ok(node);
  const url = node.url;
  assert.equal((await kvPut(url, 'k', 'v1', { timeoutMs: 5000 })).type, 'ok');

  const pid = node.pid();
  await node.kill9();
  assert.equal(node.isRunning(), false);
  assert.equal((await kvGet(url, 'k', { timeoutMs: 2000 })).type, 'fail', 'a killed member refuses connections');
  await node.restart();
  assert.notEqual(node.pid(), pid);
  assert.equal(node.url, url, 'same HTTP port after a restart');
  assert.ok(await waitReady(() => cluster.endpoints(), 30_000));
  assert.deepEqual(await kvGet(url, 'k', { timeoutMs: 5000 }), { type: 'ok', value: 'v1' }, 'acknowledged data survives kill -9');

  node.pause();
  assert.equal(node.isPaused(), true);
  const stalled = await kvGet(url, 'k', { timeoutMs: 500 });
  assert.deepEqual(stalled, { type: 'info', error: 'timeout' }, 'a paused member does not answer');
  const pending = kvPut(url, 'k', 'v2', { timeoutMs: 20_000 });
  node.resume();
  assert.equal((await pending).type, 'ok', 'a request sent during the pause completes after SIGCONT');
  assert.deepEqual(await kvGet(url, 'k', { timeoutMs: 5000 }), { type: 'ok', value: 'v2' });

  // Kill while paused (SIGKILL works on a stopped process) and come back again.
  node.pause();
  await node.kill9();
  assert.equal(node.isPaused(), false);
  await node.restart();
  assert.ok(await waitReady(() => cluster.endpoints(), 30_000));
  assert.deepEqual(await kvGet(url, 'k', { timeoutMs: 5000 }), { type: 'ok', value: 'v2' });
  await cluster.close();
  const log = readFileSync(join(dir, 'logs', 'n1.log'), 'utf8');
  assert.equal(log.match(/conured_started/g)?.length, 3, 'one log across restarts');
  assert.equal(log.match(/"process_exit"/g)?.length, 3);
});
