import type { ParseResult } from '@libpg-query/parser';
import { measureShape, type TextShape } from './shape.js';
import { loadWasm, wasmParse } from './wasm.js';

/**
 * The guarded entry to PostgreSQL's parser: limits are enforced before the WASM parser sees the text, and a
 * parser failure or trap refuses the statement (fail closed) while the parser stays usable for the next one.
 */

export interface ParseLimits {
  /** Largest statement text, in UTF-8 bytes. */
  maxBytes: number;
  /** Deepest nesting of parentheses and brackets. */
  maxDepth: number;
  /** Largest estimated tree depth from nesting plus operator chains (see shape.ts). */
  maxChain: number;
}

export const DEFAULT_LIMITS: Readonly<ParseLimits> = Object.freeze({
  maxBytes: 1024 * 1024,
  // Real statements rarely nest past a few dozen levels; 2,000 nested sub-selects overflow the parser.
  maxDepth: 256,
  // 9,000 chained operators overflow it; half that leaves room for nesting on the same path.
  maxChain: 4000,
});

export interface Refusal {
  ok: false;
  /** SQLSTATE for the ErrorResponse. */
  code: string;
  message: string;
  hint: string;
  /** 1-based character position in the text, as PostgreSQL reports it in ErrorResponse field P. */
  position?: number;
}

export type ParseOutcome = { ok: true; tree: ParseResult; shape: TextShape } | Refusal;

/** Loads the WASM parser (and a spare instance). Idempotent; await it once before parse()/classify(). */
export function loadParser(): Promise<void> {
  return loadWasm();
}

function refuse(code: string, message: string, hint: string, position?: number): Refusal {
  return position === undefined ? { ok: false, code, message, hint } : { ok: false, code, message, hint, position };
}

/** 1-based code-point position of a UTF-16 index (PostgreSQL counts characters, not UTF-16 units). */
export function charPosition(text: string, index: number): number {
  let pos = 1;
  for (let i = 0; i < index && i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0xdc00 || c > 0xdfff) pos++; // a low surrogate belongs to the character before it
  }
  return pos;
}

const isWellFormed = (text: string): boolean =>
  (text as unknown as { isWellFormed(): boolean }).isWellFormed();

/** Refusal for text PostgreSQL would not read the same way, or that is too large; null when it may be parsed. */
export function checkText(text: string, limits: ParseLimits): Refusal | null {
  // UTF-8 is at most 3 bytes per UTF-16 unit, so most texts skip the exact byte count.
  if (text.length * 3 > limits.maxBytes && Buffer.byteLength(text, 'utf8') > limits.maxBytes) {
    return refuse(
      '54000',
      `statement is ${Buffer.byteLength(text, 'utf8')} bytes, over Sluice's limit of ${limits.maxBytes}`,
      'Send smaller statements (for bulk loads, use COPY or several INSERTs).',
    );
  }
  const nul = text.indexOf('\0');
  if (nul >= 0) {
    return refuse('22021', 'invalid byte sequence for encoding "UTF8": 0x00', 'Statements cannot contain NUL characters.', charPosition(text, nul));
  }
  const replacement = text.indexOf('\uFFFD');
  if (replacement >= 0) {
    // U+FFFD is what a lossy decoder leaves in place of invalid bytes: what the server would read is unknown.
    return refuse(
      '22021',
      'statement contains U+FFFD (a replacement for bytes that were not valid UTF-8)',
      'Send the statement as valid UTF-8.',
      charPosition(text, replacement),
    );
  }
  if (!isWellFormed(text)) {
    return refuse('22021', 'statement contains an unpaired UTF-16 surrogate (not valid UTF-8)', 'Send the statement as valid UTF-8.');
  }
  return null;
}

/** The checks above plus nesting/complexity (shape.ts): the shape when the text may go to the parser. */
export function checkLimits(text: string, limits: ParseLimits): { ok: true; shape: TextShape } | Refusal {
  const bad = checkText(text, limits);
  if (bad) return bad;
  const shape = measureShape(text, limits.maxDepth, limits.maxChain);
  if (shape.exceeded === 'depth') {
    return refuse(
      '54001',
      `statement is too deeply nested (more than ${limits.maxDepth} levels of parentheses or brackets)`,
      'Simplify the statement, for example by moving sub-queries into WITH clauses.',
      charPosition(text, shape.at ?? 0),
    );
  }
  if (shape.exceeded === 'chain') {
    return refuse(
      '54001',
      `statement is too complex (an expression chain deeper than ${limits.maxChain} operators)`,
      'Simplify the statement, for example by splitting long expressions or UNION chains.',
      charPosition(text, shape.at ?? 0),
    );
  }
  return { ok: true, shape };
}

/** PostgreSQL's parser on text that passed checkLimits(). Never throws for bad input. */
export function parseChecked(text: string): { ok: true; tree: ParseResult } | Refusal {
  // The WASM wrapper refuses an empty string; PostgreSQL answers it with EmptyQueryResponse.
  if (text === '') return { ok: true, tree: { stmts: [] } };
  const raw = wasmParse(text);
  switch (raw.kind) {
    case 'tree':
      try {
        return { ok: true, tree: JSON.parse(raw.json) as ParseResult };
      } catch (error) {
        return refuse('54001', `statement is too complex to read: ${(error as Error).message}`, 'Simplify the statement.');
      }
    case 'error':
      return refuse(
        '42601',
        raw.message,
        "Sluice parses every statement with PostgreSQL's own parser and refuses what it cannot parse; fix the syntax.",
        raw.cursor > 0 ? raw.cursor : undefined,
      );
    case 'trap':
      return refuse(
        '54001',
        `statement is too complex for the SQL parser: ${raw.message}`,
        'Simplify the statement (less nesting, shorter expression chains).',
      );
    case 'unavailable':
      return refuse('57P03', 'the SQL parser is restarting after a failure', 'Retry the statement in a moment.');
  }
}

/** Parses `text` with PostgreSQL's own grammar after the limit checks. Never throws for bad input. */
export function parse(text: string, limits: ParseLimits = DEFAULT_LIMITS): ParseOutcome {
  const checked = checkLimits(text, limits);
  if (!checked.ok) return checked;
  const parsed = parseChecked(text);
  return parsed.ok ? { ok: true, tree: parsed.tree, shape: checked.shape } : parsed;
}
