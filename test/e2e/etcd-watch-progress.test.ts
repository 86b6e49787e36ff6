/**
 * Watch progress, as kube-apiserver uses it once the reported version is 3.4.31: a watch created
 * with progress_notify gets empty responses at the current revision every
 * `--experimental-watch-progress-notify-interval`; a progress request on the stream is answered
 * with watch id -1 at the current revision once every watch is synced. A raw @grpc/grpc-js Watch
 * stream over the proto files against a real conured; a bad interval exits 2.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { credentials, type ClientDuplexStream, type ServiceClientConstructor } from '@grpc/grpc-js';
import { etcdProto } from '../../src/api/etcd/proto/index.js';
import { freePort } from '../support/cluster.js';
import { CONURED, startConured, tempDir } from '../support/conured-process.js';

interface WatchResponse { header: { revision: string }; watch_id: string; created: boolean; events: unknown[] }

test('progress notifications at --experimental-watch-progress-notify-interval, and a progress request answered with watch id -1', async () => {
  const client = await freePort();
  const p = await startConured({ args: ['--client-addr', `127.0.0.1:${client}`, '--experimental-watch-progress-notify-interval', '200ms'] });
  const Watch = etcdProto().Watch as ServiceClientConstructor;
  const w = new Watch(`127.0.0.1:${client}`, credentials.createInsecure());
  const stream = (w as unknown as { Watch(): ClientDuplexStream<object, WatchResponse> }).Watch();
  const got: WatchResponse[] = [];
  const waitFor = (pred: (r: WatchResponse) => boolean, what: string): Promise<WatchResponse> => new Promise((resolve, reject) => {
    const hit = got.find(pred);
    if (hit) { resolve(hit); return; }
    const timer = setTimeout(() => { stream.off('data', on); reject(new Error(`no ${what} within 10 s; got ${JSON.stringify(got)}`)); }, 10_000);
    const on = (r: WatchResponse): void => { if (pred(r)) { clearTimeout(timer); stream.off('data', on); resolve(r); } };
    stream.on('data', on);
  });
  stream.on('data', (r: WatchResponse) => got.push(r));
  stream.on('error', () => undefined); // CANCELLED when the test ends the stream
  try {
    const put = await fetch(`${p.url}/kv?key=seed&value=1`, { method: 'PUT' });
    assert.equal(put.status, 200);
    stream.write({ create_request: { key: Buffer.from('foo'), progress_notify: true } });
    const created = await waitFor((r) => r.created, 'created response');
    const notify = await waitFor((r) => !r.created && r.events.length === 0 && r.watch_id === created.watch_id, 'progress notification');
    assert.ok(Number(notify.header.revision) >= 2, `progress at the current revision (${notify.header.revision})`);
    stream.write({ progress_request: {} });
    const progress = await waitFor((r) => r.watch_id === '-1', 'progress response');
    assert.equal(progress.events.length, 0);
    assert.ok(Number(progress.header.revision) >= 2);
  } finally {
    stream.cancel();
    w.close();
    await p.stop();
  }
});

test('a progress interval below 100ms exits 2 with the reason', () => {
  const { dir, cleanup } = tempDir('conured-progress-');
  try {
    const r = spawnSync(process.execPath, [CONURED, '--bootstrap', '--data-dir', dir, '--experimental-watch-progress-notify-interval', '5ms'], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--experimental-watch-progress-notify-interval must be at least 100ms/);
  } finally { cleanup(); }
});
