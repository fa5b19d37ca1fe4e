/** Parsing and classification of SQL with PostgreSQL's own parser (issue 3). */
export { ClassificationCache, type CacheOptions } from './cache.js';
export { classify, defaultCache, type ClassifyOptions } from './classify.js';
export { DEFAULT_LIMITS, loadParser, parse, type ParseLimits, type ParseOutcome, type Refusal } from './parser.js';
export * from './types.js';
export { wasmTrapCount } from './wasm.js';
