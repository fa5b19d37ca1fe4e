import { LiteralForm } from './shape.js';
import type { ClassifiedStatement, ClassifyResult } from './types.js';
import { wasmScan, type ScanToken } from './wasm.js';

/**
 * Classification cache, so repeated statements cost almost nothing.
 *
 * 1. Exact text (LRU): prepared statements and ORMs repeat the same text.
 * 2. Templates: statements that differ only in simple literals (`... WHERE aid = 123` / `= 456`).
 *
 * Why templates and not libpg_query's fingerprint: the fingerprint is built for grouping statistics, not for
 * security. Measured with 17.6.10, it gives `SELECT * FROM t12` and `SELECT * FROM t34` the same value (name
 * segments with two or more digits are dropped), ignores PREPARE/EXECUTE names, comments and aliases, stops at 100
 * nodes deep, and once V8 optimises the WASM it overflows the stack at ~20 levels of nesting. A policy keyed on it
 * could be bypassed by renaming a table.
 *
 * A template is built from PostgreSQL's own lexer (scan.l) on a statement seen twice: the text between its simple
 * literal tokens is kept verbatim, each literal becomes a slot with its form. A new text matches only if it is
 * byte-identical outside the slots and each slot holds a literal of the same form. The lexer then reads the new
 * text as the same token sequence (same prefix, same lexer state; the forms below end the same way whatever
 * their content), so the parse tree differs only in constant values, and a result whose classification read no
 * constant value (ClassifyResult built with literalDependent false) holds for it. The forms:
 * - Int: 1 to 9 digits (always an integer token, never overflowing into a numeric), not followed by a letter,
 *   digit, '_', '$' or '.' (so no `0x`, `1e5`, `1_000`, `1..2`);
 * - Decimal: digits '.' digits, with the same condition after it;
 * - String: '...' with '' as the only escape (standard_conforming_strings is pinned on), not continued on the
 *   next line. E'', U&'', $$ $$, B'' and X'' literals stay verbatim.
 * shape.ts proposes the slots of a new text without the lexer; it is only a lookup key: a wrong proposal can
 * only miss.
 */

export interface CacheOptions {
  /** Entries in the exact-text cache. */
  maxEntries?: number;
  /** Longer texts are not cached. */
  maxTextLength?: number;
  /** Total characters held by the exact-text cache. */
  maxTotalChars?: number;
  /** Templates kept. */
  maxTemplates?: number;
}

/** What a cached classification needs to be rechecked against the caller's limits. */
export interface CachedShape {
  depth: number;
  chain: number;
}

interface ExactEntry {
  result: ClassifyResult;
  shape: CachedShape;
}

interface Template {
  result: ClassifyResult & { ok: true };
  /** Where the statement's text starts, and how far from the end it stops (both outside every slot). */
  start: number;
  tailLength: number;
}

export class ClassificationCache {
  readonly stats = { exactHits: 0, templateHits: 0, misses: 0, templates: 0 };
  private readonly maxEntries: number;
  private readonly maxTextLength: number;
  private readonly maxTotalChars: number;
  private readonly maxTemplates: number;
  private readonly exact = new Map<string, ExactEntry>();
  private exactChars = 0;
  private readonly templates = new Map<string, Template>();
  /** Template keys seen once: the lexer only runs for a key seen twice (one-off statements stay cheap). */
  private readonly sightings = new Set<string>();

  constructor(options: CacheOptions = {}) {
    this.maxEntries = options.maxEntries ?? 10_000;
    this.maxTextLength = options.maxTextLength ?? 64 * 1024;
    this.maxTotalChars = options.maxTotalChars ?? 8 * 1024 * 1024;
    this.maxTemplates = options.maxTemplates ?? 2_000;
  }

  getExact(text: string): ExactEntry | undefined {
    if (text.length > this.maxTextLength) return undefined;
    const entry = this.exact.get(text);
    if (entry) {
      // Map keeps insertion order: re-inserting makes this the most recently used.
      this.exact.delete(text);
      this.exact.set(text, entry);
      this.stats.exactHits++;
    }
    return entry;
  }

  setExact(text: string, result: ClassifyResult, shape: CachedShape): void {
    if (text.length > this.maxTextLength || this.exact.has(text)) return;
    this.exact.set(text, { result: deepFreeze(result), shape });
    this.exactChars += text.length;
    for (const key of this.exact.keys()) {
      if (this.exact.size <= this.maxEntries && this.exactChars <= this.maxTotalChars) break;
      this.exact.delete(key);
      this.exactChars -= key.length;
    }
  }

  /** A result for `text` from a template, or undefined. `slots` come from measureShape(). */
  getTemplate(text: string, slots: number[]): ClassifyResult | undefined {
    if (slots.length === 0 || this.templates.size === 0) return undefined;
    const template = this.templates.get(templateKey(text, slots));
    if (!template) return undefined;
    this.stats.templateHits++;
    const statementText = text.slice(template.start, text.length - template.tailLength).trim();
    const statement = withText(template.result.statements[0]!, statementText);
    return Object.freeze({ ok: true as const, statements: Object.freeze([statement]) as ClassifiedStatement[], tags: template.result.tags });
  }

  /**
   * Offers a single-statement result whose classification used no literal value. `span` is the statement's
   * text [start, end) in `text`.
   */
  offerTemplate(text: string, slots: number[], result: ClassifyResult & { ok: true }, span: [number, number]): void {
    if (slots.length === 0 || text.length > this.maxTextLength) return;
    const key = templateKey(text, slots);
    if (this.templates.has(key)) return;
    if (!this.sightings.has(key)) {
      if (this.sightings.size >= this.maxTemplates * 4) this.sightings.clear();
      this.sightings.add(key);
      return;
    }
    this.sightings.delete(key);
    const tokens = wasmScan(text);
    const lexed = tokens && slotsFromTokens(text, tokens);
    // The template is the real lexer's; when the quick pass saw this text differently, no lookup would find it.
    if (!lexed || templateKey(text, lexed) !== key) return;
    if (this.templates.size >= this.maxTemplates) this.templates.delete(this.templates.keys().next().value!);
    this.templates.set(key, { result: deepFreeze(result), start: span[0], tailLength: text.length - span[1] });
    this.stats.templates = this.templates.size;
  }
}

/** Text outside the slots, verbatim, with NUL + form in place of each slot (NUL never reaches the parser). */
export function templateKey(text: string, slots: number[]): string {
  let key = '';
  let pos = 0;
  for (let i = 0; i < slots.length; i += 3) {
    key += text.slice(pos, slots[i]) + '\u0000' + String(slots[i + 2]);
    pos = slots[i + 1]!;
  }
  return key + text.slice(pos);
}

const INT = /^[0-9]{1,9}$/;
const DECIMAL = /^[0-9]+\.[0-9]+$/;
const STRING = /^'(?:[^']|'')*'$/;

function endsToken(text: string, end: number): boolean {
  const c = text.charCodeAt(end);
  if (Number.isNaN(c)) return true;
  const identOrDot = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c === 36 || c === 46 || c >= 0x80;
  return !identOrDot;
}

/** Slots (as in shape.ts) from the real lexer's tokens; null if offsets cannot be mapped. */
export function slotsFromTokens(text: string, tokens: ScanToken[]): number[] | null {
  const toIndex = byteToIndex(text);
  const slots: number[] = [];
  for (const t of tokens) {
    const start = toIndex(t.start);
    const end = toIndex(t.end);
    if (start < 0 || end < 0) return null;
    const s = text.slice(start, end);
    if (t.tokenName === 'ICONST' && INT.test(s) && endsToken(text, end)) slots.push(start, end, LiteralForm.Int);
    else if (t.tokenName === 'FCONST' && DECIMAL.test(s) && endsToken(text, end)) slots.push(start, end, LiteralForm.Decimal);
    else if (t.tokenName === 'SCONST' && STRING.test(s)) slots.push(start, end, LiteralForm.String);
  }
  return slots;
}

/** Maps UTF-8 byte offsets (the lexer's) to UTF-16 indexes (JavaScript's). */
function byteToIndex(text: string): (byte: number) => number {
  if (Buffer.byteLength(text, 'utf8') === text.length) return (b) => b;
  const map = new Map<number, number>();
  let byte = 0;
  for (let i = 0; i < text.length; i++) {
    map.set(byte, i);
    const c = text.codePointAt(i)!;
    byte += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
    if (c >= 0x10000) i++;
  }
  map.set(byte, text.length);
  return (b) => map.get(b) ?? -1;
}

function withText(s: ClassifiedStatement, text: string): ClassifiedStatement {
  const copy: ClassifiedStatement = { ...s, text };
  if (s.prepare) copy.prepare = Object.freeze({ ...s.prepare, statement: withText(s.prepare.statement, text) });
  if (s.declare) copy.declare = Object.freeze({ ...s.declare, statement: withText(s.declare.statement, text) });
  return Object.freeze(copy);
}

/** Cached results are shared between callers: freeze them so a caller's mutation fails loudly. */
export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
