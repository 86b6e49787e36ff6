import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { credentials, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';
import type { Msg } from './codec.js';
import { HpackDecoder, HpackError, encodeLiterals, huffmanDecode } from './hpack.js';
import { etcdProto } from './proto/index.js';
import { authorityWithoutScheme } from './scheme-authority.js';
import { startTestEtcdServer } from './test-server.js';

test('HPACK: RFC 7541 C.4 requests (Huffman, dynamic table across blocks)', () => {
  const d = new HpackDecoder();
  const fields = (hex: string) => d.decode(Buffer.from(hex.replace(/\s/g, ''), 'hex')).map((f) => `${f.name}: ${f.value}`);
  assert.deepEqual(fields('8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff'), [':method: GET', ':scheme: http', ':path: /', ':authority: www.example.com']);
  assert.deepEqual(fields('8286 84be 5886 a8eb 1064 9cbf'), [':method: GET', ':scheme: http', ':path: /', ':authority: www.example.com', 'cache-control: no-cache']);
  assert.deepEqual(fields('8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf'),
    [':method: GET', ':scheme: https', ':path: /index.html', ':authority: www.example.com', 'custom-key: custom-value']);
  assert.equal(huffmanDecode(Buffer.from('f1e3c2e5f23a6ba0ab90f4ff', 'hex')).toString(), 'www.example.com');
});

test('HPACK: hostile blocks are errors, literals round-trip', () => {
  const d = new HpackDecoder();
  assert.throws(() => d.decode(Buffer.from([0xff])), HpackError); // truncated integer
  assert.throws(() => d.decode(Buffer.from([0xbf, 0x01])), HpackError); // index beyond the tables
  assert.throws(() => d.decode(Buffer.from([0x3f, 0xe1, 0x7f])), HpackError); // table size above 4096
  assert.throws(() => d.decode(Buffer.from([0x80])), HpackError); // index 0
  assert.throws(() => huffmanDecode(Buffer.from([0x00])), HpackError); // padding not all ones
  assert.throws(() => d.decode(Buffer.from([0x41, 0x7f, 0xff, 0xff, 0xff, 0x7f])), HpackError); // integer too large
  const fields = [{ name: ':authority', value: 'h:1', neverIndexed: false }, { name: 'x-long', value: 'v'.repeat(300), neverIndexed: true }];
  assert.deepEqual(new HpackDecoder().decode(encodeLiterals(fields)), fields);
});

test('authorityWithoutScheme', () => {
  assert.equal(authorityWithoutScheme('http://127.0.0.1:2379'), '127.0.0.1:2379');
  assert.equal(authorityWithoutScheme('https://[::1]:2379/'), '[::1]:2379');
  assert.equal(authorityWithoutScheme('127.0.0.1:2379'), '127.0.0.1:2379');
});

test('a client sending :authority "http://host:port" (as etcdctl 3.4 does) is answered, many calls on one connection', async () => {
  const server = await startTestEtcdServer();
  const KV = etcdProto().KV as ServiceClientConstructor;
  const plain = new KV(server.endpoint, credentials.createInsecure());
  const schemed = new KV(server.endpoint, credentials.createInsecure(), { 'grpc.default_authority': `http://${server.endpoint}` });
  const put = (c: InstanceType<typeof KV>, key: string) => new Promise<Msg>((resolve, reject) => {
    (c as unknown as { Put(r: Msg, cb: (e: ServiceError | null, r: Msg) => void): void }).Put({ key: Buffer.from(key), value: Buffer.from('v') }, (e, r) => (e ? reject(e) : resolve(r)));
  });
  try {
    for (let i = 0; i < 50; i++) {
      await put(schemed, `s${i}`);
      await put(plain, `p${i}`);
    }
    assert.equal(server.sm.currentRevision(), 101);
  } finally {
    plain.close();
    schemed.close();
    await server.close();
  }
});

/** One HTTP/2 frame. */
const frame = (type: number, flags: number, stream: number, payload: Buffer) => {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
};

test('raw HTTP/2: bytes of a frame cut short when the peek settles are handed over too', async () => {
  const server = await startTestEtcdServer();
  const sock = connect(server.port, '127.0.0.1');
  try {
    const got: Buffer[] = [];
    let settings = () => {};
    const sawSettings = new Promise<void>((r) => { settings = r; });
    sock.on('data', (b: Buffer) => { got.push(b); if (Buffer.concat(got).length >= 9) settings(); });
    await new Promise<void>((r) => sock.once('connect', () => r()));
    sock.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'), frame(4, 0, 0, Buffer.alloc(0))]));
    await sawSettings; // the empty SETTINGS, sent as soon as the preface is complete
    const headers = frame(1, 0x4, 1, encodeLiterals([
      [':method', 'POST'], [':scheme', 'http'], [':path', '/etcdserverpb.Maintenance/Status'], [':authority', server.endpoint],
      ['content-type', 'application/grpc'], ['te', 'trailers'],
    ].map(([name, value]) => ({ name: name!, value: value!, neverIndexed: false }))));
    const data = frame(0, 0x1, 1, Buffer.alloc(5)); // an empty StatusRequest, END_STREAM
    // ACK, the request's HEADERS and 4 bytes of the DATA frame's header; the rest after a pause.
    sock.write(Buffer.concat([frame(4, 0x1, 0, Buffer.alloc(0)), headers, data.subarray(0, 4)]));
    await new Promise((r) => setTimeout(r, 100));
    sock.write(data.subarray(4));
    // The answer: a DATA frame on stream 1 (the StatusResponse).
    const answered = async () => {
      for (let i = 0; i < 100; i++) {
        const all = Buffer.concat(got);
        for (let at = 0; at + 9 <= all.length; at += 9 + all.readUIntBE(at, 3)) {
          if (all[at + 3] === 0 && (all.readUInt32BE(at + 5) & 0x7fffffff) === 1) return true;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      return false;
    };
    assert.ok(await answered(), 'the Status call was answered');
  } finally {
    sock.destroy();
    await server.close();
  }
});
