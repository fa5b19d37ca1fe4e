/**
 * Taint from the parse tree against a hand-built catalog: customers(id, email, ssn) = OID 100, orders(id,
 * customer_id, note) = 200, other.customers(id, email) = 300, a view over customers = 400, a user function.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { CatalogSnapshot, parseSearchPath } from '../../../src/masking/catalog-snapshot.js';
import { taintText, UNATTRIBUTED, type StatementTaint } from '../../../src/masking/taint.js';
import { loadParser } from '../../../src/sql/parser.js';

const rel = (oid: number, schema: string, name: string, kind: string, cols: string[], viewdef: string | null = null) =>
  cols.map((c, i) => [String(oid), schema, name, kind, String(i + 1), c, viewdef]);

const cat = new CatalogSnapshot(
  {
    relations: [
      ...rel(100, 'public', 'customers', 'r', ['id', 'email', 'ssn']),
      ...rel(200, 'public', 'orders', 'r', ['id', 'customer_id', 'note']),
      ...rel(300, 'other', 'customers', 'r', ['id', 'email']),
      ...rel(400, 'public', 'v', 'v', ['id', 'contact'], ' SELECT customers.id, lower(customers.email) AS contact FROM public.customers;'),
    ],
    inherits: [],
    functions: [['upper', 't'], ['lower', 't'], ['count', 't'], ['row_to_json', 't'], ['generate_series', 't'], ['leak', 'f'], ['pg_notify', 't'], ['length', 't'], ['unnest', 't'], ['max', 't']],
    operators: [['===']],
    textTypes: [],
  },
  1,
);

const EMAIL = '100.2';
const SSN = '100.3';
let one: (sql: string, path?: string) => StatementTaint;
beforeAll(async () => {
  await loadParser();
  one = (sql, path = '"$user", public') => taintText(sql, cat, { searchPath: parseSearchPath(path, 'agent') })![0]!;
});
const outs = (t: StatementTaint) => t.outputs!.map((o) => [...o.sources].sort());

describe('outputs', () => {
  it('plain columns, aliases, expressions, casts and aggregates', () => {
    const t = one('SELECT id, email AS x, upper(ssn), email::varchar, count(email), length(email) FROM customers');
    expect(outs(t)).toEqual([['100.1'], [EMAIL], [SSN], [EMAIL], [], [EMAIL]]);
    expect(t.outputs![1]!.direct).toBe(EMAIL);
    expect(t.outputs![2]!.direct).toBeNull();
    expect(t.exact).toBe(true);
  });

  it('star, qualified star and whole-row references', () => {
    expect(outs(one('SELECT * FROM customers c, orders o'))).toEqual([['100.1'], [EMAIL], [SSN], ['200.1'], ['200.2'], ['200.3']]);
    expect(outs(one('SELECT o.* FROM customers c, orders o'))).toEqual([['200.1'], ['200.2'], ['200.3']]);
    expect(outs(one('SELECT row_to_json(c), c::text, c FROM customers c'))).toEqual(Array(3).fill(['100.1', EMAIL, SSN]));
  });

  it('search_path decides which customers an unqualified name is', () => {
    expect(outs(one('SELECT email FROM customers', 'other, public'))).toEqual([['300.2']]);
    expect(outs(one('SELECT email FROM customers'))).toEqual([[EMAIL]]);
    expect(outs(one('SELECT email FROM other.customers'))).toEqual([['300.2']]);
  });

  it('CTEs, subqueries, LATERAL and set operations', () => {
    expect(outs(one('WITH w(e) AS (SELECT email FROM customers) SELECT e FROM w'))).toEqual([[EMAIL]]);
    expect(one('WITH w(e) AS (SELECT email FROM customers) SELECT e FROM w').outputs![0]!.direct).toBe(EMAIL);
    expect(outs(one('SELECT s.z FROM (SELECT ssn AS z FROM customers) s'))).toEqual([[SSN]]);
    expect(outs(one('SELECT (SELECT email FROM customers LIMIT 1)'))).toEqual([[EMAIL]]);
    expect(outs(one('SELECT l.x FROM orders o, LATERAL (SELECT c.email AS x FROM customers c WHERE c.id = o.customer_id) l'))).toEqual([[EMAIL]]);
    expect(outs(one('SELECT note FROM orders UNION SELECT email FROM customers'))).toEqual([['200.3', EMAIL].sort()]);
    expect(outs(one('WITH RECURSIVE r(n, e) AS (SELECT 1, note FROM orders UNION ALL SELECT n + 1, email FROM r, customers) SELECT n, e FROM r'))).toEqual([[], ['200.3', EMAIL].sort()]);
  });

  it('a CTE shadows a table of the same name', () => {
    expect(outs(one('WITH customers AS (SELECT note AS email FROM orders) SELECT email FROM customers'))).toEqual([['200.3']]);
  });

  it('JOIN USING merges the join columns; a join alias hides its sides', () => {
    const t = one('SELECT * FROM customers JOIN (SELECT id, note AS email FROM orders) o USING (id, email)');
    expect(outs(t)).toEqual([['100.1', '200.1'], [EMAIL, '200.3'].sort(), [SSN]]);
    expect([...t.predicates].sort()).toEqual(['100.1', EMAIL, '200.1', '200.3'].sort());
    expect(outs(one('SELECT j.ssn FROM (customers JOIN orders USING (id)) AS j'))).toEqual([[SSN]]);
    expect(outs(one('SELECT * FROM customers NATURAL JOIN other.customers')).length).toBe(3);
  });

  it('views map to the base columns of their definition', () => {
    const t = one('SELECT id, contact FROM v');
    expect(outs(t)).toEqual([['100.1'], [EMAIL]]);
    expect(t.outputs![0]!.direct).toBe('100.1');
    expect(t.outputs![1]!.direct).toBeNull();
  });

  it('functions in FROM: width unknown without a column list', () => {
    const t = one('SELECT * FROM customers, generate_series(1, 2) g');
    expect(t.exact).toBe(false);
    const listed = one('SELECT x FROM customers c, unnest(ARRAY[c.email]) AS x');
    expect(outs(listed)).toEqual([[EMAIL]]);
  });

  it('unknown relations and columns are attributable by name or not at all', () => {
    expect(outs(one('SELECT a FROM nowhere'))).toEqual([['?.nowhere.*']]);
    expect(outs(one('SELECT nosuch FROM customers'))).toEqual([[UNATTRIBUTED]]);
    expect(outs(one('SELECT leak()'))).toEqual([[UNATTRIBUTED]]);
  });

  it('RETURNING', () => {
    expect(outs(one("UPDATE customers SET ssn = 'x' RETURNING email"))).toEqual([[EMAIL]]);
    expect(outs(one('DELETE FROM customers c USING orders o WHERE o.customer_id = c.id RETURNING c.*, o.note'))).toEqual([['100.1'], [EMAIL], [SSN], ['200.3']]);
  });
});

describe('uses', () => {
  it('predicates: WHERE, ORDER BY (name and position), GROUP BY, HAVING, ON, CASE, comparisons, function arguments', () => {
    expect([...one("SELECT id FROM customers WHERE email = 'x'").predicates]).toEqual([EMAIL]);
    expect([...one('SELECT id, ssn AS s FROM customers ORDER BY s').predicates]).toEqual([SSN]);
    expect([...one('SELECT id, ssn FROM customers ORDER BY 2').predicates]).toEqual([SSN]);
    expect([...one('SELECT count(*) FROM customers GROUP BY email HAVING max(ssn) > 1').predicates].sort()).toEqual([EMAIL, SSN]);
    expect([...one('SELECT 1 FROM orders o JOIN customers c ON c.email = o.note').predicates].sort()).toEqual([EMAIL, '200.3']);
    expect([...one("SELECT CASE WHEN ssn LIKE '1%' THEN 1 END FROM customers").predicates]).toEqual([SSN]);
    expect([...one('SELECT 1 / (length(email) - 5) FROM customers').predicates]).toEqual([EMAIL]);
    expect([...one('SELECT upper(email), email || ssn FROM customers').predicates]).toEqual([]);
    expect([...one('SELECT id FROM customers WHERE id IN (SELECT customer_id FROM orders WHERE note IS NULL)').predicates].sort()).toEqual(['100.1', '200.2', '200.3']);
  });

  it('sinks: laundering into tables, views, COPY, notifications and settings', () => {
    const sink = (sql: string) => Object.fromEntries(one(sql).sinks);
    expect(sink('CREATE TABLE t AS SELECT upper(email) FROM customers')).toEqual({ [EMAIL]: 'CREATE TABLE AS' });
    expect(sink('SELECT email INTO t FROM customers')).toEqual({ [EMAIL]: 'SELECT INTO' });
    expect(sink('INSERT INTO orders (note) SELECT ssn FROM customers')).toEqual({ [SSN]: 'INSERT ... SELECT' });
    expect(sink('UPDATE orders o SET note = c.email FROM customers c')).toEqual({ [EMAIL]: 'UPDATE ... SET' });
    expect(sink('UPDATE customers SET email = lower(email)')).toEqual({});
    expect(sink('CREATE VIEW vv AS SELECT ssn FROM customers')).toEqual({ [SSN]: 'CREATE VIEW' });
    expect(Object.keys(sink('COPY customers TO STDOUT')).sort()).toEqual(['100.1', EMAIL, SSN]);
    expect(Object.keys(sink('COPY customers (ssn) TO STDOUT'))).toEqual([SSN]);
    expect(sink('COPY (SELECT contact FROM v) TO STDOUT')).toEqual({ [EMAIL]: 'COPY TO' });
    expect(sink('COPY customers FROM STDIN')).toEqual({});
    expect(sink("SELECT pg_notify('c', email) FROM customers")).toEqual({ [EMAIL]: 'pg_notify()' });
    expect(Object.keys(sink('ALTER TABLE customers RENAME COLUMN email TO e'))).toContain(EMAIL);
    expect(sink('LOCK customers')).toEqual({});
    expect(Object.keys(sink("CREATE FUNCTION f() RETURNS text LANGUAGE sql AS 'SELECT email FROM customers'"))).toContain(EMAIL);
  });

  it('echoing casts, user functions and operators, opaque constructs', () => {
    expect([...one('SELECT email::int FROM customers').echoes]).toEqual([EMAIL]);
    expect([...one('SELECT email::text, c::text FROM customers c').echoes]).toEqual([]);
    expect(one('SELECT * FROM leak()').userFunctions).toEqual(['leak']);
    expect(one('SELECT public.upper(email) FROM customers').userFunctions).toEqual(['public.upper']);
    expect(one('SELECT nosuchfn(1)').userFunctions).toEqual(['nosuchfn']);
    expect(one("SELECT 1 FROM customers WHERE email === 'x'").userFunctions).toEqual(['operator ===']);
    expect(one('SELECT upper(email) FROM customers').userFunctions).toEqual([]);
    expect(one("DO $$ BEGIN END $$").opaque).toEqual(['DO block']);
    expect(one("CREATE FUNCTION g() RETURNS int LANGUAGE plpgsql AS 'BEGIN RETURN 1; END'").opaque).toEqual(['function body in language plpgsql']);
    expect(one('SELECT * FROM pg_catalog.pg_stats').opaque).toEqual([]); // not in this hand-built catalog: unknown, not opaque
  });

  it('PREPARE, DECLARE, EXPLAIN and EXECUTE', () => {
    expect(outs(one('PREPARE p AS SELECT email FROM customers WHERE id = $1'))).toEqual([[EMAIL]]);
    expect(outs(one('DECLARE c CURSOR FOR SELECT ssn FROM customers'))).toEqual([[SSN]]);
    const e = one("EXPLAIN ANALYZE SELECT id FROM customers WHERE email = 'x'");
    expect(outs(e)).toEqual([[]]);
    expect([...e.predicates]).toEqual([EMAIL]);
    expect(one('EXECUTE p(1)').executes).toBe('p');
  });
});
