import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePattern, patternSearch, RecordPredicate } from './pattern.js';

test('regex versus literal classification follows spec §4', () => {
  const kind = (v: string): string => parsePattern(v).kind;
  assert.equal(kind('/abc/'), 'regex');
  assert.equal(kind('/abc/i'), 'regex');
  assert.equal(kind('/abc/ims'), 'regex');
  assert.equal(kind('//'), 'regex');
  assert.equal(kind('/abc/g'), 'literal'); // g is not an accepted flag
  assert.equal(kind('/abc'), 'literal'); // no closing slash
  assert.equal(kind('/'), 'literal');
  assert.equal(kind('abc/'), 'literal');
  assert.equal(kind('/a(/'), 'literal'); // does not compile
  assert.equal(kind('/a\\/b/'), 'regex'); // escaped slash stays in the pattern
  assert.equal(kind('/a/b/'), 'literal'); // first slash ends the pattern; "b/" are not flags
});

test('matching: unanchored search, i flag, escaped slash, literal substring', () => {
  assert.equal(patternSearch(parsePattern('/DEV-1/i'), 'dev-1'), true);
  assert.equal(patternSearch(parsePattern('/DEV-1/'), 'dev-1'), false);
  assert.equal(patternSearch(parsePattern('/a\\/b/'), 'xa/by'), true);
  assert.equal(patternSearch(parsePattern('//'), 'anything'), true);
  assert.equal(patternSearch(parsePattern('/abc'), 'x/abcx'), true); // literal, slash included
  assert.equal(patternSearch(parsePattern('q:ok'), 'state:on q:ok'), true);
  assert.equal(patternSearch(parsePattern('Q:OK'), 'state:on q:ok'), false);
});

test('where AND NOT filter; empty strings are no predicate', () => {
  const p = new RecordPredicate('state', 'bad');
  assert.equal(p.keep('state:on q:ok'), true);
  assert.equal(p.keep('state:off q:bad'), false);
  assert.equal(p.keep('other'), false);
  assert.equal(new RecordPredicate('', '').isEmpty, true);
});
