import { ClassificationCache } from './cache.js';
import { charPosition, checkLimits, DEFAULT_LIMITS, parseChecked, type ParseLimits } from './parser.js';
import { classifyStatement } from './statement.js';
import { readTags } from './tags.js';
import type { ClassifiedStatement, ClassifyResult } from './types.js';
import type { Json } from './walk.js';

/**
 * classify(): the whole text of a protocol message (a simple Query may hold several statements) in, one
 * ClassifiedStatement per statement out, or a refusal. The relay refuses the whole message when the result is
 * not ok or when policy refuses any one statement (DESIGN.md section 2 step 4).
 *
 * Results are shared through the cache and frozen: callers must not mutate them.
 */

export interface ClassifyOptions {
  limits?: Partial<ParseLimits>;
  /** Texts longer than this are not scanned for sqlcommenter tags (the lexer is slow on huge texts). */
  maxTagScanLength?: number;
  /** The cache to use; false for none. Default: one cache for the process. */
  cache?: ClassificationCache | false;
}

const DEFAULT_TAG_SCAN_LENGTH = 64 * 1024;
let processCache: ClassificationCache | null = null;

/** The process-wide cache used when classify() is not given one (for stats and tests). */
export function defaultCache(): ClassificationCache {
  return (processCache ??= new ClassificationCache());
}

export function classify(text: string, options: ClassifyOptions = {}): ClassifyResult {
  const limits = options.limits ? { ...DEFAULT_LIMITS, ...options.limits } : DEFAULT_LIMITS;
  const cache = options.cache === false ? null : (options.cache ?? defaultCache());

  const hit = cache?.getExact(text);
  if (hit && hit.shape.depth <= limits.maxDepth && hit.shape.chain <= limits.maxChain && text.length * 3 <= limits.maxBytes) {
    return hit.result;
  }
  const checked = checkLimits(text, limits);
  if (!checked.ok) return checked;
  const { shape } = checked;
  const fromTemplate = cache?.getTemplate(text, shape.slots);
  if (fromTemplate) return fromTemplate;
  if (cache) cache.stats.misses++;

  const parsed = parseChecked(text);
  if (!parsed.ok) return parsed;
  const slicer = statementSlicer(text);
  const statements: ClassifiedStatement[] = [];
  let literalDependent = false;
  let span: [number, number] = [0, text.length];
  for (const raw of parsed.tree.stmts ?? []) {
    span = slicer(raw.stmt_location ?? 0, raw.stmt_len ?? 0);
    const statementText = text.slice(span[0], span[1]).trim();
    const classified = classifyStatement((raw.stmt ?? {}) as Json, statementText);
    if (!('statement' in classified)) return { ...classified, position: charPosition(text, span[0]) };
    statements.push(classified.statement);
    literalDependent ||= classified.literalDependent;
  }
  const result: ClassifyResult = { ok: true, statements, tags: readTags(text, options.maxTagScanLength ?? DEFAULT_TAG_SCAN_LENGTH) };
  if (cache) {
    cache.setExact(text, result, { depth: shape.depth, chain: shape.chain });
    if (statements.length === 1 && !literalDependent) cache.offerTemplate(text, shape.slots, result, span);
  }
  return result;
}

/**
 * The parser's statement locations are UTF-8 byte offsets (stmt_len 0 = to the end); JavaScript indexes are
 * UTF-16 units. Returns [start, end) as UTF-16 indexes.
 */
function statementSlicer(text: string): (location: number, length: number) => [number, number] {
  if (Buffer.byteLength(text, 'utf8') === text.length) {
    return (location, length) => [location, length > 0 ? location + length : text.length];
  }
  const bytes = Buffer.from(text, 'utf8');
  const index = (byte: number): number => bytes.subarray(0, byte).toString('utf8').length;
  return (location, length) => [index(location), length > 0 ? index(location + length) : text.length];
}
