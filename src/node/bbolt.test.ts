/**
 * The bbolt reader on small files built here page by page (the real etcd snapshot is read in
 * test/e2e/etcd-migrate.test.ts): B+tree walks across branch pages, inline buckets, overflow
 * pages, the meta page choice, and damaged files refused with a message.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError } from '../util/index.js';
import { BoltFile } from './bbolt.js';

const PS = 4096;

function fnv1a64(b: Buffer): bigint {
  let h = 0xcbf29ce484222325n;
  for (const x of b) h = BigInt.asUintN(64, (h ^ BigInt(x)) * 0x100000001b3n);
  return h;
}

function header(p: Buffer, id: number, flags: number, count: number, overflow = 0): void {
  p.writeBigUInt64LE(BigInt(id), 0);
  p.writeUInt16LE(flags, 8);
  p.writeUInt16LE(count, 10);
  p.writeUInt32LE(overflow, 12);
}

function meta(id: number, root: number, highWater: number, txid: number): Buffer {
  const p = Buffer.alloc(PS);
  header(p, id, 0x04, 0);
  const m = 16;
  p.writeUInt32LE(0xed0cdaed, m);
  p.writeUInt32LE(2, m + 4);
  p.writeUInt32LE(PS, m + 8);
  p.writeBigUInt64LE(BigInt(root), m + 16);
  p.writeBigUInt64LE(0xffffffffffffffffn, m + 32);
  p.writeBigUInt64LE(BigInt(highWater), m + 40);
  p.writeBigUInt64LE(BigInt(txid), m + 48);
  p.writeBigUInt64LE(fnv1a64(p.subarray(m, m + 56)), m + 56);
  return p;
}

/** A leaf page (or, with id -1, an inline page sized to fit) of [key, value, isBucket] entries. */
function leaf(id: number, entries: Array<[string | Buffer, Buffer, boolean?]>, pages = 1): Buffer {
  const data = entries.map(([k, v]) => Buffer.concat([Buffer.from(k), v]));
  const size = id < 0 ? 16 + entries.length * 16 + data.reduce((n, d) => n + d.length, 0) : PS * pages;
  const p = Buffer.alloc(size);
  header(p, Math.max(0, id), 0x02, entries.length, pages - 1);
  let at = 16 + entries.length * 16;
  entries.forEach(([k, v, bucket], i) => {
    const e = 16 + i * 16;
    p.writeUInt32LE(bucket ? 1 : 0, e);
    p.writeUInt32LE(at - e, e + 4);
    p.writeUInt32LE(Buffer.from(k).length, e + 8);
    p.writeUInt32LE(v.length, e + 12);
    data[i]!.copy(p, at);
    at += data[i]!.length;
  });
  return p;
}

function branch(id: number, children: Array<[string, number]>): Buffer {
  const p = Buffer.alloc(PS);
  header(p, id, 0x01, children.length);
  let at = 16 + children.length * 16;
  children.forEach(([k, child], i) => {
    const e = 16 + i * 16;
    p.writeUInt32LE(at - e, e);
    p.writeUInt32LE(k.length, e + 4);
    p.writeBigUInt64LE(BigInt(child), e + 8);
    p.write(k, at);
    at += k.length;
  });
  return p;
}

const bucketRef = (root: number, inline?: Buffer) => Buffer.concat([Buffer.from(new BigUint64Array([BigInt(root), 0n]).buffer), inline ?? Buffer.alloc(0)]);

/** pages: 0,1 meta; 2 root leaf {big: →3, small: inline}; 3 branch → 4, 5; 4 leaf a,b; 5 leaf (2 pages) c (5000 bytes), d. */
function sample(opts: { txid0?: number; txid1?: number; child?: number } = {}): Buffer {
  const inline = leaf(-1, [['x', Buffer.from('1')], ['y', Buffer.from('2')]]);
  return Buffer.concat([
    meta(0, 2, 7, opts.txid0 ?? 4), meta(1, 2, 7, opts.txid1 ?? 5),
    leaf(2, [['big', bucketRef(3), true], ['small', bucketRef(0, inline), true]]),
    branch(3, [['a', 4], ['c', opts.child ?? 5]]),
    leaf(4, [['a', Buffer.from('va')], ['b', Buffer.from('vb')]]),
    leaf(5, [['c', Buffer.alloc(5000, 0x63)], ['d', Buffer.from('vd')]], 2),
  ]);
}

const entries = (f: BoltFile, name: string) => [...f.bucket(name)].map((e) => [e.key.toString(), e.value.length > 8 ? `${e.value.length} bytes` : e.value.toString()]);
const refused = (fn: () => unknown, re: RegExp) => assert.throws(fn, (e: unknown) => e instanceof InvalidArgumentError && re.test(e.message));

test('walks branch pages in key order, overflow pages, inline buckets; the newer meta page wins', () => {
  const f = new BoltFile(sample());
  assert.equal(f.pageSize, PS);
  assert.equal(f.txid, 5n);
  assert.deepEqual(f.rootEntries().map((e) => [e.key.toString(), e.bucket]), [['big', true], ['small', true]]);
  assert.deepEqual(entries(f, 'big'), [['a', 'va'], ['b', 'vb'], ['c', '5000 bytes'], ['d', 'vd']]);
  assert.deepEqual(entries(f, 'small'), [['x', '1'], ['y', '2']]);
  assert.deepEqual([...f.bucket('absent')], []);
  assert.equal(new BoltFile(sample({ txid0: 9 })).txid, 9n);
});

test('a damaged meta page falls back to the other; both damaged is not a bbolt file', () => {
  const one = sample();
  one[16 + 48] = 0x77; // page 0's txid, so its checksum no longer holds
  assert.equal(new BoltFile(one).txid, 5n);
  const both = sample();
  both[16 + 48] = 0x77;
  both[PS + 16 + 48] = 0x77;
  refused(() => new BoltFile(both), /not a bbolt file/);
  refused(() => new BoltFile(Buffer.alloc(100)), /not a bbolt file/);
  refused(() => new BoltFile(Buffer.from('hello')), /not a bbolt file/);
});

test('hostile pages: cycles, page ids outside the file, truncation, elements outside their page, disorder, wrong page types', () => {
  refused(() => [...new BoltFile(sample({ child: 3 })).bucket('big')], /visits page 3 twice/);
  refused(() => [...new BoltFile(sample({ child: 99 })).bucket('big')], /page 99, outside the file's pages 2\.\.6/);
  refused(() => [...new BoltFile(sample({ child: 1 })).bucket('big')], /outside the file's pages/);
  refused(() => [...new BoltFile(sample().subarray(0, 5 * PS + 100)).bucket('big')], /runs past the end of the file \(truncated\?\)/);
  const far = sample();
  far.writeUInt32LE(0x7fffffff, 4 * PS + 16 + 4); // page 4, element 0: pos
  refused(() => [...new BoltFile(far).bucket('big')], /points outside its page/);
  const disorder = sample();
  disorder.write('z', 4 * PS + 16 + 32); // page 4's first key "a" becomes "z" > "b"
  refused(() => [...new BoltFile(disorder).bucket('big')], /keys out of order/);
  const wrongId = sample();
  wrongId.writeBigUInt64LE(9n, 4 * PS);
  refused(() => [...new BoltFile(wrongId).bucket('big')], /page 4 carries id 9/);
  const freelist = sample();
  freelist.writeUInt16LE(0x10, 4 * PS + 8);
  refused(() => [...new BoltFile(freelist).bucket('big')], /flags 0x10 where a branch or leaf belongs/);
  const notBucket = sample();
  notBucket.writeUInt32LE(0, 2 * PS + 16); // root entry "big" loses its bucket flag
  refused(() => [...new BoltFile(notBucket).bucket('big')], /big is a key, not a bucket/);
});
