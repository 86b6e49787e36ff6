/**
 * The protocol's `/regex/flags`-or-literal values (spec §4), matched on a linear-time engine, and
 * the per-query time budget that bounds how long one scan may hold the event loop.
 *
 * Classification follows the spec: a value is a regex when it has at least two characters, starts
 * with `/`, a later unescaped `/` ends the pattern (a backslash escapes the next character), every
 * character after that slash is `i`, `m` or `s`, and the pattern compiles as an ECMAScript regex.
 * Anything else is literal. Only `i` changes matching; `m` and `s` are accepted and ignored, as in
 * the original server.
 *
 * Matching never runs on JavaScript's backtracking `RegExp` (a client's `/(a+)+$/` would freeze
 * the server for seconds per character). A regex value is translated to RE2 syntax and compiled
 * with `re2js`, whose matching time is linear in the text. ECMAScript features RE2 cannot run in
 * linear time (backreferences, lookaheads) make `parsePattern` throw `PatternError`, which the
 * service answers as `{"id","error":…}`: silently treating such a value as a literal would return
 * wrong results. (Lookbehinds are supported: re2js runs captureless lookbehinds in linear time.)
 * `RegExp` is still constructed once, only to decide the spec's "compiles as ECMAScript" rule;
 * constructing it parses the pattern and never matches anything.
 *
 * Limits: a regex source is at most `PATTERN_CHARS_MAX` characters (longer → `PatternError`);
 * literal values have no such limit (substring search is linear). RE2 itself refuses repeat counts
 * over 1000, including nested ones whose product is larger.
 *
 * Linear is not the same as cheap: when a pattern's lazy DFA outgrows its memory (or the pattern
 * has a lookbehind), re2js falls back to its NFA, which costs about `NFA_NS_PER_STEP` ns per
 * program instruction per character (measured: `a[ab]{40}[bc]{40}`, 83 instructions, 2.5 s on a
 * 1 MiB text). One such search cannot be interrupted, so `QueryBudget.search` refuses it up front
 * when its worst case would overrun the query's remaining budget.
 */
import { RE2JS } from 're2js';
import { ConureError } from '../util/index.js';

/** Longest accepted regex source (between the slashes), in UTF-16 code units. */
export const PATTERN_CHARS_MAX = 1024;

/** A client's regex cannot be used: too long, or a feature RE2 does not support. Answered as an error reply. */
export class PatternError extends ConureError {
  constructor(message: string, options?: { cause?: unknown }) { super('invalid_argument', message, options); }
}

/** A query exceeded its time budget and was stopped (nothing partial is returned). */
export class QueryBudgetError extends ConureError {
  readonly budgetMs: number;
  constructor(what: string, budgetMs: number, detail?: string) {
    super('timeout', `${what}: query stopped after exceeding its time budget of ${budgetMs} ms ` +
      `(--query-budget-ms)${detail === undefined ? '' : ` (${detail})`}; narrow it with a literal doc/key, a smaller range or a simpler pattern`);
    this.budgetMs = budgetMs;
  }
}

/** Worst-case cost of one NFA step (one instruction, one character) in ns; deliberately pessimistic. */
export const NFA_NS_PER_STEP = 30;

/**
 * Time budget of one query. Scans call `spend(chars)` once per item examined, with the number of
 * characters a pattern was run on (0 when none); the clock is read only after about
 * `CHECK_WORK_UNITS` of work, so the check costs nothing measurable. Throws `QueryBudgetError` once
 * the deadline has passed.
 */
export class QueryBudget {
  /** Work units between two clock reads: one item costs 64 units plus one per character searched. */
  static readonly CHECK_WORK_UNITS = 1 << 16;
  private work = 0;
  private readonly deadline: number;

  /** `budgetMs` ≤ 0 or infinite = unlimited. `now` is a monotonic clock in ms (injected in tests). */
  constructor(
    private readonly what: string,
    private readonly budgetMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.deadline = budgetMs > 0 && Number.isFinite(budgetMs) ? now() + budgetMs : Infinity;
  }

  /** A budget that never runs out (internal callers, tests). */
  static unlimited(): QueryBudget { return new QueryBudget('query', 0); }

  spend(chars: number): void {
    this.work += 64 + chars;
    if (this.work < QueryBudget.CHECK_WORK_UNITS) return;
    this.work = 0;
    if (this.deadline !== Infinity && this.now() > this.deadline) throw new QueryBudgetError(this.what, this.budgetMs);
  }

  /**
   * Searches `text` for `p` within the budget. A regex search whose worst case (NFA: program size ×
   * text length × `NFA_NS_PER_STEP`) exceeds what is left of the budget is refused before it
   * starts, since a running search cannot be interrupted. Cheap searches (worst case under 1 ms)
   * cost no clock read.
   */
  search(p: Pattern, text: string): boolean {
    this.spend(text.length);
    if (p.kind === 'regex' && this.deadline !== Infinity) {
      const worstMs = (p.insts * text.length * NFA_NS_PER_STEP) / 1e6;
      if (worstMs >= 1 && this.now() + worstMs > this.deadline) {
        throw new QueryBudgetError(this.what, this.budgetMs,
          `a /${p.source.length > 32 ? `${p.source.slice(0, 32)}…` : p.source}/ search of ${text.length} characters could take up to ${Math.round(worstMs)} ms`);
      }
    }
    return patternSearch(p, text);
  }
}

export type Pattern =
  | { readonly kind: 'literal'; readonly text: string }
  | {
    readonly kind: 'regex'; readonly re: RE2JS; readonly source: string;
    /** Instructions in the compiled program: the NFA's cost per character. */
    readonly insts: number;
  };

/**
 * Recently used compiled regexes by their full protocol value (clients repeat their queries;
 * compiling costs ~20–40 µs, a cached search ~0.2 µs). Few entries, because each RE2 program keeps
 * a lazy-DFA cache of up to 8 MiB; an evicted entry's caches are released.
 */
const cache = new Map<string, Pattern & { kind: 'regex' }>();
const CACHE_ENTRIES_MAX = 16;

/**
 * Classifies `value` (spec §4) and compiles a regex on RE2. Throws `PatternError` for a regex over
 * `PATTERN_CHARS_MAX` characters or one that RE2 cannot run (backreferences, lookaheads); a value
 * that is not a valid ECMAScript regex is a literal, as the spec says.
 */
export function parsePattern(value: string): Pattern {
  if (value.length < 2 || value.charCodeAt(0) !== 0x2f) return { kind: 'literal', text: value };
  let end = -1;
  for (let i = 1; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x5c) { i++; continue; } // backslash escapes the next character
    if (c === 0x2f) { end = i; break; }
  }
  if (end < 0) return { kind: 'literal', text: value };
  const flags = value.slice(end + 1);
  if (!/^[ims]*$/.test(flags)) return { kind: 'literal', text: value };
  const cached = cache.get(value);
  if (cached !== undefined) {
    cache.delete(value); // least recently used goes first
    cache.set(value, cached);
    return cached;
  }
  const source = value.slice(1, end);
  if (source.length > PATTERN_CHARS_MAX) {
    throw new PatternError(`regular expression too long: ${source.length} characters exceeds the limit of ${PATTERN_CHARS_MAX}`);
  }
  const insensitive = flags.includes('i');
  try {
    // The spec's test: does it compile as ECMAScript? Construction only parses; it never matches.
    new RegExp(source, insensitive ? 'i' : '');
  } catch {
    return { kind: 'literal', text: value };
  }
  let re: RE2JS;
  try {
    re = RE2JS.compile(RE2JS.translateRegExp(source), (insensitive ? RE2JS.CASE_INSENSITIVE : 0) | RE2JS.LOOKBEHINDS);
  } catch (err) {
    const detail = (err as Error).message.replace(/^error parsing regexp: /, '');
    throw new PatternError(`unsupported regular expression /${source.length > 64 ? `${source.slice(0, 64)}…` : source}/: ${detail}; ` +
      'patterns run on a linear-time (RE2) engine: no backreferences or lookaheads, repeat counts up to 1000', { cause: err });
  }
  const p = { kind: 'regex', re, source, insts: programSize(re, source) } as const;
  if (cache.size >= CACHE_ENTRIES_MAX) {
    const [oldest, evicted] = cache.entries().next().value as [string, Pattern & { kind: 'regex' }];
    cache.delete(oldest);
    evicted.re.reset();
  }
  cache.set(value, p);
  return p;
}

/** Instructions of `re`'s compiled program (re2js internals; falls back to a bound from the source). */
function programSize(re: RE2JS, source: string): number {
  const n = (re as unknown as { re2Input?: { prog?: { inst?: unknown[] } } }).re2Input?.prog?.inst?.length;
  return typeof n === 'number' && n > 0 ? n : 4 * source.length + 4;
}

/** Unanchored search: substring containment for a literal, an RE2 search for a regex. */
export function patternSearch(p: Pattern, text: string): boolean {
  return p.kind === 'literal' ? text.includes(p.text) : p.re.test(text);
}

/**
 * The `where`/`filter` pair of `qry` and `qdoc`: keep a record when it matches `where` (if set) and
 * does not match `filter` (if set). Empty strings mean "no predicate". Throws `PatternError` from
 * the constructor (see `parsePattern`).
 */
export class RecordPredicate {
  private readonly where: Pattern | undefined;
  private readonly filter: Pattern | undefined;

  constructor(where: string, filter: string) {
    this.where = where === '' ? undefined : parsePattern(where);
    this.filter = filter === '' ? undefined : parsePattern(filter);
  }

  /** True when no predicate is set, so callers can skip evaluation. */
  get isEmpty(): boolean { return this.where === undefined && this.filter === undefined; }

  /** Whether to keep a record with `data`; each search is charged to `budget` (see `QueryBudget.search`). */
  keep(data: string, budget: QueryBudget = QueryBudget.unlimited()): boolean {
    if (this.where !== undefined && !budget.search(this.where, data)) return false;
    if (this.filter !== undefined && budget.search(this.filter, data)) return false;
    return true;
  }
}
