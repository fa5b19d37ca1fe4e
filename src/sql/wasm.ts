import createPgQueryWasm, { type PgQueryWasm } from '@libpg-query/parser/wasm/libpg-query.js';

/**
 * Owns the libpg_query WASM instances. Why not the package's parseSync(): it keeps one instance for the life of
 * the process, and an instance that trapped (a JS RangeError when the C parser recursed past the native stack)
 * is left with its shadow stack pointer and its memory context where the trap happened. Measured here: after
 * ~35 traps that instance calls exit(1) ("Terminating process due to FATAL error"), which sets
 * process.exitCode = 1 for all of Sluice, and every later call fails with "memory access out of bounds".
 * So a trapped instance is thrown away at once and a spare, loaded in advance, takes its place; a new spare
 * loads in the background (~20 ms). Both instances run the same compiled module.
 */

export interface ScanToken {
  /** Byte offsets into the UTF-8 text. */
  start: number;
  end: number;
  text: string;
  tokenName: string;
}

export type WasmParse =
  | { kind: 'tree'; json: string }
  /** PostgreSQL's own error; cursor is its 1-based character position (0 when it gave none). */
  | { kind: 'error'; message: string; cursor: number }
  /** The instance trapped (it has been replaced). */
  | { kind: 'trap'; message: string }
  /** Both instances trapped in quick succession and the replacement is still loading. */
  | { kind: 'unavailable' };

let primary: PgQueryWasm | null = null;
let spare: PgQueryWasm | null = null;
let refilling: Promise<void> | null = null;
let trapCount = 0;
let lastStderr = '';

function createInstance(): Promise<PgQueryWasm> {
  // The C code prints FATAL/WARNING lines to stderr; keep the last one for the refusal message instead.
  return createPgQueryWasm({ print: () => {}, printErr: (line) => (lastStderr = line) });
}

function refill(): Promise<void> {
  refilling ??= (async () => {
    try {
      while (!primary || !spare) {
        const instance = await createInstance();
        if (!primary) primary = instance;
        else spare = instance;
      }
    } finally {
      refilling = null;
    }
  })();
  return refilling;
}

/** Resolves when a parser instance and its spare are loaded. Idempotent; cheap once loaded. */
export function loadWasm(): Promise<void> {
  return primary && spare ? Promise.resolve() : refill();
}

/** How many instances were thrown away after a trap (for logs and tests). */
export function wasmTrapCount(): number {
  return trapCount;
}

function retire(error: unknown, exitCodeBefore: typeof process.exitCode): string {
  trapCount++;
  // Emscripten's exit() sets process.exitCode before throwing; it is not Sluice's exit code.
  process.exitCode = exitCodeBefore;
  primary = spare;
  spare = null;
  refill().catch(() => {});
  const message = error instanceof Error ? error.message : String(error);
  const detail = lastStderr ? ` (${lastStderr.trim()})` : '';
  lastStderr = '';
  return `${message}${detail}`;
}

function copyIn(m: PgQueryWasm, text: string): number {
  const size = m.lengthBytesUTF8(text) + 1;
  const ptr = m._malloc(size);
  if (!ptr) throw new Error('the SQL parser is out of memory');
  m.stringToUTF8(text, ptr, size);
  return ptr;
}

/** PostgreSQL's raw parser, as JSON. Layout of PgQueryParseResult / PgQueryError as in pg_query.h. */
export function wasmParse(text: string): WasmParse {
  const m = primary;
  if (!m) return { kind: 'unavailable' };
  const exitCodeBefore = process.exitCode;
  try {
    const queryPtr = copyIn(m, text);
    const resultPtr = m._wasm_parse_query_raw(queryPtr);
    m._free(queryPtr);
    if (!resultPtr) throw new Error('the SQL parser returned no result');
    const treePtr = m.getValue(resultPtr, 'i32');
    const errorPtr = m.getValue(resultPtr + 8, 'i32');
    let out: WasmParse;
    if (errorPtr) {
      const messagePtr = m.getValue(errorPtr, 'i32');
      out = {
        kind: 'error',
        message: messagePtr ? m.UTF8ToString(messagePtr) : 'syntax error',
        cursor: m.getValue(errorPtr + 16, 'i32'),
      };
    } else {
      out = { kind: 'tree', json: treePtr ? m.UTF8ToString(treePtr) : '{"stmts":[]}' };
    }
    m._wasm_free_parse_result(resultPtr);
    return out;
  } catch (error) {
    return { kind: 'trap', message: retire(error, exitCodeBefore) };
  }
}

/** PostgreSQL's lexer (scan.l). Null when it refuses the text or traps: callers treat that as "no tokens known". */
export function wasmScan(text: string): ScanToken[] | null {
  const m = primary;
  if (!m) return null;
  const exitCodeBefore = process.exitCode;
  let json: string;
  try {
    const queryPtr = copyIn(m, text);
    const resultPtr = m._wasm_scan(queryPtr);
    m._free(queryPtr);
    json = m.UTF8ToString(resultPtr);
    m._wasm_free_string(resultPtr);
  } catch (error) {
    retire(error, exitCodeBefore);
    return null;
  }
  try {
    // On a lexer error the same pointer holds the error message instead of JSON.
    const parsed = JSON.parse(json) as { tokens?: ScanToken[] };
    return parsed.tokens ?? [];
  } catch {
    return null;
  }
}
