/**
 * TLS on Fluxion (`fluxiond --cert-file/--key-file`: wss:// and https://) and on the platform
 * API (PLATFORM_TLS_CERT_FILE / PLATFORM_TLS_KEY_FILE), as real processes on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { get } from 'node:https';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { ensureDevCertificates, type DevCertificates } from '../../src/cli/dev-certs.js';
import { tempDir } from '../support/conured-process.js';
import { startPlatformProcess } from '../support/platform-process.js';
import { runDaemon, startDaemon } from './fluxion-harness.js';

const dir = tempDir('conure-tls-servers-');
let certs: DevCertificates;
before(async () => { certs = await ensureDevCertificates(dir.dir, ['127.0.0.1']); });
after(() => dir.cleanup());

/** GET over https trusting only the dev CA; resolves with status and body. */
function httpsGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, { ca: readFileSync(certs.ca) }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

/** The first frame a WebSocket receives, or the error that ended it. */
function firstFrame(url: string, opts: WebSocket.ClientOptions = {}): Promise<string | Error> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, opts);
    ws.once('message', (m) => { resolve(String(m)); ws.close(); });
    ws.once('error', (err) => resolve(err));
  });
}

describe('fluxiond over TLS', () => {
  it('serves wss:// and https:// with --cert-file/--key-file, and nothing in plain text', async () => {
    const d = await startDaemon(['--secret-key', 'k', '--cert-file', certs.server.cert, '--key-file', certs.server.key]);
    try {
      const ready = await firstFrame(`wss://127.0.0.1:${d.port}/?api-key=k&name=t`, { ca: readFileSync(certs.ca) });
      assert.match(String(ready), /"type":"ready"/);
      assert.equal((await httpsGet(`https://127.0.0.1:${d.port}/health`)).status, 200);
      assert.ok((await firstFrame(`ws://127.0.0.1:${d.port}/?api-key=k&name=t`)) instanceof Error);
      assert.ok((await firstFrame(`wss://127.0.0.1:${d.port}/?api-key=k&name=t`)) instanceof Error, 'an untrusted CA is refused by the client');
    } finally {
      await d.kill();
    }
  });

  it('refuses --cert-file without --key-file, and unreadable files, with exit code 2', async () => {
    assert.equal((await runDaemon(['--secret-key', 'k', '--cert-file', certs.server.cert])).code, 2);
    const r = await runDaemon(['--secret-key', 'k', '--cert-file', `${dir.dir}/missing.pem`, '--key-file', certs.server.key]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /missing\.pem/);
  });
});

describe('conure-platform over TLS', () => {
  it('serves the API over https with PLATFORM_TLS_CERT_FILE and PLATFORM_TLS_KEY_FILE', async () => {
    const data = tempDir('conure-platform-tls-');
    const p = await startPlatformProcess({ dataDir: data.dir, env: { PLATFORM_TLS_CERT_FILE: certs.server.cert, PLATFORM_TLS_KEY_FILE: certs.server.key } });
    try {
      assert.ok(p.events('platform_started')[0]!.url!.toString().startsWith('https://'));
      const health = await httpsGet(`https://127.0.0.1:${p.port}/health`);
      assert.equal(health.status, 200, health.body);
      assert.equal((JSON.parse(health.body) as { status: string }).status, 'healthy');
      await assert.rejects(fetch(`http://127.0.0.1:${p.port}/health`, { signal: AbortSignal.timeout(5000) }));
    } finally {
      await p.stop();
      data.cleanup();
    }
  });
});
