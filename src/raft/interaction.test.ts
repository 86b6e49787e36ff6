/**
 * Golden interaction tests: every src/raft/testdata/*.txt file is a script of commands, each
 * followed by `----` and the expected output. `UPDATE=1` rewrites the files with the actual
 * output; review the diff. See interaction-env.ts for the commands.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { InteractionEnv, parseGolden, renderGolden } from './interaction-env.js';

function testdataDir(): string {
  // Compiled files live in <out>/src/raft; the golden files stay in the source tree.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    const candidate = join(dir, 'src', 'raft', 'testdata');
    if (existsSync(candidate) && existsSync(join(dir, 'package.json'))) return candidate;
    dir = dirname(dir);
  }
  throw new Error('src/raft/testdata not found above the compiled test');
}

const dir = testdataDir();
const update = process.env.UPDATE === '1';

describe('raft golden interactions', () => {
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.txt')).sort()) {
    it(file, () => {
      const path = join(dir, file);
      const blocks = parseGolden(readFileSync(path, 'utf8'));
      assert.ok(blocks.length > 0, `${file} has no blocks`);
      const env = new InteractionEnv();
      const actual = blocks.map((b) => ({ ...b, expected: env.run(b.command) }));
      if (update) { writeFileSync(path, renderGolden(actual)); return; }
      for (let i = 0; i < blocks.length; i++) {
        assert.equal(actual[i]!.expected, blocks[i]!.expected, `${file}: block ${i + 1} (${blocks[i]!.command}) differs; rerun with UPDATE=1 and review the diff`);
      }
    });
  }
});

describe('golden files catch broken rules', () => {
  it('commit-rule.txt fails when prior-term entries are committed by counting (Figure 8)', () => {
    const blocks = parseGolden(readFileSync(join(dir, 'commit-rule.txt'), 'utf8'));
    const env = new InteractionEnv('commitPriorTermByCounting');
    const differing = blocks.filter((b) => env.run(b.command) !== b.expected);
    assert.ok(differing.length > 0, 'the mutated core must not reproduce the golden output');
  });

  it('up-to-date.txt fails when votes skip the log comparison (§5.4.1)', () => {
    const blocks = parseGolden(readFileSync(join(dir, 'up-to-date.txt'), 'utf8'));
    const env = new InteractionEnv('skipUpToDateCheck');
    assert.ok(blocks.some((b) => env.run(b.command) !== b.expected));
  });
});
