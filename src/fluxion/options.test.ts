import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseBytes, parseInteger } from './options.js';

test('parseBytes understands Kubernetes quantities', () => {
  assert.equal(parseBytes('1024', 'x'), 1024);
  assert.equal(parseBytes('512Mi', 'x'), 512 * 2 ** 20);
  assert.equal(parseBytes('2Gi', 'x'), 2 * 2 ** 30);
  assert.equal(parseBytes('1G', 'x'), 1e9);
  assert.equal(parseBytes('1.5Ki', 'x'), 1536);
  assert.throws(() => parseBytes('2Qi', '--max-memory'), /--max-memory: "2Qi" is not a size/);
  assert.throws(() => parseBytes('', '--max-memory'), /is not a size/);
});

test('parseInteger rejects non-numeric and out-of-range values', () => {
  assert.equal(parseInteger('8080', '--port', 0, 65535), 8080);
  assert.throws(() => parseInteger('80a', '--port', 0, 65535), /invalid numeric option/);
  assert.throws(() => parseInteger('70000', '--port', 0, 65535), /between 0 and 65535/);
});
