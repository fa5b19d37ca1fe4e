/**
 * Policy decisions against a real PostgreSQL, through Sluice: allowed statements run, refused ones change nothing
 * (checked with a superuser connection), every refusal is SQLSTATE 42501 naming class, object and rule, and the
 * audit row records the decision and the rule. Refusals are sent to the server as a raising DO block, so the
 * transaction effects are PostgreSQL's own.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PolicyInput } from '../../../src/policy/model.js';
import {
  auditRow, count, expectAudit, lastAudit, expectRefusal, query, rawThroughSluice, readReady, refused, rejection, scalar, startPolicyEnv, summary, withPg,
  backendAlive, type PolicyEnv,
} from './helpers.js';

const POLICY: PolicyInput = {
  rules: [
    {
      name: 'test-rules',
      match: { groups: ['test'] },
      allow: ['read', 'transaction', 'session', 'utility'],
      review: ['write'],
      deny: ['ddl'],
      tables: { 'public.secrets': 'deny', 'vault.ledger': 'deny' },
      functions: { pg_sleep: 'deny' },
    },
    {
      name: 'writers',
      match: { groups: ['writers'] },
      allow: ['read', 'write', 'transaction', 'session'],
      tables: { 'public.secrets': 'deny' },
      limits: { statementTimeoutMs: 60_000 },
    },
  ],
};

const SETUP = `
  CREATE ROLE other_role; GRANT other_role TO app;
  -- What Sluice must refuse would succeed directly: app may read/write server files, signal its own backends.
  GRANT pg_read_server_files, pg_write_server_files, pg_signal_backend TO app;
  GRANT EXECUTE ON FUNCTION pg_read_file(text) TO app;
  GRANT EXECUTE ON FUNCTION lo_export(oid, text) TO app;
  SELECT lo_from_bytea(4242, 'large object');
  ALTER LARGE OBJECT 4242 OWNER TO app;
  CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2), (3);
  CREATE TABLE secrets (s text); INSERT INTO secrets VALUES ('top secret');
  CREATE SCHEMA vault AUTHORIZATION app; CREATE TABLE vault.ledger (n int); INSERT INTO vault.ledger VALUES (42);
  CREATE SCHEMA shadow AUTHORIZATION app; CREATE TABLE shadow.secrets (s text); INSERT INTO shadow.secrets VALUES ('harmless');
  ALTER TABLE t OWNER TO app; ALTER TABLE secrets OWNER TO app; ALTER TABLE vault.ledger OWNER TO app; ALTER TABLE shadow.secrets OWNER TO app;
`;

let env: PolicyEnv;
let writerUrl: string;
beforeAll(async () => {
  env = await startPolicyEnv(POLICY, SETUP);
  const { secret } = env.sluice.broker.keys.add('writer-bot', { groups: ['writers'] });
  writerUrl = env.sluice.url({ user: 'writer-bot', password: secret });
});
afterAll(async () => {
  await env?.stop();
});

const agent = <T>(fn: (c: pg.Client) => Promise<T>): Promise<T> => withPg(env.sluice.url(), fn);

describe('allow, review, deny by class', () => {
  it('runs an allowed SELECT and audits it as allowed by the rule', async () => {
    const sql = 'SELECT count(*)::int AS n FROM t';
    const r = await agent((c) => c.query(sql));
    expect(r.rows).toEqual([{ n: 3 }]);
    expectAudit(env.sluice, sql, 'allow', 'test-rules');
  });

  it('sends an INSERT to review; denied by the operator, it adds no row', async () => {
    const err = await agent((c) => refused(env.sluice, c, 'INSERT INTO t VALUES (99)', { rule: 'test-rules', cls: 'write', object: 't', decision: 'review' }));
    expect(err.message).toContain('approval');
    expect(await count(env, 't')).toBe(3);
  });

  it('refuses CREATE TABLE (ddl) and creates nothing', async () => {
    await agent((c) => refused(env.sluice, c, 'CREATE TABLE made_here (a int)', { rule: 'test-rules', cls: 'ddl', object: 'made_here' }));
    expect(await scalar(env, "SELECT to_regclass('public.made_here')")).toBeNull();
  });

  it('refuses a stacked Query whole: nothing deleted, and the allowed SELECT returns nothing', async () => {
    const sql = 'SELECT 1 AS marker; DELETE FROM t';
    const c = await rawThroughSluice(env.sluice);
    try {
      c.write(query(sql));
      const frames = await readReady(c);
      // No RowDescription/DataRow/CommandComplete of the SELECT: only the refusal, then ReadyForQuery.
      expect(summary(frames)).toEqual(['E:42501', 'Z:I']);
    } finally {
      c.destroy();
    }
    expect(await count(env, 't')).toBe(3);
    expectAudit(env.sluice, sql, 'deny', 'test-rules');
  });

  it('refuses a data-modifying CTE as a write', async () => {
    await agent((c) => refused(env.sluice, c, 'WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d', { rule: 'test-rules', cls: 'write', object: 't', decision: 'review' }));
    expect(await count(env, 't')).toBe(3);
  });

  it('refuses EXPLAIN ANALYZE of a DELETE (it runs it); plain EXPLAIN only plans and is a read', async () => {
    await agent((c) => refused(env.sluice, c, 'EXPLAIN ANALYZE DELETE FROM t', { rule: 'test-rules', cls: 'write', object: 't', decision: 'review' }));
    await agent((c) => refused(env.sluice, c, 'EXPLAIN (ANALYZE, FORMAT JSON) DELETE FROM t WHERE id = 1', { rule: 'test-rules', cls: 'write', object: 't', decision: 'review' }));
    const plan = await agent((c) => c.query('EXPLAIN DELETE FROM t'));
    expect(plan.rows.map((r: Record<string, string>) => r['QUERY PLAN']).join('\n')).toMatch(/Delete on t/);
    expectAudit(env.sluice, 'EXPLAIN DELETE FROM t', 'allow', 'test-rules');
    expect(await count(env, 't')).toBe(3);
  });
});

describe('spellings of a denied table', () => {
  const spellings = [
    'SeLeCt * FrOm "public"."secrets"',
    'select * from U&"secr\\0065ts"',
    '/* */ select/**/1 from secrets',
    'SELECT $$x$$, * FROM secrets',
    'SELECT * FROM app.public.secrets',
    'TABLE secrets',
    'WITH secrets AS (SELECT * FROM secrets) SELECT * FROM secrets',
    'SELECT * FROM (WITH secrets AS (SELECT 1) SELECT * FROM secrets) a, secrets',
    'SELECT * FROM t WHERE EXISTS (SELECT FROM public.SECRETS)',
  ];
  it.each(spellings)('refuses %s', async (sql) => {
    const err = await agent((c) => refused(env.sluice, c, sql, { rule: 'test-rules', cls: 'read' }));
    expect(err.message).toMatch(/ on (public\.)?secrets /);
  });

  it('allows what only looks like it: a CTE named secrets, a comment, a string, a differently-cased quoted name', async () => {
    await env.admin.query('CREATE TABLE IF NOT EXISTS "Secrets" (s text); ALTER TABLE "Secrets" OWNER TO app');
    await agent(async (c) => {
      expect((await c.query('WITH secrets AS (SELECT 7 AS s) SELECT s FROM secrets')).rows).toEqual([{ s: 7 }]);
      expect((await c.query('SELECT 1 AS one /* ; DELETE FROM t */')).rows).toEqual([{ one: 1 }]);
      expect((await c.query("SELECT ';DELETE FROM secrets' AS s")).rows).toEqual([{ s: ';DELETE FROM secrets' }]);
      expect((await c.query('SELECT * FROM "Secrets"')).rows).toEqual([]);
    });
    expect(await count(env, 't')).toBe(3);
  });

  it('refuses the denied function however it is spelled', async () => {
    for (const sql of ['SELECT pg_sleep(0)', 'SELECT PG_CATALOG."pg_sleep"(0)', 'SELECT * FROM pg_sleep(0)']) {
      const err = await agent((c) => refused(env.sluice, c, sql, { rule: 'test-rules', cls: 'read' }));
      expect(err.message).toMatch(/ on (pg_catalog\.)?pg_sleep\(\) /);
    }
  });
});

describe('hidden SQL and dangerous functions', () => {
  it('refuses a DO block (its body is hidden from the parser) and it deletes nothing', async () => {
    await agent((c) => refused(env.sluice, c, 'DO $$BEGIN DELETE FROM t; END$$', { rule: 'builtin:hidden-sql', cls: 'ddl', object: 'DO block' }));
    expect(await count(env, 't')).toBe(3);
  });

  it('refuses CREATE FUNCTION and creates nothing', async () => {
    await agent((c) => refused(env.sluice, c, "CREATE FUNCTION wipe() RETURNS void LANGUAGE sql AS 'DELETE FROM t'", { rule: 'builtin:hidden-sql', cls: 'ddl', object: 'function body' }));
    expect(Number(await scalar(env, "SELECT count(*) FROM pg_proc WHERE proname = 'wipe'"))).toBe(0);
  });

  it('refuses query_to_xml, which runs SQL text the parser cannot see', async () => {
    await agent((c) => refused(env.sluice, c, "SELECT query_to_xml('DELETE FROM t RETURNING 1', false, false, '')", { rule: 'builtin:hidden-sql', cls: 'read', object: 'dynamic SQL' }));
    expect(await count(env, 't')).toBe(3);
  });

  it('refuses pg_read_file and lo_export (file access) although the role could run them', async () => {
    const target = join(env.cluster.socketDir, 'exported-by-agent');
    await agent(async (c) => {
      await refused(env.sluice, c, "SELECT pg_read_file('/etc/hostname')", { rule: 'builtin:file-access', cls: 'read', object: 'pg_read_file()' });
      await refused(env.sluice, c, `SELECT lo_export(4242, '${target}')`, { rule: 'builtin:file-access', cls: 'read', object: 'lo_export()' });
    });
    expect(existsSync(target)).toBe(false);
    // The role really could: the refusal is Sluice's, not the server's.
    await withPg(env.cluster.url('app', env.cluster.roles.app.password, 'app'), (c) => c.query("SELECT pg_read_file('/etc/hostname')"));
  });

  it('refuses pg_terminate_backend; the other session lives', async () => {
    await withPg(env.cluster.url('app', env.cluster.roles.app.password, 'app'), async (victim) => {
      const pid = (await victim.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
      await agent((c) => refused(env.sluice, c, `SELECT pg_terminate_backend(${pid})`, { rule: 'builtin:backend-signals', cls: 'read', object: 'pg_terminate_backend()' }));
      expect(await backendAlive(env, pid)).toBe(true);
      expect((await victim.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    });
  });

  it('refuses role changes: set_config(role), SET ROLE, SET SESSION AUTHORIZATION; the session keeps role app', async () => {
    await agent(async (c) => {
      await refused(env.sluice, c, "SELECT set_config('role', 'other_role', false)", { rule: 'builtin:role-switch', cls: 'read', object: 'SET role' });
      await refused(env.sluice, c, "SELECT set_config(E'rol\\x65', 'other_role', false)", { rule: 'builtin:role-switch', object: 'SET role' });
      await refused(env.sluice, c, 'SET ROLE other_role', { rule: 'builtin:role-switch', cls: 'session', object: 'SET role' });
      await refused(env.sluice, c, 'SET SESSION AUTHORIZATION other_role', { rule: 'builtin:role-switch', cls: 'session', object: 'SET session_authorization' });
      expect((await c.query('SELECT current_user AS u, session_user AS s')).rows).toEqual([{ u: 'app', s: 'app' }]);
    });
  });
});

describe('session settings', () => {
  it('allows SET search_path; unqualified names are then resolved through it, as the server does', async () => {
    await agent(async (c) => {
      await c.query('SET search_path = shadow, public');
      expectAudit(env.sluice, 'SET search_path = shadow, public', 'allow', 'test-rules');
      expect((await c.query('SHOW search_path')).rows).toEqual([{ search_path: 'shadow, public' }]);
      expect((await c.query('SELECT count(*)::int AS n FROM t')).rows).toEqual([{ n: 3 }]);
      // `secrets` is shadow.secrets on the server now, and in Sluice's decision: the public.secrets entry does not apply.
      expect((await c.query('SELECT s FROM secrets')).rows).toEqual([{ s: 'harmless' }]);
      expect(lastAudit(env.sluice, 'SELECT s FROM secrets').objects).toEqual(['r:shadow.secrets']);
      await c.query('SET search_path = vault');
      // `ledger` resolves to the denied vault.ledger: refused, named as the server resolves it.
      await refused(env.sluice, c, 'SELECT n FROM ledger', { rule: 'test-rules', cls: 'read', object: 'vault.ledger' });
      await c.query('RESET search_path');
      await refused(env.sluice, c, 'SELECT s FROM secrets', { rule: 'test-rules', cls: 'read', object: 'public.secrets' });
    });
  });

  it('refuses changes to the pinned settings (SET and set_config); they stay as pinned', async () => {
    await agent(async (c) => {
      await refused(env.sluice, c, 'SET standard_conforming_strings = off', { rule: 'builtin:pinned-settings', cls: 'session', object: 'SET standard_conforming_strings' });
      await refused(env.sluice, c, "SELECT set_config('client_encoding', 'LATIN1', false)", { rule: 'builtin:pinned-settings', cls: 'read', object: 'SET client_encoding' });
      await refused(env.sluice, c, "SET NAMES 'LATIN1'", { rule: 'builtin:pinned-settings', cls: 'session', object: 'SET client_encoding' });
      await refused(env.sluice, c, "SELECT set_config(lower('CLIENT_ENCODING'), 'LATIN1', false)", { rule: 'builtin:pinned-settings', object: 'set_config() of a setting named at run time' });
      const r = await c.query('SELECT current_setting($1) AS scs, current_setting($2) AS enc', ['standard_conforming_strings', 'client_encoding']);
      expect(r.rows).toEqual([{ scs: 'on', enc: 'UTF8' }]);
    });
  });

  // UPDATE pg_settings runs set_config() through the view's rule, so it changes a setting like SET does.
  it('refuses UPDATE pg_settings of a pinned setting even where writes are allowed', async () => {
    await withPg(writerUrl, async (c) => {
      const sql = "UPDATE pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings'";
      const err = await rejection(c.query(sql));
      expectRefusal(err, { rule: 'builtin:pinned-settings' });
      expect((await c.query('SHOW standard_conforming_strings')).rows).toEqual([{ standard_conforming_strings: 'on' }]);
    });
  });

  it('refuses UPDATE pg_settings that would lift the statement_timeout ceiling (SET is refused)', async () => {
    await withPg(writerUrl, async (c) => {
      expect((await c.query('SHOW statement_timeout')).rows).toEqual([{ statement_timeout: '1min' }]);
      await refused(env.sluice, c, 'SET statement_timeout = 0', { rule: 'writers', cls: 'session', object: 'SET statement_timeout' });
      const sql = "UPDATE pg_settings SET setting = '0' WHERE name = 'statement_timeout'";
      const err = await rejection(c.query(sql));
      expect([err.code, err.message]).toEqual(['42501', expect.stringMatching(/^Sluice policy refuses .*\(rule "[^"]+"\)$/)]);
      expect(auditRow(env.sluice, sql).decision).toBe('deny');
      expect((await c.query('SHOW statement_timeout')).rows).toEqual([{ statement_timeout: '1min' }]);
    });
  });
});

describe('transactions and the connection after a refusal', () => {
  it('a refusal inside BEGIN fails the transaction exactly as an error does', async () => {
    const c = await rawThroughSluice(env.sluice);
    try {
      const step = async (sql: string) => {
        c.write(query(sql));
        return summary(await readReady(c));
      };
      expect(await step('BEGIN')).toEqual(['C:BEGIN', 'Z:T']);
      expect(await step('INSERT INTO t VALUES (50)')).toEqual(['E:42501', 'Z:E']);
      expect(await step('SELECT 1')).toEqual(['E:25P02', 'Z:E']);
      expect(await step('ROLLBACK')).toEqual(['C:ROLLBACK', 'Z:I']);
      expect(await step('SELECT 2')).toEqual(['T', 'D:2', 'C:SELECT 1', 'Z:I']);
    } finally {
      c.destroy();
    }
    expect(await count(env, 't')).toBe(3);
  });

  it('work done before the refusal in the same transaction is rolled back', async () => {
    await withPg(writerUrl, async (c) => {
      await c.query('BEGIN');
      await c.query('INSERT INTO t VALUES (60)');
      const err = await rejection(c.query('DELETE FROM secrets'));
      expectRefusal(err, { rule: 'writers', cls: 'write', object: 'secrets' });
      expect((await rejection(c.query('SELECT 1'))).code).toBe('25P02');
      await c.query('ROLLBACK');
    });
    expect(await count(env, 't')).toBe(3);
    expect(await count(env, 'secrets')).toBe(1);
  });

  it('in autocommit the same connection stays usable after refusals', async () => {
    await agent(async (c) => {
      const pid = (await c.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
      await refused(env.sluice, c, 'DELETE FROM t', { rule: 'test-rules', cls: 'write', object: 't', decision: 'review' });
      await refused(env.sluice, c, 'DROP TABLE t', { rule: 'test-rules', cls: 'ddl', object: 't' });
      const r = await c.query('SELECT pg_backend_pid() AS pid, count(*)::int AS n FROM t');
      expect(r.rows).toEqual([{ pid, n: 3 }]);
    });
    expect(await count(env, 't')).toBe(3);
  });
});
