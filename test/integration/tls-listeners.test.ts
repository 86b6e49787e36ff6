/**
 * The TLS listeners on 127.0.0.1, in process, with certificates made by `openssl`
 * (src/cli/dev-certs.ts): the etcd client port's protocol sniffing and its hostile cases
 * (stalls, garbage, missing or foreign client certificates), certificate rotation without a
 * restart, and mutual TLS between raft peers (a peer without a valid certificate delivers
 * nothing).
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer as createHttpServer, request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { ClientListener, type ClientListenerOptions } from '../../src/api/etcd/client-listener.js';
import { ensureDevCertificates, signCertificate, type DevCertificates } from '../../src/cli/dev-certs.js';
import { pack } from 'msgpackr';
import { encodeFrame, PeerTransport, type PeerTransportOptions } from '../../src/node/peer-transport.js';
import { TlsFiles } from '../../src/util/tls-files.js';
import { tempDir } from '../support/conured-process.js';
import { until } from '../support/until.js';

const dir = tempDir('conure-tls-');
let certs: DevCertificates;
/** Certificates from another CA: well-formed, but not trusted by the listeners. */
let foreign: DevCertificates;
const opened: TlsFiles[] = [];

before(async () => {
  certs = await ensureDevCertificates(`${dir.dir}/ca`, ['127.0.0.1', 'localhost']);
  foreign = await ensureDevCertificates(`${dir.dir}/foreign`, ['127.0.0.1', 'localhost']);
});
after(() => {
  for (const f of opened) f.close();
  dir.cleanup();
});

function files(pair: { cert: string; key: string }, ca = certs.ca, reloadIntervalMs?: number): TlsFiles {
  const f = TlsFiles.load({ certFile: pair.cert, keyFile: pair.key, caFile: ca, ...(reloadIntervalMs !== undefined && { reloadIntervalMs }) });
  opened.push(f);
  return f;
}

/** A client listener with a real http.Server behind it and a recording stand-in for grpc-js. */
async function listener(extra: Partial<ClientListenerOptions> = {}) {
  const injected: Socket[] = [];
  const http = createHttpServer((req, res) => res.end(`hello ${req.url}`));
  const l = new ClientListener({ host: '127.0.0.1', port: 0, grpc: { injectConnection: (s) => { injected.push(s as Socket); (s as Socket).destroy(); } }, http, ...extra });
  const port = await l.start();
  return { l, port, injected, close: () => l.close() };
}

function get(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(body));
    }).on('error', reject).end();
  });
}

/** Opens a raw TCP connection, writes `bytes`, and resolves when the server closes it. */
async function closedAfter(port: number, bytes: Buffer): Promise<void> {
  const s = connect({ host: '127.0.0.1', port });
  s.on('error', () => undefined);
  s.on('data', () => undefined);
  await new Promise((r) => s.once('connect', r));
  s.write(bytes);
  await new Promise((r) => s.once('close', r));
}

/** A TLS connection; resolves with the socket once secure, or with the error that ended it. */
function tlsDial(port: number, opts: ConnectionOptions): Promise<TLSSocket | Error> {
  return new Promise((resolve) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ...opts });
    s.once('secureConnect', () => {
      // TLS 1.3: a refused client certificate is reported after the client's handshake ends.
      s.once('error', (err) => resolve(err));
      s.once('close', () => resolve(new Error('closed by the server')));
      s.write('GET /tls HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      s.once('data', () => resolve(s));
    });
    s.once('error', (err) => resolve(err));
  });
}

describe('etcd client port: one listener for gRPC and HTTP/1.1', () => {
  it('sends HTTP/1.1 to the http server and the HTTP/2 preface to gRPC', async () => {
    const { l, port, injected, close } = await listener();
    assert.equal(await get(port, '/health'), 'hello /health');
    await closedAfter(port, Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00', 'latin1'));
    assert.equal(injected.length, 1);
    assert.deepEqual({ grpc: l.stats.grpc, http: l.stats.http }, { grpc: 1, http: 1 });
    await close();
  });

  it('closes a client that sends 3 bytes of the preface and stalls', async () => {
    const { l, port, injected, close } = await listener({ sniffTimeoutMs: 200 });
    await closedAfter(port, Buffer.from('PRI'));
    assert.equal(l.stats.refused, 1);
    assert.equal(injected.length, 0);
    await close();
  });

  it('closes a client that sends nothing at all', async () => {
    const { l, port, close } = await listener({ sniffTimeoutMs: 200 });
    await closedAfter(port, Buffer.alloc(0));
    assert.equal(l.stats.refused, 1);
    await close();
  });

  it('closes a client that sends garbage, and one that sends a TLS hello to the plain port', async () => {
    const { l, port, injected, close } = await listener();
    await closedAfter(port, Buffer.from([0x00, 0xff, 0x13, 0x37, 0x0a]));
    await closedAfter(port, Buffer.from('hello world\r\n'));
    await closedAfter(port, Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]));
    assert.equal(l.stats.garbage, 3);
    assert.equal(injected.length, 0);
    assert.equal(l.stats.http, 0);
    await close();
  });

  it('refuses connections over connectionsMax', async () => {
    const { l, port, close } = await listener({ connectionsMax: 1, sniffTimeoutMs: 5000 });
    const first = connect({ host: '127.0.0.1', port });
    await new Promise((r) => first.once('connect', r));
    await closedAfter(port, Buffer.from('GET'));
    assert.equal(l.stats.refused, 1);
    first.destroy();
    await close();
  });
});

describe('etcd client port with TLS', () => {
  it('serves a client with a trusted certificate; ALPN gives curl-like clients HTTP/1.1 and gRPC clients h2', async () => {
    const { l, port, close } = await listener({ tls: { files: files(certs.server), clientCertAuth: true } });
    const client = { ca: readCa(), ...(pem(certs.client)) };
    const both = await tlsDial(port, { ...client, ALPNProtocols: ['h2', 'http/1.1'] });
    assert.ok(!(both instanceof Error), String(both));
    assert.equal(both.alpnProtocol, 'http/1.1');
    both.destroy();
    const h2 = await tlsDial(port, { ...client, ALPNProtocols: ['h2'] });
    assert.ok(!(h2 instanceof Error));
    assert.equal(h2.alpnProtocol, 'h2');
    h2.destroy();
    assert.ok(l.stats.http >= 1);
    await close();
  });

  it('with client-cert-auth, refuses a client without a certificate or with one from another CA', async () => {
    const { l, port, injected, close } = await listener({ tls: { files: files(certs.server), clientCertAuth: true } });
    const ca = readCa();
    assert.ok((await tlsDial(port, { ca })) instanceof Error);
    assert.ok((await tlsDial(port, { ca, ...(pem(foreign.client)) })) instanceof Error);
    await until('both handshakes counted', () => l.stats.tlsFailed >= 2);
    assert.equal(l.stats.http + l.stats.grpc, 0);
    assert.equal(injected.length, 0);
    await close();
  });

  it('closes a client that completes no TLS handshake in time, and plain HTTP sent to the TLS port', async () => {
    const { l, port, close } = await listener({ tls: { files: files(certs.server), clientCertAuth: false }, sniffTimeoutMs: 200 });
    await closedAfter(port, Buffer.from([0x16, 0x03]));
    await closedAfter(port, Buffer.from('GET /health HTTP/1.1\r\nHost: x\r\n\r\n'));
    assert.equal(l.stats.http, 0);
    assert.ok(l.stats.tlsFailed >= 2);
    await close();
  });

  it('serves a rotated certificate without a restart', async () => {
    const rotDir = `${dir.dir}/rotate`;
    mkdirSync(rotDir, { recursive: true });
    copyFileSync(certs.ca, `${rotDir}/ca.pem`);
    copyFileSync(`${certs.dir}/ca-key.pem`, `${rotDir}/ca-key.pem`);
    const pair = await signCertificate(rotDir, 'server', 'server', ['127.0.0.1']);
    const { port, close } = await listener({ tls: { files: files(pair, certs.ca, 50), clientCertAuth: false } });
    const ca = readCa();
    const served = async () => {
      const s = await tlsDial(port, { ca });
      assert.ok(!(s instanceof Error), String(s));
      const fp = s.getPeerCertificate().fingerprint256;
      s.destroy();
      return fp;
    };
    const before = await served();
    await signCertificate(rotDir, 'server', 'server', ['127.0.0.1']);
    await until('the new certificate is served', async () => (await served()) !== before);
    await close();
  });
});

describe('raft peers with mutual TLS', () => {
  function peer(id: string, tls: PeerTransportOptions['tls'], got: unknown[] = []) {
    return new PeerTransport({ id, listenHost: '127.0.0.1', listenPort: 0, onMessage: (_from, msg) => got.push(msg), redialMinMs: 10, redialMaxMs: 50, handshakeTimeoutMs: 500, ...(tls && { tls }) });
  }

  it('delivers between peers with certificates from the trusted CA', async () => {
    const got: unknown[] = [];
    const b = peer('b', { files: files(certs.peer), clientCertAuth: true }, got);
    const a = peer('a', { files: files(certs.peer), clientCertAuth: true });
    const port = await b.start();
    await a.start();
    for (let i = 0; i < 100; i++) a.send('b', `127.0.0.1:${port}`, i);
    await until('100 messages', () => got.length === 100);
    assert.deepEqual(got, Array.from({ length: 100 }, (_, i) => i));
    await a.close(); await b.close();
  });

  it('a peer without a certificate, with a foreign one, or speaking plain TCP delivers nothing', async () => {
    const got: unknown[] = [];
    const b = peer('b', { files: files(certs.peer), clientCertAuth: true }, got);
    const port = await b.start();
    const ca = readCa();
    assert.ok((await tlsDial(port, { ca })) instanceof Error);
    assert.ok((await tlsDial(port, { ca, ...(pem(foreign.peer)) })) instanceof Error);
    await closedAfter(port, encodeFrame(pack({ from: 'a', to: 'b', msg: 'forged' })));
    // An impostor transport with the other CA's certificate: its messages never arrive.
    const impostor = peer('a', { files: files(foreign.peer, foreign.ca), clientCertAuth: true });
    impostor.send('b', `127.0.0.1:${port}`, 'forged');
    await until('four failed handshakes', () => b.stats.authFailed >= 4);
    assert.deepEqual(got, []);
    assert.equal(b.stats.received, 0);
    await impostor.close(); await b.close();
  });

  it('the dialler refuses a listener whose certificate it does not trust, sending it nothing', async () => {
    const got: unknown[] = [];
    const b = peer('b', { files: files(foreign.peer, foreign.ca), clientCertAuth: false }, got);
    const port = await b.start();
    const a = peer('a', { files: files(certs.peer), clientCertAuth: true });
    a.send('b', `127.0.0.1:${port}`, 'secret data');
    await until('the dialler counted the failure', () => a.stats.authFailed >= 1);
    assert.deepEqual(got, []);
    await a.close(); await b.close();
  });

  it('stalled TLS handshakes count against the handshake limit and time out', async () => {
    const b = peer('b', { files: files(certs.peer), clientCertAuth: true });
    const port = await b.start();
    await closedAfter(port, Buffer.from([0x16, 0x03, 0x01]));
    assert.ok(b.stats.refused + b.stats.authFailed >= 1);
    await b.close();
  });
});

function readCa(): Buffer {
  return readFileSync(certs.ca);
}

function pem(pair: { cert: string; key: string }): { cert: Buffer; key: Buffer } {
  return { cert: readFileSync(pair.cert), key: readFileSync(pair.key) };
}
