import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePattern, PATTERN_CHARS_MAX, PatternError, patternSearch, QueryBudget, QueryBudgetError, RecordPredicate } from './pattern.js';

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

test('catastrophic-backtracking patterns run in linear time (RE2), not exponential', () => {
  const p = parsePattern('/(a+)+$/');
  assert.equal(p.kind, 'regex');
  for (const n of [31, 10_000, 200_000]) {
    const t0 = performance.now();
    assert.equal(patternSearch(p, `${'a'.repeat(n)}!`), false);
    const ms = performance.now() - t0;
    // JavaScript's RegExp needs ~17 s at 31 characters and doubles per character; generous bound.
    assert.ok(ms < 2000, `${n} characters took ${ms.toFixed(0)} ms`);
  }
  assert.equal(patternSearch(p, 'aaa'), true);
  assert.equal(new RecordPredicate('/(x+x+)+y/', '').keep('x'.repeat(5000)), false);
});

test('ECMAScript features RE2 cannot run are a PatternError, not a silent literal; lookbehinds work', () => {
  assert.throws(() => parsePattern('/(a)\\1/'), (e: unknown) => e instanceof PatternError && /unsupported regular expression/.test(e.message));
  assert.throws(() => parsePattern('/a(?=b)/'), PatternError);
  assert.throws(() => parsePattern('/a(?!b)/'), PatternError);
  assert.throws(() => new RecordPredicate('/(a)\\1/', ''), PatternError);
  assert.equal(patternSearch(parsePattern('/(?<=a)b/'), 'ab'), true);
  assert.equal(patternSearch(parsePattern('/(?<!a)b/'), 'ab'), false);
  // ECMAScript syntax is translated: named groups, \u escapes, [^].
  assert.equal(patternSearch(parsePattern('/(?<n>x)\\u0041/'), 'xA'), true);
  assert.equal(patternSearch(parsePattern('/a[^]b/'), 'a\nb'), true);
  assert.equal(parsePattern('/a(/').kind, 'literal'); // not ECMAScript at all: literal, as the spec says
});

test('regex sources are bounded; literals are not', () => {
  const long = 'a'.repeat(PATTERN_CHARS_MAX + 1);
  assert.throws(() => parsePattern(`/${long}/`), (e: unknown) => e instanceof PatternError && /too long/.test(e.message));
  assert.equal(parsePattern(`/${'a'.repeat(PATTERN_CHARS_MAX)}/`).kind, 'regex');
  assert.equal(patternSearch(parsePattern(long), `x${long}x`), true);
  assert.throws(() => parsePattern('/((a{1000}){1000}){1000}/'), PatternError); // RE2 refuses exploding repeats
});

test('QueryBudget throws once its deadline has passed, reading the clock only every so often', () => {
  let now = 0;
  let reads = 0;
  const clock = (): number => { reads++; return now; };
  const b = new QueryBudget('qry', 100, clock);
  for (let i = 0; i < 10_000; i++) b.spend(10);
  now = 101;
  assert.throws(() => { for (let i = 0; i < 10_000; i++) b.spend(10); }, (e: unknown) => e instanceof QueryBudgetError && /time budget of 100 ms/.test(e.message));
  assert.ok(reads < 100, `clock read ${reads} times`);
  const unlimited = new QueryBudget('qry', 0, () => { now += 1e9; return now; });
  for (let i = 0; i < 100_000; i++) unlimited.spend(100);
});
