// Tests of scripts/check-layers.mjs: the import parser, each rule on a fixture tree that breaks
// it, and the repository's own src/ (which must pass). Run by `node scripts/run-tests.mjs unit`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkTree, formatReport, loadTree, parseImports } from './check-layers.mjs';

const script = join(dirname(fileURLToPath(import.meta.url)), 'check-layers.mjs');
const repo = join(dirname(script), '..');

// A small stack: util < raft < low < mid = peer (one tier) < high.
const LAYERS = [['util'], ['raft'], ['low'], ['mid', 'peer'], ['high']];

/** A clean tree of that stack; each test adds or replaces files to break one rule. */
function cleanTree(extra = {}) {
  return new Map(Object.entries({
    'src/util/index.ts': "export * from './errors.js';\n",
    'src/util/errors.ts': 'export class E extends Error {}\n',
    'src/raft/index.ts': "export { step } from './core.js';\n",
    'src/raft/core.ts': "import { E } from '../util/index.js';\nexport const step = () => new E();\n",
    'src/raft/core.test.ts': "import { test } from 'node:test';\nimport fc from 'fast-check';\nimport { step } from './core.js';\n",
    'src/raft/log.contract.ts': "import assert from 'node:assert/strict';\nexport const contract = assert;\n",
    'src/low/index.ts': "export { Store } from './store.js';\nexport { api } from './mod/index.js';\n",
    'src/low/store.ts': "import { step } from '../raft/index.js';\nimport { readFileSync } from 'node:fs';\nexport class Store { s = step; r = readFileSync; }\n",
    'src/low/mod/index.ts': "export { api } from './impl.js';\n",
    'src/low/mod/impl.ts': "import { Store } from '../store.js';\nexport const api = Store;\n",
    'src/low/user.ts': "import { api } from './mod/index.js';\nexport const u = api;\n",
    'src/low/test-harness.ts': "import { Store } from './store.js';\nexport const harness = Store;\n",
    'src/low/store.test.ts': "import { api } from './mod/impl.js';\nimport { harness } from './test-harness.js';\n",
    'src/mid/index.ts': "import type { Store } from '../low/index.js';\nexport type M = Store;\n",
    'src/peer/index.ts': "import type { M } from '../mid/index.js';\nexport type P = M;\n",
    'src/peer/x.test.ts': "import { harness } from '../low/test-harness.js';\nimport { until } from '../../test/support/until.js';\n",
    'src/high/main.ts': "import { Store } from '../low/index.js';\nimport type { P } from '../peer/index.js';\nconst m = await import('../mid/index.js');\nexport { Store, m };\n",
    ...extra,
  }));
}

const rulesOf = (files) => checkTree(files, LAYERS).violations.map((v) => v.rule).sort();

test('parseImports finds every import form, with its line and whether it is type-only', () => {
  const src = [
    "import a from './a.js';", // 1
    'import {', // 2
    '  b,', // 3
    "  type C } from './b.js';", // 4
    "import * as ns from './ns.js';", // 5
    "import type { T } from './t.js';", // 6
    "import { type U, type V } from './u.js';", // 7
    "import './side.js';", // 8
    "const m = await import('./dyn.js');", // 9
    "export { x } from './x.js';", // 10
    "export * from './star.js';", // 11
    "export * as star from './star-ns.js';", // 12
    "export type { Y } from './y.js';", // 13
    "export const z = 1;", // 14
    "import d, { type W } from './d.js';", // 15
    "import e = require('./e.js');", // 16
    "export { type Q } from './q.js';", // 17
  ].join('\n');
  const got = parseImports(src).map((i) => [i.line, i.spec, i.typeOnly, i.inlineTypeOnly]);
  assert.deepEqual(got, [
    [1, './a.js', false, false],
    [2, './b.js', false, false],
    [5, './ns.js', false, false],
    [6, './t.js', true, false],
    [7, './u.js', false, true],
    [8, './side.js', false, false],
    [9, './dyn.js', false, false],
    [10, './x.js', false, false],
    [11, './star.js', false, false],
    [12, './star-ns.js', false, false],
    [13, './y.js', true, false],
    [15, './d.js', false, false],
    [16, './e.js', false, false],
    [17, './q.js', false, true],
  ]);
});

test('parseImports ignores comments, strings, template text, regular expressions and import.meta', () => {
  const src = [
    "// import a from './comment.js';",
    "/* import b from './block.js';",
    "   export * from './block2.js'; */",
    "const s = \"import c from './string.js'\";",
    "const t = `import d from './template.js' ${ `nested ${1}` } import('./template2.js')`;",
    "const r = /import e from '.\\/regex.js'/g;",
    'const url = import.meta.url;',
    "const ratio = a / b; import f from './after-division.js';",
    "const k = `${ await import('./in-template-expr.js') }`;",
  ].join('\n');
  assert.deepEqual(parseImports(src).map((i) => [i.line, i.spec]), [[8, './after-division.js'], [9, './in-template-expr.js']]);
});

test('the clean fixture tree passes', () => {
  const result = checkTree(cleanTree(), LAYERS);
  assert.deepEqual(result.violations, []);
  assert.match(formatReport(result), /: ok$/);
});

test('raft-pure: raft imports another layer, a package or a builtin', () => {
  assert.deepEqual(rulesOf(cleanTree({ 'src/raft/core.ts': "import { Store } from '../low/index.js';\nexport const step = Store;\n" })), ['layer-cycle', 'raft-pure']);
  assert.deepEqual(rulesOf(cleanTree({ 'src/raft/clock.ts': "import { setTimeout } from 'node:timers';\nimport { pino } from 'pino';\n" })), ['raft-pure', 'raft-pure']);
  // raft's tests and test support may use test tooling, but not other layers.
  assert.deepEqual(rulesOf(cleanTree({ 'src/raft/core.test.ts': "import { Store } from '../low/index.js';\n" })), ['layer-cycle', 'raft-pure']);
});

test('layer-order: a lower layer imports a higher one', () => {
  const files = cleanTree({ 'src/low/user.ts': "import { api } from './mod/index.js';\nimport { Store } from '../high/main.js';\n" });
  const v = checkTree(files, LAYERS).violations.filter((x) => x.rule === 'layer-order');
  assert.equal(v.length, 1);
  assert.equal(v[0].file, 'src/low/user.ts');
  assert.equal(v[0].line, 2);
  assert.match(v[0].message, /low \(tier 2\) imports high \(tier 4\)/);
});

test('index-only: another layer by its internals, a module by its internals, a layer with no index', () => {
  const deep = checkTree(cleanTree({ 'src/high/main.ts': "import { Store } from '../low/store.js';\n" }), LAYERS).violations;
  assert.deepEqual(deep.map((v) => [v.rule, v.file, v.line]), [['index-only', 'src/high/main.ts', 1]]);
  assert.match(deep[0].message, /import '\.\.\/low\/index\.js' instead/);
  // Inside a layer, a folder with an index.ts is entered through it.
  assert.deepEqual(rulesOf(cleanTree({ 'src/low/user.ts': "import { api } from './mod/impl.js';\n" })), ['index-only']);
  // Files inside the module import each other directly.
  assert.deepEqual(rulesOf(cleanTree({ 'src/low/mod/other.ts': "import { api } from './impl.js';\n" })), []);
  // A layer without index.ts cannot be imported at all.
  const noIndex = cleanTree({ 'src/raft/core.ts': "import { E } from '../util/errors.js';\nexport const step = () => new E();\n" });
  noIndex.delete('src/util/index.ts');
  const v = checkTree(noIndex, LAYERS).violations;
  assert.deepEqual(v.map((x) => x.rule), ['index-only']);
  assert.match(v[0].message, /util has no index\.ts/);
  // Production code may not use other layers' test support; tests may.
  assert.deepEqual(rulesOf(cleanTree({ 'src/high/main.ts': "import { harness } from '../low/test-harness.js';\n" })), ['index-only']);
  // Tests may deep-import their own layer, not another one.
  assert.deepEqual(rulesOf(cleanTree({ 'src/high/main.test.ts': "import { Store } from '../low/store.js';\n" })), ['index-only']);
});

test('layer-cycle: peers of one tier that import each other', () => {
  const files = cleanTree({ 'src/mid/index.ts': "import type { P } from '../peer/index.js';\nexport type M = P;\n" });
  const v = checkTree(files, LAYERS).violations;
  assert.deepEqual(v.map((x) => x.rule), ['layer-cycle']);
  assert.match(v[0].message, /^mid -> peer -> mid:/);
  assert.match(v[0].message, /mid -> peer: src\/mid\/index\.ts:1 '\.\.\/peer\/index\.js'/);
  assert.match(v[0].message, /peer -> mid: src\/peer\/index\.ts:1 '\.\.\/mid\/index\.js'/);
});

test('self-index, type-import, unlayered, outside-src and unresolved', () => {
  assert.deepEqual(rulesOf(cleanTree({ 'src/low/mod/impl.ts': "import { Store } from '../index.js';\nexport const api = Store;\n" })), ['self-index']);
  assert.deepEqual(rulesOf(cleanTree({ 'src/high/types.ts': "import { type Store } from '../low/index.js';\nexport type S = Store;\n" })), ['type-import']);
  assert.deepEqual(rulesOf(cleanTree({ 'src/extra/thing.ts': 'export const x = 1;\n', 'src/loose.ts': 'export const y = 1;\n' })), ['unlayered', 'unlayered']);
  assert.deepEqual(rulesOf(cleanTree({ 'src/high/main.ts': "import { until } from '../../test/support/until.js';\n" })), ['outside-src']);
  assert.deepEqual(rulesOf(cleanTree({ 'src/high/main.ts': "import { nothing } from '../low/missing.js';\n" })), ['unresolved']);
});

test('a nested layer owns its subtree (client/platform inside client)', () => {
  const layers = [['util'], ['client'], ['platform'], ['client/platform']];
  const files = new Map(Object.entries({
    'src/util/index.ts': 'export const u = 1;\n',
    'src/client/index.ts': "export { Http } from './http.js';\n",
    'src/client/http.ts': 'export class Http {}\n',
    'src/platform/index.ts': "import { Http } from '../client/index.js';\nexport type Rec = { h: Http };\n",
    'src/client/platform/index.ts': "export { PlatformClient } from './platform-client.js';\n",
    'src/client/platform/platform-client.ts': "import { Http } from '../index.js';\nimport type { Rec } from '../../platform/index.js';\nexport class PlatformClient { h?: Http; r?: Rec }\n",
  }));
  assert.deepEqual(checkTree(files, layers).violations, []);
  files.set('src/client/http.ts', "import { PlatformClient } from './platform/index.js';\nexport class Http {}\n");
  assert.deepEqual(checkTree(files, layers).violations.map((v) => v.rule).sort(), ['layer-cycle', 'layer-order']);
});

test('the command: exit 1 with file:line, the import and the rule; exit 0 on a clean tree', () => {
  const root = mkdtempSync(join(tmpdir(), 'check-layers-'));
  try {
    const files = {
      'src/util/index.ts': 'export const u = 1;\n',
      'src/raft/index.ts': "export { x } from './x.js';\n",
      'src/raft/x.ts': "import { Store } from '../storage/index.js';\nexport const x = Store;\n",
      'src/storage/index.ts': 'export class Store {}\n',
    };
    for (const [p, text] of Object.entries(files)) { mkdirSync(dirname(join(root, p)), { recursive: true }); writeFileSync(join(root, p), text); }
    const bad = spawnSync(process.execPath, [script, root], { encoding: 'utf8' });
    assert.equal(bad.status, 1, bad.stderr);
    assert.match(bad.stderr, /^src\/raft\/x\.ts:1  import \{ Store \} from '\.\.\/storage\/index\.js';\n    \[raft-pure\] raft imports storage/m);
    assert.match(bad.stderr, /check-layers: 1 violation \(raft-pure 1\) in 4 files/);
    writeFileSync(join(root, 'src/raft/x.ts'), "import { u } from '../util/index.js';\nexport const x = u;\n");
    const good = spawnSync(process.execPath, [script, root], { encoding: 'utf8' });
    assert.equal(good.status, 0, good.stderr);
    assert.match(good.stdout, /check-layers: 4 files, 2 imports, 1 layer edges: ok/);
    assert.equal(spawnSync(process.execPath, [script, '--help'], { encoding: 'utf8' }).status, 2);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("the repository's src/ keeps the layer rules", () => {
  const result = checkTree(loadTree(repo));
  assert.deepEqual(result.violations, [], formatReport(result));
});
