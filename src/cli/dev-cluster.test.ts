import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { conuredArgs, planLocalCluster } from './dev-cluster.js';

describe('dev cluster plan', () => {
  it('2 voters + auto arbiter = bootstrap, one voter, one arbiter on consecutive ports', () => {
    const m = planLocalCluster({ voters: 2, arbiter: 'auto', basePort: 8081, dataDir: '/d', host: '127.0.0.1' });
    assert.deepEqual(m.map((x) => [x.id, x.role, x.http, x.raft, x.client]), [
      ['conure-bootstrap-0', 'voter', '127.0.0.1:8081', '127.0.0.1:8181', '127.0.0.1:8281'],
      ['conure-0', 'voter', '127.0.0.1:8082', '127.0.0.1:8182', '127.0.0.1:8282'],
      ['conure-arbiter-0', 'arbiter', '127.0.0.1:8083', '127.0.0.1:8183', '127.0.0.1:8283'],
    ]);
    assert.equal(m[1]!.dataDir, '/d/conure-0');
  });

  it('gives the bootstrap member --bootstrap and the others --join with every voter as a seed', () => {
    const m = planLocalCluster({ voters: 3, arbiter: 'auto', basePort: 9000, dataDir: '/d', host: '127.0.0.1' });
    assert.equal(m.length, 3);
    const seeds = ['http://127.0.0.1:9000', 'http://127.0.0.1:9001', 'http://127.0.0.1:9002'];
    assert.ok(conuredArgs(m[0]!, seeds).includes('--bootstrap'));
    assert.ok(conuredArgs(m[0]!, seeds).includes('--join'), 'the bootstrap member knows the seeds, to rejoin after losing its disk');
    const a = conuredArgs(m[2]!, seeds);
    assert.equal(a[a.indexOf('--join') + 1], seeds.join(','));
    assert.ok(a.includes('--bootstrap=false'));
    const arb = planLocalCluster({ voters: 2, arbiter: 'always', basePort: 9000, dataDir: '/d', host: '127.0.0.1' }).at(-1)!;
    assert.deepEqual(conuredArgs(arb, seeds).slice(-2), ['--role', 'arbiter']);
  });

  it('refuses impossible specs and port ranges', () => {
    assert.throws(() => planLocalCluster({ voters: 0, arbiter: 'auto', basePort: 8081, dataDir: '/d', host: 'h' }), /whole number >= 1/);
    assert.throws(() => planLocalCluster({ voters: 2, arbiter: 'never', basePort: 8081, dataDir: '/d', host: 'h' }), /even/);
    assert.throws(() => planLocalCluster({ voters: 1, arbiter: 'never', basePort: 65400, dataDir: '/d', host: 'h' }), /no room/);
  });
});
