import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { pack } from 'msgpackr';
import { ClientHandshake, PeerSecret } from './peer-auth.js';
import { encodeFrame, FrameDecoder, PeerTransport, type PeerTransportOptions } from './peer-transport.js';

async function until(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

function pair() {
  const got: Array<{ from: string; msg: unknown }> = [];
  const b = new PeerTransport({ id: 'b', listenHost: '127.0.0.1', listenPort: 0, onMessage: (from, msg) => got.push({ from, msg }), frameBytesMax: 1024 * 1024 });
  const a = new PeerTransport({ id: 'a', listenHost: '127.0.0.1', listenPort: 0, onMessage: () => undefined, redialMinMs: 10, redialMaxMs: 50 });
  return { a, b, got };
}

describe('FrameDecoder', () => {
  it('reassembles frames from any split of the byte stream (property)', () => {
    fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }), fc.array(fc.nat(50), { maxLength: 30 }), (payloads, cuts) => {
      const stream = Buffer.concat(payloads.map((p) => encodeFrame(Buffer.from(p))));
      const dec = new FrameDecoder(1000);
      const out: Buffer[] = [];
      let at = 0;
      for (const c of cuts) { out.push(...dec.push(stream.subarray(at, Math.min(stream.length, at + c)))); at = Math.min(stream.length, at + c); }
      out.push(...dec.push(stream.subarray(at)));
      assert.deepEqual(out.map((b) => b.toString('hex')), payloads.map((p) => Buffer.from(p).toString('hex')));
    }));
  });

  it('refuses a frame over the limit', () => {
    assert.throws(() => new FrameDecoder(10).push(encodeFrame(Buffer.alloc(11))), /exceeds the 10-byte limit/);
  });
});

describe('PeerTransport', () => {
  it('delivers messages in order, with binary payloads intact', async () => {
    const { a, b, got } = pair();
    const port = await b.start();
    await a.start();
    for (let i = 0; i < 500; i++) a.send('b', `127.0.0.1:${port}`, { i, data: new Uint8Array([i & 255, 1, 2]) });
    await until(() => got.length === 500);
    assert.deepEqual(got.map((g) => (g.msg as { i: number }).i), Array.from({ length: 500 }, (_, i) => i));
    assert.equal(got[7]!.from, 'a');
    assert.deepEqual(Buffer.from((got[7]!.msg as { data: Uint8Array }).data), Buffer.from([7, 1, 2]));
    await a.close(); await b.close();
  });

  it('queues while the peer is down and delivers after it starts (redial with backoff)', async () => {
    const { a, b, got } = pair();
    const probe = new PeerTransport({ id: 'probe', listenHost: '127.0.0.1', listenPort: 0, onMessage: () => undefined });
    const port = await probe.start();
    await probe.close(); // a free port nobody listens on yet
    a.send('b', `127.0.0.1:${port}`, 'early');
    await new Promise((r) => setTimeout(r, 100));
    const b2 = new PeerTransport({ id: 'b', listenHost: '127.0.0.1', listenPort: port, onMessage: (from, msg) => got.push({ from, msg }) });
    await b2.start();
    await until(() => got.length === 1);
    assert.equal(got[0]!.msg, 'early');
    await a.close(); await b2.close(); await b.close();
  });

  it('closes a connection that sends a malformed or oversized frame, and keeps serving others', async () => {
    const { a, b, got } = pair();
    const port = await b.start();
    const garbage = connect({ host: '127.0.0.1', port });
    await new Promise((r) => garbage.once('connect', r));
    const closed = new Promise((r) => garbage.once('close', r));
    garbage.write(encodeFrame(Buffer.from([0xc1, 0xc1, 0xc1]))); // 0xc1 is never valid msgpack
    await closed;
    const huge = connect({ host: '127.0.0.1', port });
    await new Promise((r) => huge.once('connect', r));
    const closedHuge = new Promise((r) => huge.once('close', r));
    const head = Buffer.alloc(4); head.writeUInt32BE(64 * 1024 * 1024, 0);
    huge.write(head);
    await closedHuge;
    const wrongShape = connect({ host: '127.0.0.1', port });
    await new Promise((r) => wrongShape.once('connect', r));
    const closedShape = new Promise((r) => wrongShape.once('close', r));
    wrongShape.write(encodeFrame(pack([1, 2, 3])));
    await closedShape;
    assert.equal(b.stats.badFrames, 3);
    a.send('b', `127.0.0.1:${port}`, 'still fine');
    await until(() => got.length === 1);
    await a.close(); await b.close();
  });

  it('drops messages addressed to another id and bounds the queue', async () => {
    const { b, got } = pair();
    const port = await b.start();
    const c = new PeerTransport({ id: 'c', listenHost: '127.0.0.1', listenPort: 0, onMessage: () => undefined, queueMessagesMax: 3 });
    c.send('not-b', `127.0.0.1:${port}`, 'misrouted');
    await until(() => b.stats.dropped === 1);
    assert.equal(got.length, 0);
    const d = new PeerTransport({ id: 'd', listenHost: '127.0.0.1', listenPort: 0, onMessage: () => undefined, queueMessagesMax: 3 });
    for (let i = 0; i < 10; i++) d.send('x', '127.0.0.1:1', i); // never connects
    assert.equal(d.stats.dropped, 7);
    await c.close(); await d.close(); await b.close();
  });
});

const SECRET = new PeerSecret('correct horse battery staple');

function listener(extra: Partial<PeerTransportOptions> = {}) {
  const got: Array<{ from: string; msg: unknown }> = [];
  const t = new PeerTransport({ id: 'b', listenHost: '127.0.0.1', listenPort: 0, onMessage: (from, msg) => got.push({ from, msg }), frameBytesMax: 64 * 1024, ...extra });
  return { t, got };
}

async function raw(port: number) {
  const s = connect({ host: '127.0.0.1', port });
  await new Promise((r) => s.once('connect', r));
  const closed = new Promise<void>((r) => s.once('close', () => r()));
  const data: Buffer[] = [];
  s.on('data', (c) => data.push(c));
  s.on('error', () => undefined);
  return { s, closed, data };
}

describe('PeerTransport with a cluster secret', () => {
  it('delivers between members that share the secret, and nothing between members that do not', async () => {
    const { t: b, got } = listener({ secret: SECRET });
    const port = await b.start();
    const a = new PeerTransport({ id: 'a', listenHost: '127.0.0.1', listenPort: 0, onMessage: () => undefined, secret: SECRET });
    for (let i = 0; i < 50; i++) a.send('b', `127.0.0.1:${port}`, { i });
    await until(() => got.length === 50);
    assert.deepEqual(got.map((g) => (g.msg as { i: number }).i), Array.from({ length: 50 }, (_, i) => i));
    const wrong = new PeerTransport({ id: 'm', listenHost: '127.0.0.1', listenPort: 0, onMessage: () => undefined, secret: new PeerSecret('another secret of enough bytes'), redialMinMs: 20, redialMaxMs: 40 });
    wrong.send('b', `127.0.0.1:${port}`, 'forged');
    const none = new PeerTransport({ id: 'n', listenHost: '127.0.0.1', listenPort: 0, onMessage: () => undefined, redialMinMs: 20, redialMaxMs: 40 });
    none.send('b', `127.0.0.1:${port}`, 'forged too');
    await until(() => wrong.stats.authFailed >= 2 && b.stats.badFrames + b.stats.authFailed >= 2);
    assert.equal(got.length, 50);
    await a.close(); await wrong.close(); await none.close(); await b.close();
  });

  it('refuses a plain frame, a bad MAC and a replayed frame after the handshake', async () => {
    const { t: b, got } = listener({ secret: SECRET });
    const port = await b.start();
    const plain = await raw(port);
    plain.s.write(encodeFrame(pack({ from: 'a', to: 'b', msg: 'x' })));
    await plain.closed;
    // A client that knows the secret, speaking the protocol by hand.
    const c = await raw(port);
    const hs = new ClientHandshake(SECRET, 'a', 'b');
    c.s.write(encodeFrame(hs.hello()));
    await until(() => Buffer.concat(c.data).length >= 4 + 64);
    const answer = hs.answer(Buffer.concat(c.data).subarray(4, 4 + 64))!;
    assert.ok(answer, 'the listener proves it knows the secret');
    c.s.write(encodeFrame(answer.auth));
    const signed = answer.mac.sign(pack({ from: 'a', to: 'b', msg: 'once' }));
    c.s.write(encodeFrame(signed));
    await until(() => got.length === 1);
    c.s.write(encodeFrame(signed)); // the same frame again: its sequence number is spent
    await c.closed;
    assert.equal(got.length, 1);
    const d = await raw(port);
    const hs2 = new ClientHandshake(SECRET, 'a', 'b');
    d.s.write(encodeFrame(hs2.hello()));
    await until(() => Buffer.concat(d.data).length >= 4 + 64);
    const ans2 = hs2.answer(Buffer.concat(d.data).subarray(4, 4 + 64))!;
    d.s.write(encodeFrame(ans2.auth));
    const tampered = ans2.mac.sign(pack({ from: 'a', to: 'b', msg: 'ok' }));
    tampered.writeUInt8(tampered.readUInt8(5) ^ 1, 5); // readUInt8 throws when out of range
    d.s.write(encodeFrame(tampered));
    await d.closed;
    assert.equal(got.length, 1);
    await b.close();
  });

  it('closes connections that do not complete the handshake in time, and bounds handshakes', async () => {
    const { t: b } = listener({ secret: SECRET, handshakeTimeoutMs: 150, handshakesMax: 3 });
    const port = await b.start();
    const idle = await Promise.all([raw(port), raw(port), raw(port), raw(port), raw(port)]);
    await Promise.all(idle.map((c) => c.closed));
    assert.ok(b.stats.refused >= 5, `refused ${b.stats.refused}`);
    await b.close();
  });
});

describe('PeerTransport limits (finding 5)', () => {
  it('caps inbound connections', async () => {
    const { t: b } = listener({ inboundConnectionsMax: 4 });
    const port = await b.start();
    const conns = await Promise.all(Array.from({ length: 10 }, () => raw(port)));
    await until(() => b.stats.refused === 6);
    for (const c of conns) c.s.destroy();
    await b.close();
  });

  it('closes a connection whose frame does not complete in time', async () => {
    const { t: b } = listener({ frameTimeoutMs: 150 });
    const port = await b.start();
    const c = await raw(port);
    const head = Buffer.alloc(4); head.writeUInt32BE(1000, 0);
    c.s.write(Buffer.concat([head, Buffer.alloc(10)]));
    await c.closed;
    assert.equal(b.stats.refused, 1);
    await b.close();
  });

  it('bounds the bytes of partial frames over all connections', async () => {
    const { t: b, got } = listener({ inboundBufferedBytesMax: 50_000 });
    const port = await b.start();
    const head = Buffer.alloc(4); head.writeUInt32BE(60_000, 0);
    const conns = await Promise.all(Array.from({ length: 3 }, () => raw(port)));
    for (const c of conns) c.s.write(Buffer.concat([head, Buffer.alloc(20_000)]));
    await until(() => b.stats.refused >= 1);
    // What is left can still talk.
    const a = new PeerTransport({ id: 'a', listenHost: '127.0.0.1', listenPort: 0, onMessage: () => undefined });
    for (const c of conns) c.s.destroy();
    a.send('b', `127.0.0.1:${port}`, 'fine');
    await until(() => got.length === 1);
    await a.close(); await b.close();
  });

  it('keeps one sender per connection', async () => {
    const { t: b, got } = listener();
    const port = await b.start();
    const c = await raw(port);
    c.s.write(encodeFrame(pack({ from: 'a', to: 'b', msg: 1 })));
    c.s.write(encodeFrame(pack({ from: 'z', to: 'b', msg: 2 })));
    await c.closed;
    assert.deepEqual(got.map((g) => g.from), ['a']);
    await b.close();
  });
});

