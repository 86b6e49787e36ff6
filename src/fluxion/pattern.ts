/**
 * The protocol's `/regex/flags`-or-literal values (spec §4).
 *
 * A value is a regex when it has at least two characters, starts with `/`, a later unescaped `/`
 * ends the pattern (a backslash escapes the next character), every character after that slash is
 * `i`, `m` or `s`, and the pattern compiles as an ECMAScript regex. Anything else is literal.
 * Only `i` changes matching; `m` and `s` are accepted and ignored, as in the original server.
 */
export type Pattern =
  | { readonly kind: 'literal'; readonly text: string }
  | { readonly kind: 'regex'; readonly re: RegExp };

/** Classifies `value`; never throws (an uncompilable regex is a literal). */
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
  try {
    return { kind: 'regex', re: new RegExp(value.slice(1, end), flags.includes('i') ? 'i' : '') };
  } catch {
    return { kind: 'literal', text: value };
  }
}

/** Unanchored search: substring containment for a literal, `RegExp.test` for a regex. */
export function patternSearch(p: Pattern, text: string): boolean {
  return p.kind === 'literal' ? text.includes(p.text) : p.re.test(text);
}

/**
 * The `where`/`filter` pair of `qry` and `qdoc`: keep a record when it matches `where` (if set) and
 * does not match `filter` (if set). Empty strings mean "no predicate".
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

  keep(data: string): boolean {
    if (this.where !== undefined && !patternSearch(this.where, data)) return false;
    if (this.filter !== undefined && patternSearch(this.filter, data)) return false;
    return true;
  }
}
