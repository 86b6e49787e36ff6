import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { pack } from 'msgpackr';
import { encodeFrame, FrameDecoder, PeerTransport } from './peer-transport.js';

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
