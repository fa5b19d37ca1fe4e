/**
 * Types for the Emscripten factory inside @libpg-query/parser. The package's public entry keeps one module-level
 * instance that cannot be replaced, and a trapped instance is not safe to reuse (see wasm.ts), so Sluice creates
 * and owns its instances through this factory. Only the members wasm.ts uses are declared; they are the same ones
 * the package's own wrapper (wasm/index.js) calls.
 */
declare module '@libpg-query/parser/wasm/libpg-query.js' {
  export interface PgQueryWasm {
    _malloc(size: number): number;
    _free(ptr: number): void;
    _wasm_parse_query_raw(queryPtr: number): number;
    _wasm_free_parse_result(resultPtr: number): void;
    _wasm_scan(queryPtr: number): number;
    _wasm_free_string(ptr: number): void;
    getValue(ptr: number, type: 'i32'): number;
    UTF8ToString(ptr: number): string;
    stringToUTF8(str: string, ptr: number, maxBytes: number): void;
    lengthBytesUTF8(str: string): number;
  }
  export interface PgQueryWasmOptions {
    print?: (text: string) => void;
    printErr?: (text: string) => void;
  }
  const createPgQueryWasm: (options?: PgQueryWasmOptions) => Promise<PgQueryWasm>;
  export default createPgQueryWasm;
}
