import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { statSync, writeFileSync, readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { CONURECTL, tempDir } from '../support/conured-process.js';
import { missingKeys, TestCluster } from '../support/cluster.js';

const run = promisify(execFile);
const ctl = (...args: string[]) => run(process.execPath, [CONURECTL, ...args]);

describe('conurectl snapshot save and restore', { timeout: 120_000 }, () => {
  it('backs up a running cluster and restores it as a new cluster that others can join', async () => {
    const source = new TestCluster();
    const target = new TestCluster();
    const files = tempDir('conure-backup-');
    try {
      const s0 = await source.add({ id: 'src0', bootstrap: true });
      await s0.start();
      await s0.waitReady();
      const keys = Array.from({ length: 200 }, (_, i) => `bk-${i}`);
      for (let i = 0; i < keys.length; i += 20) await Promise.all(keys.slice(i, i + 20).map(async (k) => assert.equal((await fetch(`${s0.url}/kv?key=${k}&value=v-${k}`, { method: 'PUT' })).status, 200)));
      const file = join(files.dir, 'backup.db');
      const saved = await ctl('--endpoints', s0.url, 'snapshot', 'save', file);
      assert.match(saved.stdout, /Snapshot saved at .*backup\.db \(\d+ bytes\)/);
      assert.ok(statSync(file).size > 1000);
      // Deleting one key and overwriting another: 200 puts + 1 put + 1 delete after the empty store's revision 1.
      assert.equal((await fetch(`${s0.url}/kv?key=bk-0&value=v-bk-0`, { method: 'PUT' })).status, 200);
      assert.equal((await fetch(`${s0.url}/kv?key=gone&value=x`, { method: 'PUT' })).status, 200);
      assert.equal((await fetch(`${s0.url}/kv?key=gone`, { method: 'DELETE' })).status, 200);
      await ctl('--endpoints', s0.url, 'snapshot', 'save', file);
      const status = JSON.parse((await ctl('snapshot', 'status', file)).stdout) as Record<string, unknown>;
      assert.deepEqual({ ...status, sha256: typeof status.sha256, appliedIndex: typeof status.appliedIndex },
        { revision: 204, compactRevision: 0, keys: 200, revisions: 203, leases: 0, appliedIndex: 'number', totalSize: statSync(file).size, sha256: 'string' });

      // A damaged file and a non-empty directory are refused with a message.
      const bad = join(files.dir, 'bad.db');
      const bytes = readFileSync(file); bytes.writeUInt8(bytes.readUInt8(bytes.length - 40) ^ 0xff, bytes.length - 40); writeFileSync(bad, bytes);
      const r0 = await target.add({ id: 'restored0' });
      const restoreArgs = (f: string, dir: string) => ['snapshot', 'restore', f, '--data-dir', dir, '--node-id', 'restored0', '--advertise-raft', r0.raftAddr, '--advertise-http', `127.0.0.1:${r0.httpPort}`];
      await assert.rejects(ctl(...restoreArgs(bad, join(files.dir, 'x'))), (e: { code: number; stderr: string }) => e.code === 1 && /checksum mismatch/.test(e.stderr));
      await assert.rejects(ctl('snapshot', 'status', bad), (e: { code: number; stderr: string }) => e.code === 1 && /checksum mismatch/.test(e.stderr));
      await assert.rejects(ctl('snapshot', 'status', join(files.dir, 'absent.db')), (e: { code: number; stderr: string }) => e.code === 1 && /ENOENT|no such file/.test(e.stderr));
      const busy = join(files.dir, 'busy'); mkdirSync(busy); writeFileSync(join(busy, 'something'), 'x');
      await assert.rejects(ctl(...restoreArgs(file, busy)), (e: { stderr: string }) => /is not empty/.test(e.stderr));

      await ctl(...restoreArgs(file, r0.dataDir));
      await r0.start();
      await r0.waitReady();
      assert.deepEqual(await missingKeys(r0.url, keys), []);
      const config = await target.config(r0);
      assert.deepEqual(config.servers.map((s) => [s.id, s.suffrage]), [['restored0', 'voter']], 'a new single-member cluster');
      const r1 = await target.add({ id: 'restored1', join: [r0.url] });
      await r1.start();
      await target.waitConfig((s) => s.filter((x) => x.suffrage === 'voter').length === 2, 'restored1 joined as a voter');
      await r1.waitReady();
      assert.deepEqual(await missingKeys(r1.url, keys), []);
      assert.equal((await fetch(`${r0.url}/kv?key=after-restore&value=1`, { method: 'PUT' })).status, 200);
    } finally {
      await source.stopAll();
      await target.stopAll();
      files.cleanup();
    }
  });
});
