import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startConured, tempDir } from '../support/conured-process.js';

const KEYS = 10_000;
const IN_FLIGHT = 32;

describe('durability', () => {
  it(`keeps every acknowledged write of ${KEYS} keys across kill -9`, async () => {
    const { dir, cleanup } = tempDir('conure-durable-');
    try {
      const node = await startConured({ dataDir: dir });
      const acked: number[] = [];
      let next = 0;
      const worker = async () => {
        while (next < KEYS) {
          const i = next++;
          const res = await fetch(`${node.url}/kv?key=key-${i}&value=value-${i}`, { method: 'PUT' });
          if (res.status === 200 && (await res.text()) === 'OK') acked.push(i);
        }
      };
      await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
      await node.kill9(); // immediately after the last acknowledgement
      assert.equal(acked.length, KEYS);

      const again = await startConured({ dataDir: dir });
      try {
        const missing: number[] = [];
        for (let start = 0; start < acked.length; start += IN_FLIGHT) {
          await Promise.all(acked.slice(start, start + IN_FLIGHT).map(async (i) => {
            const v = await (await fetch(`${again.url}/kv?key=key-${i}`)).text();
            if (v !== `value-${i}`) missing.push(i);
          }));
        }
        assert.deepEqual(missing, [], `${missing.length} acknowledged keys lost`);
        const stats = await (await fetch(`${again.url}/raft/stats`)).json() as { applied_index: number };
        assert.ok(stats.applied_index >= KEYS);
      } finally {
        await again.stop();
      }
    } finally {
      cleanup();
    }
  });
});
