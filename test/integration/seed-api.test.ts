import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { CONURECTL, startConured, tempDir, type ConuredProcess } from '../support/conured-process.js';

const run = promisify(execFile);

/** Runs real curl, as the deployment guides do; returns status and body. */
async function curl(...args: string[]): Promise<{ status: number; body: string }> {
  const { stdout } = await run('curl', ['-s', '-w', '\n%{http_code}', ...args]);
  const at = stdout.lastIndexOf('\n');
  return { status: Number(stdout.slice(at + 1)), body: stdout.slice(0, at) };
}

describe('seed REST API against a real conured', () => {
  let node: ConuredProcess;
  let cleanup: () => void;
  let base: string;
  before(async () => {
    const t = tempDir('conure-seed-');
    cleanup = t.cleanup;
    node = await startConured({ dataDir: t.dir });
    base = node.url.replace('127.0.0.1', 'localhost');
  });
  after(async () => { await node.stop(); cleanup(); });

  it('PUT with a value parameter answers OK, GET returns it', async () => {
    assert.deepEqual(await curl('-X', 'PUT', `${base}/kv?key=mykey&value=myvalue`), { status: 200, body: 'OK' });
    assert.deepEqual(await curl(`${base}/kv?key=mykey`), { status: 200, body: 'myvalue' });
  });

  it('PUT stores the request body when no value parameter is given', async () => {
    assert.deepEqual(await curl('-X', 'PUT', `${base}/kv?key=test`, '-d', 'value'), { status: 200, body: 'OK' });
    assert.deepEqual(await curl(`${base}/kv?key=test`), { status: 200, body: 'value' });
  });

  it('URL-encoded JSON values round-trip byte for byte', async () => {
    const json = '{"user":"ünï","n":[1,2,3],"s":"a&b=c+d %"}';
    assert.equal((await curl('-X', 'PUT', `${base}/kv?key=json&value=${encodeURIComponent(json)}`)).body, 'OK');
    assert.equal((await curl(`${base}/kv?key=json`)).body, json);
    const res = await fetch(`${node.url}/kv?key=json`);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), Buffer.from(json, 'utf8'));
  });

  it('binary bodies round-trip exactly', async () => {
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    assert.equal((await fetch(`${node.url}/kv?key=bin`, { method: 'PUT', body: bytes })).status, 200);
    assert.deepEqual(Buffer.from(await (await fetch(`${node.url}/kv?key=bin`)).arrayBuffer()), bytes);
  });

  it('an absent key gives 200 with an empty body', async () => {
    assert.deepEqual(await curl(`${base}/kv?key=never-written`), { status: 200, body: '' });
  });

  it('DELETE answers OK and the key is gone', async () => {
    await curl('-X', 'PUT', `${base}/kv?key=gone&value=x`);
    assert.deepEqual(await curl('-X', 'DELETE', `${base}/kv?key=gone`), { status: 200, body: 'OK' });
    assert.deepEqual(await curl(`${base}/kv?key=gone`), { status: 200, body: '' });
  });

  it('a missing key gives 400 "missing key"', async () => {
    assert.deepEqual(await curl('-X', 'PUT', `${base}/kv?value=test`), { status: 400, body: 'missing key' });
    assert.deepEqual(await curl(`${base}/kv`), { status: 400, body: 'missing key' });
    assert.deepEqual(await curl('-X', 'DELETE', `${base}/kv?key=`), { status: 400, body: 'missing key' });
  });

  it('oversized keys and values give 413 with a message and change nothing', async () => {
    const bigKey = 'k'.repeat(1025);
    const r1 = await curl('-X', 'PUT', `${base}/kv?key=${bigKey}&value=v`);
    assert.equal(r1.status, 413);
    assert.match(r1.body, /key is 1025 bytes; the limit is 1024/);
    await curl('-X', 'PUT', `${base}/kv?key=big&value=before`);
    const big = Buffer.alloc(1024 * 1024 + 1, 0x61);
    const r2 = await fetch(`${node.url}/kv?key=big`, { method: 'PUT', body: big });
    assert.equal(r2.status, 413);
    assert.match(await r2.text(), /larger than the 1048576-byte limit/);
    assert.equal((await curl(`${base}/kv?key=big`)).body, 'before');
    const exact = Buffer.alloc(1024 * 1024, 0x62);
    assert.equal((await fetch(`${node.url}/kv?key=big`, { method: 'PUT', body: exact })).status, 200);
    assert.equal(Buffer.from(await (await fetch(`${node.url}/kv?key=big`)).arrayBuffer()).length, exact.length);
  });

  it('unknown methods give 405 with an Allow header', async () => {
    for (const method of ['POST', 'PATCH']) {
      const res = await fetch(`${node.url}/kv?key=a`, { method });
      assert.equal(res.status, 405, method);
      assert.equal(res.headers.get('allow'), 'GET, HEAD, PUT, DELETE');
    }
    assert.equal((await fetch(`${node.url}/status`, { method: 'DELETE' })).status, 405);
    assert.equal((await fetch(`${node.url}/no/such/route`)).status, 404);
  });

  it('/status, /raft/config and /raft/stats describe the single-member cluster', async () => {
    const status = await (await fetch(`${node.url}/status`)).json() as Record<string, unknown>;
    assert.deepEqual(Object.keys(status).sort(), ['is_leader', 'leader']);
    assert.equal(status.is_leader, true);
    assert.match(String(status.leader), /^127\.0\.0\.1:\d+$/);
    const config = await (await fetch(`${node.url}/raft/config`)).json() as { leader: string; servers: unknown[] };
    assert.deepEqual(config, { leader: status.leader, servers: [{ id: 'node1', address: status.leader, suffrage: 'voter' }] });
    const stats = await (await fetch(`${node.url}/raft/stats`)).json() as Record<string, number>;
    for (const k of ['state', 'term', 'commit_index', 'applied_index', 'last_log_index', 'num_peers']) assert.ok(k in stats, k);
    assert.ok(stats.applied_index! > 0);
  });

  it('bad /join and /remove requests get 400 with a message; membership is unchanged', async () => {
    const before = await (await fetch(`${node.url}/raft/config`)).text();
    const cases: Array<[string, string, RegExp]> = [
      ['/join', '{not json', /malformed JSON/],
      ['/join', '[]', /JSON object/],
      ['/join', '{"ID":"","RaftAddr":"127.0.0.1:7002"}', /ID is required/],
      ['/join', '{"ID":"n2","RaftAddr":"no-such-host.invalid:7002"}', /does not resolve/],
      ['/join', '{"ID":"n2","RaftAddr":"127.0.0.1"}', /not host:port/],
      ['/join', '{"ID":"n2","RaftAddr":"127.0.0.1:7002","Role":"king"}', /Role must be/],
      ['/remove', '', /JSON object/],
      ['/remove', '{"ID":42}', /ID is required/],
    ];
    for (const [path, body, msg] of cases) {
      const res = await fetch(`${node.url}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
      assert.equal(res.status, 400, `${path} ${body}`);
      assert.match(((await res.json()) as { error: string }).error, msg);
    }
    assert.equal(await (await fetch(`${node.url}/raft/config`)).text(), before);
  });

  it('/health, /ready and /metrics answer', async () => {
    assert.equal((await fetch(`${node.url}/health`)).status, 200);
    assert.deepEqual(await (await fetch(`${node.url}/ready`)).json(), { ready: true, leader: JSON.parse(await (await fetch(`${node.url}/status`)).text()).leader });
    const metrics = await (await fetch(`${node.url}/metrics`)).text();
    assert.match(metrics, /conure_http_requests_total\{method="PUT",route="\/kv",code="200"\} \d+/);
    assert.match(metrics, /conure_http_request_duration_seconds_bucket\{le="0.005",method="GET",route="\/kv"\}/);
    assert.match(metrics, /conure_store_size_bytes \d+/);
    assert.match(metrics, /conure_applied_index [1-9]\d*/);
  });

  it('conurectl puts, gets, deletes and reports failures with a non-zero exit', async () => {
    const env = { ...process.env, CONURE_ENDPOINTS: `http://127.0.0.1:1,${node.url}` };
    assert.equal((await run(process.execPath, [CONURECTL, 'kv', 'put', 'ctl', 'v1'], { env })).stdout.trim(), 'OK');
    assert.equal((await run(process.execPath, [CONURECTL, 'kv', 'get', 'ctl'], { env })).stdout, 'v1');
    assert.equal((await run(process.execPath, [CONURECTL, 'kv', 'del', 'ctl'], { env })).stdout.trim(), 'OK');
    const members = JSON.parse((await run(process.execPath, [CONURECTL, 'members'], { env })).stdout);
    assert.equal(members.servers.length, 1);
    await assert.rejects(run(process.execPath, [CONURECTL, '--endpoints', 'http://127.0.0.1:1', 'status']), (e: { code: number; stderr: string }) => e.code === 1 && /no endpoint answered/.test(e.stderr));
    await assert.rejects(run(process.execPath, [CONURECTL, '--endpoints', node.url, 'kv', 'put', 'k'.repeat(2000), 'v']), (e: { code: number; stderr: string }) => e.code === 1 && /413/.test(e.stderr));
  });
});
