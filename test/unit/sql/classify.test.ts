import { beforeAll, describe, expect, it } from 'vitest';
import { classify } from '../../../src/sql/classify.js';
import { loadParser } from '../../../src/sql/parser.js';
import type { ClassifiedStatement, HiddenSql, RelationRef, StatementClass } from '../../../src/sql/types.js';

beforeAll(loadParser);

interface Case {
  sql: string;
  class: StatementClass;
  secondary?: StatementClass[];
  /** Relations as 'name' or 'schema.name'; a part containing a dot is written quoted. */
  reads?: string[];
  writes?: string[];
  functions?: string[];
  hidden?: HiddenSql[];
  settings?: [string, string | null][];
  more?: Partial<ClassifiedStatement>;
}

const q = (part: string): string => (part.includes('.') ? `"${part}"` : part);
const rel = (r: RelationRef): string => (r.schema === null ? q(r.name) : `${q(r.schema)}.${q(r.name)}`);

// prettier-ignore
const CASES: Case[] = [
  // Everyday statements, including the 13 that pgsql-ast-parser could not parse (FACTS.md)
  { sql: 'SELECT id, email FROM users WHERE id = 1', class: 'read', reads: ['users'] },
  { sql: 'SELECT abalance FROM pgbench_accounts WHERE aid = 123;', class: 'read', reads: ['pgbench_accounts'] },
  { sql: "INSERT INTO users (email) VALUES ('a@b.c')", class: 'write', writes: ['users'] },
  { sql: "INSERT INTO users (email) VALUES ('a@b.c') RETURNING id", class: 'write', writes: ['users'] },
  { sql: 'UPDATE users SET email = lower(email) RETURNING *', class: 'write', reads: ['users'], writes: ['users'], functions: ['lower'] },
  { sql: 'UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = 5', class: 'write', writes: ['pgbench_accounts'] },
  { sql: 'DELETE FROM sessions WHERE expires < now()', class: 'write', writes: ['sessions'], functions: ['now'] },
  { sql: 'BEGIN', class: 'transaction' },
  { sql: 'COMMIT', class: 'transaction' },
  { sql: 'ROLLBACK', class: 'transaction' },
  { sql: 'SAVEPOINT s1', class: 'transaction' },
  { sql: 'RELEASE SAVEPOINT s1', class: 'transaction' },
  { sql: 'ROLLBACK TO SAVEPOINT s1', class: 'transaction' },
  { sql: "PREPARE TRANSACTION 'tx1'", class: 'transaction' },
  { sql: "COMMIT PREPARED 'tx1'", class: 'transaction' },
  { sql: 'COPY users FROM STDIN', class: 'copy_in', writes: ['users'] },
  { sql: 'COPY users TO STDOUT WITH (FORMAT csv)', class: 'copy_out', reads: ['users'] },
  { sql: 'COPY (SELECT email FROM users WHERE id > 10) TO STDOUT', class: 'copy_out', reads: ['users'] },
  { sql: "COPY users FROM '/tmp/users.csv'", class: 'copy_in', writes: ['users'], hidden: ['server_file'] },
  { sql: "COPY users TO PROGRAM 'gzip > /tmp/u.gz'", class: 'copy_out', reads: ['users'], hidden: ['copy_program'] },
  { sql: "COPY users FROM PROGRAM 'curl http://x'", class: 'copy_in', writes: ['users'], hidden: ['copy_program'] },
  { sql: 'COPY (DELETE FROM t RETURNING *) TO STDOUT', class: 'write', secondary: ['copy_out'], reads: ['t'], writes: ['t'] },
  { sql: 'DECLARE c CURSOR FOR SELECT * FROM users', class: 'utility',
    more: { declare: { cursor: 'c', statement: { class: 'read', kind: 'SelectStmt', text: 'DECLARE c CURSOR FOR SELECT * FROM users', reads: [{ schema: null, name: 'users' }], writes: [], functions: [], hidden: [], settings: [] } } } },
  { sql: 'FETCH 10 FROM c', class: 'utility', more: { fetch: { cursor: 'c' } } },
  { sql: 'MOVE LAST IN c', class: 'utility', more: { fetch: { cursor: 'c' } } },
  { sql: 'CLOSE c', class: 'utility', more: { close: { cursor: 'c' } } },
  { sql: 'CLOSE ALL', class: 'utility', more: { close: { cursor: '*' } } },
  { sql: 'DECLARE h CURSOR WITH HOLD FOR SELECT 1', class: 'utility', more: { declare: { cursor: 'h', hold: true, statement: expect.anything() } } },
  { sql: 'DECLARE n CURSOR FOR SELECT 1', class: 'utility', more: { declare: { cursor: 'n', hold: false, statement: expect.anything() } } },
  // pg_settings' rule turns the UPDATE into set_config(): a setting change named only in the data.
  { sql: "UPDATE pg_settings SET setting = '0' WHERE name = 'statement_timeout'", class: 'write', secondary: ['session'], writes: ['pg_settings'], settings: [['*', null]], more: { settings: [{ name: '*', value: null, dynamic: true }] } },
  { sql: "UPDATE pg_catalog.pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings'", class: 'write', secondary: ['session'], writes: ['pg_catalog.pg_settings'], settings: [['*', null]], more: { settings: [{ name: '*', value: null, dynamic: true }] } },
  { sql: 'SET ROLE admin', class: 'session', settings: [['role', 'admin']] },
  { sql: 'RESET ROLE', class: 'session', settings: [['role', null]] },
  { sql: 'SET SESSION AUTHORIZATION bob', class: 'session', settings: [['session_authorization', 'bob']] },
  { sql: 'SET search_path = public, pg_catalog', class: 'session', settings: [['search_path', 'public, pg_catalog']] },
  { sql: 'SET LOCAL statement_timeout = 0', class: 'session', settings: [['statement_timeout', '0']] },
  { sql: 'set Standard_Conforming_Strings = off', class: 'session', settings: [['standard_conforming_strings', 'off']] },
  { sql: "SET client_encoding TO 'LATIN1'", class: 'session', settings: [['client_encoding', 'LATIN1']] },
  { sql: "SET NAMES 'SJIS'", class: 'session', settings: [['client_encoding', 'SJIS']] },
  { sql: 'SET TIME ZONE DEFAULT', class: 'session', settings: [['timezone', null]] },
  { sql: 'RESET ALL', class: 'session', settings: [['*', null]] },
  { sql: 'DISCARD ALL', class: 'session', settings: [['*', null]], more: { close: { cursor: '*' }, deallocate: { name: '*' } } },
  { sql: 'DISCARD PLANS', class: 'session' },
  { sql: 'SET TRANSACTION ISOLATION LEVEL SERIALIZABLE', class: 'transaction', settings: [['transaction_isolation', 'serializable']] },
  { sql: 'START TRANSACTION READ WRITE', class: 'transaction', settings: [['transaction_read_only', '0']] },
  { sql: 'SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE', class: 'session', settings: [['default_transaction_read_only', '0']] },
  { sql: 'SET CONSTRAINTS ALL DEFERRED', class: 'transaction' },
  { sql: 'SHOW search_path', class: 'read' },
  { sql: 'GRANT SELECT ON users TO bob', class: 'admin', reads: ['users'] },
  { sql: 'REVOKE ALL ON SCHEMA public FROM PUBLIC', class: 'admin' },
  { sql: "CREATE ROLE agent LOGIN PASSWORD 'x'", class: 'admin' },
  { sql: 'ALTER ROLE agent SUPERUSER', class: 'admin' },
  { sql: 'GRANT admin TO agent', class: 'admin' },
  { sql: "ALTER SYSTEM SET work_mem = '1GB'", class: 'admin', settings: [['work_mem', '1GB']] },
  { sql: 'VACUUM ANALYZE users', class: 'admin', reads: ['users'] },
  { sql: 'ANALYZE', class: 'admin' },
  { sql: 'CHECKPOINT', class: 'admin' },
  { sql: "LOAD 'auto_explain'", class: 'admin' },
  { sql: 'CREATE DATABASE d2', class: 'admin' },
  { sql: 'REINDEX TABLE users', class: 'ddl', reads: ['users'] },
  { sql: 'EXPLAIN ANALYZE SELECT * FROM users', class: 'read', reads: ['users'] },
  { sql: 'EXPLAIN ANALYZE DELETE FROM users', class: 'write', writes: ['users'] },
  { sql: 'EXPLAIN DELETE FROM users', class: 'read', reads: ['users'] },
  { sql: 'EXPLAIN (ANALYZE, BUFFERS) UPDATE t SET a = 1', class: 'write', writes: ['t'] },
  { sql: 'EXPLAIN (ANALYZE false) DELETE FROM t', class: 'read', reads: ['t'] },
  { sql: "EXPLAIN (ANALYZE 'on') DELETE FROM t", class: 'write', writes: ['t'] },
  { sql: 'EXPLAIN ANALYZE CREATE TABLE t2 AS SELECT * FROM t', class: 'write', secondary: ['ddl'], reads: ['t'], writes: ['t2'] },
  { sql: 'EXPLAIN ANALYZE EXECUTE q(1)', class: 'utility', more: { execute: { name: 'q' } } },
  { sql: 'CREATE TABLE t2 AS EXECUTE q(1)', class: 'write', secondary: ['ddl'], writes: ['t2'], more: { execute: { name: 'q' } } },
  { sql: 'LISTEN jobs', class: 'utility' },
  { sql: "NOTIFY jobs, 'payload'", class: 'utility' },
  { sql: 'UNLISTEN *', class: 'utility' },
  { sql: "SELECT pg_notify('jobs', 'x')", class: 'read', functions: ['pg_notify'] },
  { sql: 'SELECT * FROM users TABLESAMPLE SYSTEM (10)', class: 'read', reads: ['users'] },
  { sql: 'MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.a)',
    class: 'write', reads: ['s'], writes: ['t'] },
  { sql: "CREATE TEMP TABLE recent AS SELECT * FROM orders WHERE ts > now() - interval '1 day'",
    class: 'write', secondary: ['ddl'], reads: ['orders'], writes: ['recent'], functions: ['now'] },
  { sql: 'SELECT * INTO newt FROM t', class: 'write', secondary: ['ddl'], reads: ['t'], writes: ['newt'] },
  { sql: 'CREATE MATERIALIZED VIEW mv AS SELECT * FROM t', class: 'ddl', secondary: ['write'], reads: ['t'], writes: ['mv'] },

  // DDL
  { sql: 'CREATE TABLE t (id int PRIMARY KEY, u int REFERENCES users)', class: 'ddl', reads: ['t', 'users'] },
  { sql: 'CREATE TABLE t2 (LIKE t)', class: 'ddl', reads: ['t2', 't'] },
  { sql: 'ALTER TABLE t ADD COLUMN c text', class: 'ddl', reads: ['t'] },
  { sql: 'ALTER TABLE t RENAME TO u', class: 'ddl', reads: ['t'] },
  { sql: 'DROP TABLE s.t, u', class: 'ddl', reads: ['s.t', 'u'] },
  { sql: 'DROP EXTENSION dblink', class: 'admin' },
  { sql: 'CREATE EXTENSION dblink', class: 'admin' },
  { sql: "COMMENT ON TABLE t IS 'x'", class: 'ddl' },
  { sql: 'TRUNCATE t, s.u', class: 'write', writes: ['t', 's.u'] },
  { sql: 'LOCK TABLE t IN ACCESS EXCLUSIVE MODE', class: 'write', writes: ['t'] },
  { sql: 'CREATE INDEX i ON t (lower(email))', class: 'ddl', reads: ['t'], functions: ['lower'] },
  { sql: 'CREATE VIEW v AS SELECT * FROM secrets', class: 'ddl', reads: ['v', 'secrets'] },
  { sql: 'CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()', class: 'ddl', reads: ['t'] },
  // The DML in a rule is stored, not run: its target is a reference, not a write.
  { sql: 'CREATE RULE r AS ON INSERT TO t DO INSTEAD DELETE FROM u', class: 'ddl', reads: ['t', 'u'] },
  { sql: 'REFRESH MATERIALIZED VIEW mv', class: 'ddl', reads: ['mv'] },
  { sql: 'CLUSTER t USING i', class: 'ddl', reads: ['t'] },
  { sql: 'CREATE SCHEMA app', class: 'ddl' },
  { sql: 'DROP FUNCTION f(int)', class: 'ddl' },
  { sql: 'GRANT EXECUTE ON FUNCTION f(int) TO bob', class: 'admin' },
  { sql: 'ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO bob', class: 'admin' },
  { sql: 'CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw', class: 'admin' },
  { sql: "CREATE USER MAPPING FOR bob SERVER s OPTIONS (user 'x', password 'y')", class: 'admin' },

  // Constructs that hide SQL from the parser
  { sql: 'DO $$BEGIN DELETE FROM t; END$$', class: 'ddl', hidden: ['do_block'] },
  { sql: 'CREATE FUNCTION f() RETURNS int AS $$ SELECT 1 $$ LANGUAGE sql', class: 'ddl', hidden: ['function_body'] },
  { sql: 'CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC DELETE FROM t; END', class: 'ddl', reads: ['t'], hidden: ['function_body'] },
  { sql: 'CALL p(1)', class: 'write', functions: ['p'] },
  { sql: "SELECT * FROM dblink('host=x', 'SELECT secret FROM s') AS r(secret text)", class: 'read', functions: ['dblink'], hidden: ['dynamic_sql'] },
  { sql: "SELECT dblink_exec('conn', 'DROP TABLE t')", class: 'read', functions: ['dblink_exec'], hidden: ['dynamic_sql'] },
  { sql: "SELECT query_to_xml('SELECT * FROM secrets', true, true, '')", class: 'read', functions: ['query_to_xml'], hidden: ['dynamic_sql'] },
  { sql: "SELECT ext.dblink('c', 'q')", class: 'read', functions: ['ext.dblink'], hidden: ['dynamic_sql'] },
  { sql: "SELECT ts_stat('SELECT v FROM docs')", class: 'read', functions: ['ts_stat'], hidden: ['dynamic_sql'] },
  { sql: "SELECT pg_read_file('/etc/passwd')", class: 'read', functions: ['pg_read_file'] },
  { sql: "SELECT lo_export(1234, '/tmp/x'), pg_catalog.lo_import('/etc/passwd')", class: 'read', functions: ['lo_export', 'pg_catalog.lo_import'] },

  // SQL-level prepared statements
  { sql: 'PREPARE q(int) AS SELECT * FROM users WHERE id = $1', class: 'utility',
    more: { prepare: { name: 'q', statement: { class: 'read', kind: 'SelectStmt', text: 'PREPARE q(int) AS SELECT * FROM users WHERE id = $1', reads: [{ schema: null, name: 'users' }], writes: [], functions: [], hidden: [], settings: [] } } } },
  { sql: 'EXECUTE q(1)', class: 'utility', more: { execute: { name: 'q' } } },
  { sql: 'EXECUTE q', class: 'utility', more: { execute: { name: 'q' } } },
  { sql: "EXECUTE q(pg_read_file('/etc/passwd'))", class: 'utility', functions: ['pg_read_file'], more: { execute: { name: 'q' } } },
  { sql: 'DEALLOCATE q', class: 'utility', more: { deallocate: { name: 'q' } } },
  { sql: 'DEALLOCATE ALL', class: 'utility', more: { deallocate: { name: '*' } } },

  // CTEs: scope, shadowing, data-modifying
  { sql: 'WITH t AS (SELECT 1 AS a) SELECT * FROM t', class: 'read' },
  { sql: 'WITH t AS (SELECT * FROM t) SELECT * FROM t', class: 'read', reads: ['t'] },
  { sql: 'WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 10) SELECT * FROM r', class: 'read' },
  { sql: 'WITH x AS (SELECT 1) SELECT * FROM public.x', class: 'read', reads: ['public.x'] },
  { sql: 'WITH a AS (SELECT 1), b AS (SELECT * FROM a) SELECT * FROM b', class: 'read' },
  { sql: 'WITH b AS (SELECT * FROM a), a AS (SELECT 1) SELECT * FROM b', class: 'read', reads: ['a'] },
  { sql: 'SELECT * FROM (WITH x AS (SELECT 1) SELECT * FROM x) s, x', class: 'read', reads: ['x'] },
  { sql: '(WITH x AS (SELECT 1) SELECT * FROM x) UNION SELECT * FROM x', class: 'read', reads: ['x'] },
  { sql: 'WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d', class: 'write', reads: ['t'], writes: ['t'] },
  { sql: 'WITH d AS (DELETE FROM t WHERE old RETURNING *) INSERT INTO archive SELECT * FROM d', class: 'write', reads: ['t'], writes: ['t', 'archive'] },
  { sql: 'WITH archive AS (SELECT 1) INSERT INTO archive SELECT * FROM archive', class: 'write', writes: ['archive'] },

  // Sub-queries, LATERAL, functions in FROM, spellings
  { sql: 'SELECT * FROM users WHERE id IN (SELECT user_id FROM orders WHERE total > (SELECT avg(total) FROM orders))',
    class: 'read', reads: ['users', 'orders'], functions: ['avg'] },
  { sql: 'SELECT * FROM users u, LATERAL (SELECT * FROM orders o WHERE o.uid = u.id LIMIT 1) x', class: 'read', reads: ['users', 'orders'] },
  { sql: 'SELECT * FROM generate_series(1, 10) g JOIN pg_catalog.unnest(ARRAY[1, 2]) u ON true', class: 'read', functions: ['generate_series', 'pg_catalog.unnest'] },
  { sql: 'SELECT * FROM U&"d\\0061ta"', class: 'read', reads: ['data'] },
  { sql: 'SELECT * FROM "a.b"."c.d"', class: 'read', reads: ['"a.b"."c.d"'] },
  { sql: 'SELECT * FROM "Users"', class: 'read', reads: ['Users'] },
  { sql: 'SeLeCt * FrOm USERS', class: 'read', reads: ['users'] },
  { sql: "SELECT 'DROP TABLE t; --' FROM t1 /* ; DELETE FROM t2 */", class: 'read', reads: ['t1'] },
  { sql: 'SELECT $$; DROP TABLE t; $$', class: 'read' },
  { sql: "SELECT $tag$ ' $$ ; DELETE FROM x $tag$ FROM t", class: 'read', reads: ['t'] },
  { sql: "SELECT E'it\\'s; DROP TABLE t' FROM t3", class: 'read', reads: ['t3'] },
  { sql: "SELECT set_config('search_path', 'evil', false)", class: 'read', secondary: ['session'], functions: ['set_config'], settings: [['search_path', 'evil']] },
  { sql: "EXPLAIN SELECT set_config('role', 'admin', false)", class: 'read', secondary: ['session'], functions: ['set_config'], settings: [['role', 'admin']] },
  { sql: "ALTER TABLE t ADD COLUMN c text DEFAULT set_config('role', 'admin', false)", class: 'ddl', secondary: ['session'], reads: ['t'], functions: ['set_config'], settings: [['role', 'admin']] },
  { sql: 'SELECT * FROM t FOR UPDATE', class: 'write', reads: ['t'], writes: ['t'] },
  { sql: 'SELECT count(*) FILTER (WHERE x > 0) OVER (PARTITION BY y) FROM t', class: 'read', reads: ['t'], functions: ['count'] },
  { sql: 'SELECT a OPERATOR(pg_catalog.+) b FROM t', class: 'read', reads: ['t'] },
  { sql: 'VALUES (1), (2)', class: 'read' },
  { sql: 'TABLE users', class: 'read', reads: ['users'] },
  { sql: 'INSERT INTO t SELECT * FROM s ON CONFLICT (id) DO UPDATE SET a = excluded.a RETURNING *', class: 'write', reads: ['t', 's'], writes: ['t'] },
  { sql: 'UPDATE t SET a = s.a FROM s WHERE t.id = s.id', class: 'write', reads: ['s'], writes: ['t'] },
  { sql: 'DELETE FROM t USING s WHERE t.id = s.id', class: 'write', reads: ['s'], writes: ['t'] },
];

describe('classify: one statement each', () => {
  it('has the cases this suite promises', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(80);
  });

  it.each(CASES)('$sql', (c) => {
    const r = classify(c.sql, { cache: false });
    if (!r.ok) throw new Error(`refused: ${r.message}`);
    expect(r.statements).toHaveLength(1);
    const s = r.statements[0]!;
    expect({
      class: s.class,
      secondary: s.secondary ?? [],
      reads: s.reads.map(rel),
      writes: s.writes.map(rel),
      functions: s.functions,
      hidden: s.hidden,
      settings: s.settings.map((x) => [x.name, x.value]),
    }).toEqual({
      class: c.class,
      secondary: c.secondary ?? [],
      reads: c.reads ?? [],
      writes: c.writes ?? [],
      functions: c.functions ?? [],
      hidden: c.hidden ?? [],
      settings: c.settings ?? [],
    });
    if (c.more) expect(s).toMatchObject(c.more);
    expect(s.text).toBe(c.sql.replace(/;$/, ''));
  });
});

describe('classify: messages, texts and tags', () => {
  it('splits stacked statements, each with its own text', () => {
    const r = classify('SELECT 1; DROP TABLE t', { cache: false });
    expect(r.ok && r.statements.map((s) => [s.class, s.kind, s.text])).toEqual([
      ['read', 'SelectStmt', 'SELECT 1'],
      ['ddl', 'DropStmt', 'DROP TABLE t'],
    ]);
  });

  it('slices texts by character, not by UTF-8 byte, around multi-byte text', () => {
    const ok = classify("SELECT 'é€😀' FROM t;\n  /* ü */ DELETE FROM \"ü\"; SELECT 2", { cache: false });
    expect(ok.ok && ok.statements.map((s) => s.text)).toEqual(["SELECT 'é€😀' FROM t", '/* ü */ DELETE FROM "ü"', 'SELECT 2']);
    expect(ok.ok && ok.statements[1]!.writes).toEqual([{ schema: null, name: 'ü' }]);
  });

  it('keeps dots inside quoted identifiers as part of the name', () => {
    const r = classify('SELECT * FROM "a.b"."c.d", "e.f"', { cache: false });
    expect(r.ok && r.statements[0]!.reads).toEqual([
      { schema: 'a.b', name: 'c.d' },
      { schema: null, name: 'e.f' },
    ]);
  });

  it('marks settings that end with the transaction as local: SET LOCAL, set_config(..., true) or a run-time is_local', () => {
    const settings = (sql: string) => { const r = classify(sql, { cache: false }); return r.ok ? r.statements[0]!.settings : null; };
    expect(settings('SET LOCAL search_path = a')).toEqual([{ name: 'search_path', value: 'a', local: true }]);
    expect(settings('SET search_path = a')).toEqual([{ name: 'search_path', value: 'a' }]);
    expect(settings("SELECT set_config('search_path', 'a', false)")).toEqual([{ name: 'search_path', value: 'a' }]);
    expect(settings("SELECT set_config('search_path', 'a', true)")).toEqual([{ name: 'search_path', value: 'a', local: true }]);
    expect(settings("SELECT set_config('search_path', 'a', $1)")).toEqual([{ name: 'search_path', value: 'a', local: true }]);
  });

  it('reports set_config with a name or value computed at run time as dynamic', () => {
    const r = classify('SELECT pg_catalog.set_config($1, $2, true)', { cache: false });
    expect(r.ok && r.statements[0]!.settings).toEqual([{ name: '*', value: null, dynamic: true, local: true }]);
    const v = classify("SELECT set_config('role', (SELECT 'admin'), false)", { cache: false });
    expect(v.ok && v.statements[0]!.settings).toEqual([{ name: 'role', value: null, dynamic: true }]);
  });

  it('answers an empty query string, whitespace, comments and bare semicolons with zero statements', () => {
    for (const text of ['', '  \n', '-- nothing', '/* nothing */', ';;']) {
      expect(classify(text, { cache: false })).toEqual({ ok: true, statements: [], tags: {} });
    }
  });

  it('refuses a syntax error with PostgreSQL\'s message and 1-based character position', () => {
    const r = classify("SELECT 'é€' FROM t; SELEC 2", { cache: false });
    expect(r).toMatchObject({ ok: false, code: '42601', message: 'syntax error at or near "SELEC"', position: 21 });
  });

  it('refuses the whole message when one statement cannot be parsed', () => {
    expect(classify('SELECT 1; DROP TABLE t; SELECT FROM FROM', { cache: false })).toMatchObject({ ok: false, code: '42601' });
  });

  it('reads sqlcommenter tags from comments found by the real lexer', () => {
    const r = classify("/*tool='psql',run='r%201'*/ SELECT 1 -- step='a%27b'", { cache: false });
    expect(r.ok && r.tags).toEqual({ tool: 'psql', run: 'r 1', step: "a'b" });
    const meta = classify("SELECT 1 /*app='x\\'y',traceparent='00-ab-cd-01'*/", { cache: false });
    expect(meta.ok && meta.tags).toEqual({ app: "x'y", traceparent: '00-ab-cd-01' });
  });

  it('does not take tags from strings, dollar quotes or ordinary comments', () => {
    const r = classify("SELECT '/*tool=''evil''*/', $$ -- run='x' $$ /* a plain comment */", { cache: false });
    expect(r.ok && r.tags).toEqual({});
  });
});
