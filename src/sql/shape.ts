/**
 * One cheap pass over the statement text, before PostgreSQL's parser sees it. It answers two questions:
 *
 * 1. How deep could the parse tree be? libpg_query's parser is a bison automaton (deep nesting ends in a clean
 *    "memory exhausted" error at 10,000 levels), but turning the tree into JSON is recursive C, and in WASM that
 *    recursion runs on the JS thread's native stack. Measured here: ~2,000 nested sub-selects or ~9,000 chained
 *    binary operators (`1+1+…`, `::int::int…`, `JOIN … JOIN …`) overflow it. So nesting depth and the length of
 *    left-deep operator chains are bounded here; anything this estimate misses is caught as a trap (wasm.ts).
 * 2. Where are the simple literals? Their spans let the template cache (cache.ts) recognise a statement that
 *    differs from a cached one only in constants. This pass is not trusted for that: a template is only ever
 *    built from the real lexer's tokens, and this pass only proposes a lookup key.
 *
 * It follows scan.l for what matters here (comments, quoted strings and identifiers, dollar quotes), with
 * standard_conforming_strings on, as Sluice pins it upstream.
 */

/** Literal forms a template may vary: see cache.ts for why exactly these. */
export const LiteralForm = { Int: 1, Decimal: 2, String: 3 } as const;
export type LiteralForm = (typeof LiteralForm)[keyof typeof LiteralForm];

export interface TextShape {
  /** Deepest nesting of ( and [. */
  depth: number;
  /** Largest estimate of tree depth from nesting plus operator chains. */
  chain: number;
  /** Set when a limit was passed; the pass stopped at `at` (a UTF-16 index). */
  exceeded?: 'depth' | 'chain';
  at?: number;
  /** Simple literals as [start, end, form] triples (UTF-16 indexes). */
  slots: number[];
}

// Keywords that start a new expression (so an operator chain cannot continue across them).
const RESTART = new Set([
  'and', 'or', 'when', 'then', 'else', 'end', 'select', 'from', 'where', 'on', 'using', 'set', 'values',
  'returning', 'group', 'order', 'having', 'limit', 'offset', 'by', 'into', 'as',
]);
// Left-deep at their own nesting level whatever clauses come between them.
const SET_OPERATORS = new Set(['union', 'intersect', 'except', 'join']);
// Keyword operators that each add a level to an expression tree.
const KEYWORD_OPERATORS = new Set([
  'not', 'is', 'isnull', 'notnull', 'like', 'ilike', 'similar', 'between', 'in', 'collate', 'at', 'overlaps',
  'operator', 'case',
]);

// Character classes for the ASCII range; everything from U+0080 up is an identifier character (scan.l).
const SPACE = 1;
const IDENT = 2;
const DIGIT = 3;
const OPERATOR = 4;
const CLASS = new Uint8Array(128);
for (const c of ' \t\n\r\f\v') CLASS[c.charCodeAt(0)] = SPACE;
for (let c = 65; c <= 90; c++) CLASS[c] = CLASS[c + 32] = IDENT;
CLASS[95] = IDENT;
for (let c = 48; c <= 57; c++) CLASS[c] = DIGIT;
for (const c of '~!@#^&|`?+-*/%<>=') CLASS[c.charCodeAt(0)] = OPERATOR;

function charClass(c: number): number {
  return c < 128 ? CLASS[c]! : IDENT;
}
function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}
function isIdentCont(c: number): boolean {
  const k = charClass(c);
  return k === IDENT || k === DIGIT || c === 36;
}

/** Index just past a quoted run closed by `quote` (doubled quote = escaped; backslash escapes if `backslash`). */
function skipQuoted(text: string, from: number, quote: string, backslash: boolean): number {
  let i = from;
  for (;;) {
    const q = text.indexOf(quote, i);
    if (q < 0) return text.length;
    if (backslash) {
      const b = text.indexOf('\\', i);
      if (b >= 0 && b < q) {
        i = b + 2;
        continue;
      }
    }
    if (text[q + 1] === quote) {
      i = q + 2;
      continue;
    }
    return q + 1;
  }
}

/** After a closing quote: whitespace holding a newline then another quote continues the same string. */
function continues(text: string, from: number): number {
  let i = from;
  let newline = false;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === 10 || c === 13) newline = true;
    else if (c !== 32 && c !== 9 && c !== 12 && c !== 11) break;
    i++;
  }
  return newline && text[i] === "'" ? i : -1;
}

const DOLLAR_TAG = /\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/y;

/** Running estimate of tree depth (see the file comment); a class so the hot loop allocates nothing. */
class Chain {
  /** Enclosing levels' totals, and this level's operators since the expression began and UNION/JOIN count. */
  base = 0;
  local = 0;
  setOps = 0;
  max = 0;
  readonly stack: number[] = [];

  /** Records the current estimate; true when it is over `limit`. */
  over(limit: number): boolean {
    const effective = this.base + this.local + this.setOps;
    if (effective > this.max) this.max = effective;
    return effective > limit;
  }
  open(): void {
    this.stack.push(this.base, this.local, this.setOps);
    this.base += this.local + this.setOps + 1;
    this.local = 0;
    this.setOps = 0;
  }
  close(): void {
    this.setOps = this.stack.pop()!;
    this.local = this.stack.pop()!;
    this.base = this.stack.pop()!;
  }
}

export function measureShape(text: string, maxDepth: number, maxChain: number): TextShape {
  const slots: number[] = [];
  const n = text.length;
  const chain = new Chain();
  let depth = 0;
  let maxSeenDepth = 0;
  let exceeded: 'depth' | 'chain' | undefined;
  let i = 0;

  scan: while (i < n) {
    const c = text.charCodeAt(i);
    const k = charClass(c);
    if (k === SPACE) {
      i++;
    } else if (k === IDENT) {
      const start = i;
      i++;
      while (i < n && isIdentCont(text.charCodeAt(i))) i++;
      const len = i - start;
      const next = text.charCodeAt(i);
      if (len === 1 && next === 39) {
        // E'…' has backslash escapes, B'…' and X'…' are bit strings, N'…' is NCHAR then a plain string.
        const p = c | 0x20;
        if (p === 101) i = skipQuoted(text, i + 1, "'", true);
        else if (p === 98 || p === 120) i = skipQuoted(text, i + 1, "'", false);
        else i = stringLiteral(text, i, slots, p === 110);
      } else if (len === 1 && (c | 0x20) === 117 && next === 38 && (text[i + 1] === "'" || text[i + 1] === '"')) {
        i = skipQuoted(text, i + 2, text[i + 1]!, false); // U&'…' / U&"…"
      } else if (len >= 2 && len <= 9) {
        const word = text.slice(start, i).toLowerCase();
        if (RESTART.has(word)) chain.local = 0;
        else if (SET_OPERATORS.has(word)) {
          chain.setOps++;
          if (chain.over(maxChain)) (exceeded = 'chain'), (i = start);
        } else if (KEYWORD_OPERATORS.has(word)) {
          chain.local++;
          if (chain.over(maxChain)) (exceeded = 'chain'), (i = start);
        }
        if (exceeded) break scan;
      }
    } else if (k === DIGIT || (c === 46 && isDigit(text.charCodeAt(i + 1)))) {
      i = numberLiteral(text, i, slots);
    } else if (k === OPERATOR) {
      if (c === 45 && text.charCodeAt(i + 1) === 45) {
        // -- comment to end of line
        i += 2;
        while (i < n && text.charCodeAt(i) !== 10 && text.charCodeAt(i) !== 13) i++;
      } else if (c === 47 && text.charCodeAt(i + 1) === 42) {
        i = skipBlockComment(text, i);
      } else {
        const start = i;
        i++;
        while (
          i < n &&
          charClass(text.charCodeAt(i)) === OPERATOR &&
          !(text.charCodeAt(i) === 45 && text.charCodeAt(i + 1) === 45) &&
          !(text.charCodeAt(i) === 47 && text.charCodeAt(i + 1) === 42)
        )
          i++;
        chain.local++;
        if (chain.over(maxChain)) {
          exceeded = 'chain';
          i = start;
          break;
        }
      }
    } else if (c === 40 || c === 91) {
      chain.open();
      depth++;
      if (depth > maxSeenDepth) maxSeenDepth = depth;
      if (depth > maxDepth) exceeded = 'depth';
      else if (chain.over(maxChain)) exceeded = 'chain';
      if (exceeded) break;
      i++;
    } else if (c === 41 || c === 93) {
      if (depth > 0) {
        depth--;
        chain.close();
      }
      i++;
    } else if (c === 44) {
      chain.local = 0;
      i++;
    } else if (c === 59) {
      chain.local = 0;
      chain.setOps = 0;
      i++;
    } else if (c === 39) {
      i = stringLiteral(text, i, slots, true);
    } else if (c === 34) {
      i = skipQuoted(text, i + 1, '"', false);
    } else if (c === 36) {
      i = dollar(text, i);
    } else if (c === 58 && text.charCodeAt(i + 1) === 58) {
      // '::' casts are left-deep like binary operators
      chain.local++;
      if (chain.over(maxChain)) {
        exceeded = 'chain';
        break;
      }
      i += 2;
    } else {
      i++;
    }
  }
  const shape: TextShape = { depth: maxSeenDepth, chain: chain.max, slots };
  if (exceeded) {
    shape.exceeded = exceeded;
    shape.at = i;
  }
  return shape;
}

/** /* comments *\/ nest in PostgreSQL. */
function skipBlockComment(text: string, from: number): number {
  let level = 1;
  let i = from + 2;
  while (i < text.length && level > 0) {
    const c = text.charCodeAt(i);
    if (c === 47 && text.charCodeAt(i + 1) === 42) (level++, (i += 2));
    else if (c === 42 && text.charCodeAt(i + 1) === 47) (level--, (i += 2));
    else i++;
  }
  return i;
}

/** $1 parameters and $tag$ … $tag$ quotes. */
function dollar(text: string, at: number): number {
  if (isDigit(text.charCodeAt(at + 1))) {
    let i = at + 1;
    while (i < text.length && isDigit(text.charCodeAt(i))) i++;
    return i;
  }
  DOLLAR_TAG.lastIndex = at;
  const tag = DOLLAR_TAG.exec(text);
  if (!tag) return at + 1;
  const close = text.indexOf(tag[0], at + tag[0].length);
  return close < 0 ? text.length : close + tag[0].length;
}

function stringLiteral(text: string, quoteAt: number, slots: number[], eligible: boolean): number {
  let end = skipQuoted(text, quoteAt + 1, "'", false);
  let continued = false;
  for (let next = continues(text, end); next >= 0; next = continues(text, end)) {
    continued = true;
    end = skipQuoted(text, next + 1, "'", false);
  }
  if (eligible && !continued && end <= text.length && text[end - 1] === "'" && end - quoteAt >= 2) {
    slots.push(quoteAt, end, LiteralForm.String);
  }
  return end;
}

function numberLiteral(text: string, start: number, slots: number[]): number {
  const n = text.length;
  let i = start;
  let form: LiteralForm | 0 = 0;
  const digitsFrom = (from: number): number => {
    let j = from;
    while (j < n && isDigit(text.charCodeAt(j))) j++;
    return j;
  };
  if (text[i] === '0' && /[xXoObB]/.test(text[i + 1] ?? '')) {
    i += 2; // 0x…, 0o…, 0b…: never varied
  } else {
    i = digitsFrom(i);
    if (i > start) form = i - start <= 9 ? LiteralForm.Int : 0;
    if (text[i] === '.' && text[i + 1] !== '.') {
      const afterDot = digitsFrom(i + 1);
      form = i > start && afterDot > i + 1 ? LiteralForm.Decimal : 0;
      i = afterDot;
    }
  }
  // Exponents, underscores, junk: the literal is not a simple form (PostgreSQL may also refuse it).
  const tailFrom = i;
  while (i < n && (isIdentCont(text.charCodeAt(i)) || text[i] === '.')) i++;
  if (i === tailFrom && form !== 0) slots.push(start, i, form);
  return i;
}
