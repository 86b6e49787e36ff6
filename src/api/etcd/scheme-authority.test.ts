import { test } from 'node:test';
import assert from 'node:assert/strict';
import { credentials, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';
import type { Msg } from './codec.js';
import { HpackDecoder, HpackError, encodeLiterals, huffmanDecode } from './hpack.js';
import { etcdProto } from './proto.js';
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
