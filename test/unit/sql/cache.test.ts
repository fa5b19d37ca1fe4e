import { beforeAll, describe, expect, it } from 'vitest';
import { ClassificationCache, templateKey } from '../../../src/sql/cache.js';
import { classify } from '../../../src/sql/classify.js';
import { loadParser } from '../../../src/sql/parser.js';
import { measureShape } from '../../../src/sql/shape.js';
import type { ClassifyResult } from '../../../src/sql/types.js';

beforeAll(loadParser);

const fresh = (text: string): ClassifyResult => classify(text, { cache: false });

/** Classifies `first` twice (a template is built on the second sighting), then `next` through the same cache. */
function throughTemplate(first: string[], next: string): { result: ClassifyResult; cache: ClassificationCache } {
  const cache = new ClassificationCache();
  for (const t of first) classify(t, { cache });
  return { result: classify(next, { cache }), cache };
}

function isDeepFrozen(v: unknown): boolean {
  if (!v || typeof v !== 'object') return true;
  return Object.isFrozen(v) && Object.values(v).every(isDeepFrozen);
}

describe('exact-text cache', () => {
  it('returns the same frozen object for the same text', () => {
    const cache = new ClassificationCache();
    const a = classify('SELECT * FROM t WHERE id = 1', { cache });
    const b = classify('SELECT * FROM t WHERE id = 1', { cache });
    expect(b).toBe(a);
    expect(cache.stats.exactHits).toBe(1);
    expect(isDeepFrozen(b)).toBe(true);
    expect(() => {
      if (b.ok) b.statements[0]!.reads.push({ schema: null, name: 'x' });
    }).toThrow(TypeError);
  });

  it('still applies the caller\'s limits to a cached text', () => {
    const cache = new ClassificationCache();
    const text = 'SELECT ((((1))))';
    expect(classify(text, { cache }).ok).toBe(true);
    expect(classify(text, { cache, limits: { maxDepth: 2 } })).toMatchObject({ ok: false, code: '54001' });
  });

  it('stays within its entry limit (least recently used goes first)', () => {
    // No literals in these texts, so the template cache stays out of the way.
    const cache = new ClassificationCache({ maxEntries: 3 });
    for (const t of ['SELECT a', 'SELECT b', 'SELECT c']) classify(t, { cache });
    classify('SELECT a', { cache }); // now the most recently used
    classify('SELECT d', { cache });
    const hits = cache.stats.exactHits;
    classify('SELECT a', { cache });
    expect(cache.stats.exactHits).toBe(hits + 1);
    classify('SELECT b', { cache });
    expect(cache.stats.exactHits).toBe(hits + 1); // evicted
  });

  it('does not cache refusals', () => {
    const cache = new ClassificationCache();
    classify('SELEC 1', { cache });
    classify('SELEC 1', { cache });
    expect(cache.stats.exactHits).toBe(0);
  });
});

describe('template cache (statements that differ only in literals)', () => {
  const pgbench = (aid: number | string): string => `SELECT abalance FROM pgbench_accounts WHERE aid = ${aid};`;

  it('serves a statement with other literals from the template, with its own text', () => {
    const { result, cache } = throughTemplate([pgbench(1), pgbench(2)], pgbench(987654));
    expect(cache.stats.templateHits).toBe(1);
    expect(result).toEqual(fresh(pgbench(987654)));
    expect(result.ok && result.statements[0]!.text).toBe('SELECT abalance FROM pgbench_accounts WHERE aid = 987654');
    expect(isDeepFrozen(result)).toBe(true);
  });

  it('only builds a template on the second sighting (one-off statements never pay for the lexer)', () => {
    const { cache } = throughTemplate([pgbench(1)], pgbench(2));
    expect(cache.stats.templateHits).toBe(0);
    classify(pgbench(3), { cache });
    expect(cache.stats.templateHits).toBe(1);
  });

  it('varies strings and decimals as well as integers', () => {
    const text = (s: string, d: string): string => `UPDATE t SET note = ${s}, price = ${d} WHERE name = 'x'`;
    const { result, cache } = throughTemplate([text("'a'", '1.5'), text("'b'", '2.25')], text("'it''s; DROP TABLE t'", '10.0'));
    expect(cache.stats.templateHits).toBe(1);
    expect(result).toEqual(fresh(text("'it''s; DROP TABLE t'", '10.0')));
  });

  it('keeps tables apart that libpg_query\'s fingerprint conflates (t12 / t34)', () => {
    const { result, cache } = throughTemplate(['SELECT * FROM t12 WHERE a = 1', 'SELECT * FROM t12 WHERE a = 2'], 'SELECT * FROM t34 WHERE a = 1');
    expect(cache.stats.templateHits).toBe(0);
    expect(result.ok && result.statements[0]!.reads).toEqual([{ schema: null, name: 't34' }]);
  });

  it('keeps comments (tags) and names apart', () => {
    const t = (tool: string, n: number): string => `/*tool='${tool}'*/ EXECUTE p${tool}(${n})`;
    const { result } = throughTemplate([t('a', 1), t('a', 2)], t('b', 3));
    expect(result.ok && [result.tags, result.statements[0]!.execute]).toEqual([{ tool: 'b' }, { name: 'pb' }]);
  });

  it('never varies a literal the classification read (settings, set_config, EXPLAIN ANALYZE option)', () => {
    const cases: [string[], string][] = [
      [["SET search_path = 'a'", "SET search_path = 'b'"], "SET search_path = 'evil'"],
      [["SELECT set_config('x', 'a', false)", "SELECT set_config('x', 'b', false)"], "SELECT set_config('role', 'admin', false)"],
      [["EXPLAIN (ANALYZE 'off') DELETE FROM t WHERE id = 1", "EXPLAIN (ANALYZE 'off') DELETE FROM t WHERE id = 2"], "EXPLAIN (ANALYZE 'on') DELETE FROM t WHERE id = 3"],
      [['SET statement_timeout = 1000', 'SET statement_timeout = 2000'], 'SET statement_timeout = 0'],
    ];
    for (const [first, next] of cases) {
      const { result, cache } = throughTemplate(first, next);
      expect(cache.stats.templateHits, next).toBe(0);
      expect(result, next).toEqual(fresh(next));
    }
  });

  it('never varies literals the quick pass and the real lexer could disagree on', () => {
    const cases: [string[], string][] = [
      [["SELECT E'a' FROM t", "SELECT E'b' FROM t"], "SELECT E'\\' FROM u' FROM t"],
      [['SELECT 0x1F FROM t', 'SELECT 0x2F FROM t'], 'SELECT 0x3F FROM t'],
      [['SELECT 1e5 FROM t', 'SELECT 2e5 FROM t'], 'SELECT 3e5 FROM t'],
      [["SELECT 'a'\n'b' FROM t", "SELECT 'c'\n'd' FROM t"], "SELECT 'e'\n'f' FROM t"],
      [['SELECT $$a$$ FROM t', 'SELECT $$b$$ FROM t'], 'SELECT $$c$$ FROM t'],
      [['SELECT 1234567890 FROM t', 'SELECT 1234567891 FROM t'], 'SELECT 1234567892 FROM t'],
    ];
    for (const [first, next] of cases) {
      const { result, cache } = throughTemplate(first, next);
      expect(cache.stats.templateHits, next).toBe(0);
      expect(result, next).toEqual(fresh(next));
    }
  });

  it('does not match a literal that swallows the rest of the statement', () => {
    const { result, cache } = throughTemplate(
      ["SELECT * FROM t WHERE a = 'x'", "SELECT * FROM t WHERE a = 'y'"],
      "SELECT * FROM t WHERE a = 'x' OR 1=1; DELETE FROM t --'",
    );
    expect(cache.stats.templateHits).toBe(0);
    expect(result.ok && result.statements.map((s) => s.class)).toEqual(['read', 'write']);
  });

  it('only uses templates for single statements', () => {
    const { result, cache } = throughTemplate(['SELECT 1; SELECT 2', 'SELECT 3; SELECT 4'], 'SELECT 5; SELECT 6');
    expect(cache.stats.templateHits).toBe(0);
    expect(result.ok && result.statements.map((s) => s.text)).toEqual(['SELECT 5', 'SELECT 6']);
  });

  it('maps positions through multi-byte text', () => {
    const t = (v: string): string => `  /* ü */ SELECT 'é${v}' FROM "tä" WHERE a = ${v.length} ;  `;
    const { result, cache } = throughTemplate([t('x'), t('yy')], t('€😀zz'));
    expect(cache.stats.templateHits).toBe(1);
    expect(result).toEqual(fresh(t('€😀zz')));
  });

  it('gives the same answer as no cache for random literal variations (property check)', () => {
    const shapes = [
      (a: string, b: string) => `SELECT * FROM orders WHERE id = ${a} AND note = ${b}`,
      (a: string, b: string) => `UPDATE accounts SET balance = balance + ${a} WHERE owner = ${b}`,
      (a: string, b: string) => `INSERT INTO log (n, msg) VALUES (${a}, ${b}) RETURNING id`,
      (a: string, b: string) => `WITH x AS (SELECT ${a} AS v) SELECT * FROM x, t WHERE t.name = ${b}`,
      (a: string, b: string) => `DELETE FROM s.t WHERE a < ${a} AND b = ${b} -- trailing`,
      (a: string, b: string) => `DECLARE c CURSOR FOR SELECT * FROM t WHERE a = ${a} AND b = ${b}`,
      (a: string, b: string) => `PREPARE p AS SELECT * FROM t WHERE a = ${a} AND b = ${b}`,
      (a: string, b: string) => `EXPLAIN ANALYZE UPDATE t SET a = ${a} WHERE b = ${b}`,
    ];
    const ints = ['0', '7', '42', '999999999', '1234567890', '0x10', '1_000', '1e3', '3.25', '.5'];
    const strings = ["'x'", "''", "'it''s'", "'; DROP TABLE t; --'", "'/* not a comment */'", "E'\\''", "$$x$$", "U&'\\0061'", "'é😀'"];
    const pick = <T>(xs: T[], i: number): T => xs[(i * 7919) % xs.length]!;
    const cache = new ClassificationCache();
    for (let i = 0; i < 400; i++) {
      const text = pick(shapes, i)(pick(ints, i * 3 + 1), pick(strings, i * 5 + 2));
      expect(classify(text, { cache }), text).toEqual(fresh(text));
    }
    expect(cache.stats.templateHits).toBeGreaterThan(100);
  });
});

describe('template keys', () => {
  it('replace each simple literal with its form, and keep everything else', () => {
    const text = "SELECT 'a''b', 12, 3.5, x1, $1, 0x1F, E'q' -- 9\nFROM t";
    expect(templateKey(text, measureShape(text, 256, 4000).slots)).toBe("SELECT \u00003, \u00001, \u00002, x1, $1, 0x1F, E'q' -- 9\nFROM t");
  });
});
