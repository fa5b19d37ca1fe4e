/**
 * Issue 4 "Done means": masked columns hold canary strings; each bypass attempt below goes through a real client
 * (node-postgres extended protocol, psql, postgres.js, a raw-frame client) and a recording tap between it and
 * Sluice. No canary byte string may reach the client in any frame, nor the audit database; allowed-but-masked
 * queries still return their unmasked columns as they are.
 */
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { psql } from '../../integration/clients/util.js';
import { auditBytes, canariesIn, expectNoCanary, startMaskEnv, type MaskEnv } from './env.js';

let env: MaskEnv;
let client: pg.Client;

// A CHECK that an UPDATE can break: the server's "Failing row contains (...)" then quotes the masked columns.
const EXTRA_SQL = "ALTER TABLE customers ADD CONSTRAINT short_name CHECK (length(name) < 20);";

beforeAll(async () => {
  env = await startMaskEnv(undefined, EXTRA_SQL);
  client = new pg.Client({ connectionString: env.url() });
  client.on('error', () => {});
  await client.connect();
}, 60_000);
afterAll(async () => {
  await client?.end().catch(() => {});
  await env?.stop();
});

/** Runs `fn`, then checks that none of the bytes the tap recorded meanwhile holds a canary. */
async function attempt<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const from = env.tap.bytes().length;
  const out = await fn();
  // Let the last frames cross the tap.
  await new Promise((r) => setTimeout(r, 20));
  expectNoCanary(env.tap.bytes().subarray(from), what);
  return out;
}

const extended = (text: string, values: unknown[] = []) => client.query({ text, values, queryMode: 'extended' } as pg.QueryConfig);
const refused = async (p: Promise<unknown>): Promise<pg.DatabaseError> => {
  try {
    await p;
  } catch (e) {
    return e as pg.DatabaseError;
  }
  throw new Error('expected a refusal, but the statement ran');
};

/** Allowed and masked: [name, sql, check of the rows]. */
const MASKED: [string, string, (rows: Record<string, unknown>[]) => void][] = [
  ['plain column (email method)', 'SELECT id, email FROM customers ORDER BY id', (r) => expect(r).toEqual([{ id: 1, email: '***@example.com' }, { id: 2, email: '***@example.org' }])],
  ['alias', 'SELECT email AS x, id FROM customers ORDER BY id', (r) => expect(r.map((x) => x.id)).toEqual([1, 2])],
  ['no-op cast keeps the method, another cast is derived', 'SELECT email::text AS e, ssn AS s, ssn::text AS v FROM customers ORDER BY id', (r) => {
    expect(r[0]!.e).toBe('***@example.com');
    expect(r[0]!.s).toMatch(/^\*+8841$/);
    expect(r[0]!.v).toBe('***');
  }],
  ['function over the column', 'SELECT upper(email) AS u, lower(ssn) AS l FROM customers', (r) => expect(r[0]!.u).toBe('***')],
  ['concatenation', "SELECT 'x' || email || 'y' AS c FROM customers", () => {}],
  ['aggregates', "SELECT string_agg(email, ',') AS a, array_agg(ssn) AS m, count(*)::int AS n FROM customers", (r) => expect(r[0]!.n).toBe(2)],
  ['row_to_json', 'SELECT row_to_json(c) AS j FROM customers c', () => {}],
  ['to_jsonb / json_agg', 'SELECT to_jsonb(c.*) AS a, (SELECT json_agg(d) FROM customers d) AS b FROM customers c', () => {}],
  ['whole-row cast', 'SELECT c::text AS t FROM customers c', () => {}],
  ['whole-row reference', 'SELECT c AS r FROM customers c', () => {}],
  ['jsonb_build_object and format', "SELECT jsonb_build_object('e', email) AS j, format('%s', ssn) AS f FROM customers", () => {}],
  ['star keeps unmasked columns', 'SELECT * FROM customers ORDER BY id', (r) => expect(r.map((x) => x.id)).toEqual([1, 2])],
  ['view', 'SELECT * FROM v_customers ORDER BY id', (r) => expect(r[0]!.id).toBe(1)],
  ['nested view', 'SELECT contact FROM v_contacts', () => {}],
  ['partitioned parent (rule on the partition)', 'SELECT * FROM events', (r) => expect(r[0]!.payload).toBe('***')],
  ['partition itself', 'SELECT payload FROM events_2024', () => {}],
  ['inheritance parent', 'SELECT * FROM base ORDER BY id', (r) => expect(r.map((x) => x.id)).toEqual([1, 2])],
  ['inheritance child (rule on the parent)', 'SELECT secret FROM child', (r) => expect(String(r[0]!.secret)).toMatch(/^[0-9a-f]{32}$/)],
  ['CTE', 'WITH x AS (SELECT email AS e FROM customers) SELECT e FROM x', () => {}],
  ['recursive CTE', 'WITH RECURSIVE r(n, e) AS (SELECT 1, email FROM customers UNION ALL SELECT n + 1, e FROM r WHERE n < 2) SELECT e FROM r', () => {}],
  ['FROM subquery', 'SELECT s.z FROM (SELECT email AS z FROM customers) s', () => {}],
  ['scalar subquery', 'SELECT (SELECT email FROM customers WHERE id = 1) AS e', () => {}],
  ['ARRAY subquery', 'SELECT ARRAY(SELECT ssn FROM customers) AS a', () => {}],
  ['UNION', 'SELECT name FROM customers UNION ALL SELECT email FROM customers', () => {}],
  ['UNION, second branch', "SELECT 'a' AS x UNION SELECT email FROM customers", () => {}],
  ['JOIN USING', 'SELECT * FROM customers JOIN (SELECT id, email AS ssn FROM customers) s USING (id)', () => {}],
  ['LATERAL', 'SELECT l.e FROM customers c, LATERAL (SELECT c.email AS e) l', () => {}],
  ['set-returning builtin', 'SELECT unnest(ARRAY[email, ssn]) AS u FROM customers', () => {}],
  ['SRF in FROM', 'SELECT x FROM customers, unnest(ARRAY[email]) AS x', () => {}],
  ['json_each over a row', 'SELECT j.value FROM customers c, json_each_text(row_to_json(c)) j', () => {}],
  ['unmasked table passes as it is', 'SELECT id, email FROM other.customers', (r) => expect(r).toEqual([{ id: 1, email: 'not-secret@example.com' }])],
];

describe('node-postgres, extended protocol: masked', () => {
  it.each(MASKED)('%s', async (what, sql, check) => {
    const r = await attempt(what, () => extended(sql));
    expect(r.rows.length).toBeGreaterThan(0);
    check(r.rows);
  });
});

describe('psql, simple protocol: masked', () => {
  it('every masked statement in one script', async () => {
    const script = MASKED.map(([, sql]) => `${sql};`).join('\n');
    const r = await attempt('psql script', () => psql(env.url(), ['-f', '-'], { input: script }));
    expect(r.stderr).toBe('');
    expect(canariesIn(r.stdout)).toEqual([]);
    expect(r.stdout.toString()).toContain('***@example.com');
    expect(r.stdout.toString()).toContain('not-secret@example.com');
  });
});

/** Refused before or while running: [name, sql, SQLSTATE]. */
const REFUSED: [string, string, string][] = [
  ['user function that reads a masked table', 'SELECT * FROM leak()', '42501'],
  ['COPY of a masked table', 'COPY customers TO STDOUT', '42501'],
  ['COPY of a query touching one', 'COPY (SELECT email FROM customers) TO STDOUT', '42501'],
  ['binary COPY', 'COPY customers (email) TO STDOUT (FORMAT binary)', '42501'],
  ['CREATE TEMP TABLE AS', 'CREATE TEMP TABLE t1 AS SELECT email FROM customers', '42501'],
  ['SELECT INTO', 'SELECT email INTO TEMP t2 FROM customers', '42501'],
  ['INSERT ... SELECT into a temp table', 'INSERT INTO other.customers SELECT id, email FROM customers', '42501'],
  ['UPDATE ... SET from a masked column', 'UPDATE other.customers SET email = (SELECT email FROM customers WHERE id = 1)', '42501'],
  ['CREATE VIEW over one', 'CREATE VIEW leak_v AS SELECT email FROM customers', '42501'],
  ['pg_notify carrying one', "SELECT pg_notify('leak', email) FROM customers", '42501'],
  ['cast that would echo a value in an error', 'SELECT email::int FROM customers', '42501'],
  ['DO block', "DO $$ BEGIN RAISE NOTICE '%', (SELECT email FROM customers LIMIT 1); END $$", '42501'],
  ['predicate on a column whose rule denies it', "SELECT id FROM orders WHERE card LIKE 'CANARY%'", '42501'],
  ['derived value of a column whose rule denies it', 'SELECT upper(card) FROM orders', '42501'],
  ['predicate sent to review (operator denies)', "SELECT id FROM customers WHERE email LIKE 'c%'", '42501'],
  ['ORDER BY a masked column (review)', 'SELECT id FROM customers ORDER BY ssn', '42501'],
  ['statistics oracle', "SELECT most_common_vals::text FROM pg_stats WHERE tablename = 'customers'", '42501'],
];

describe('node-postgres: refused', () => {
  it.each(REFUSED)('%s', async (what, sql, code) => {
    const e = await attempt(what, () => refused(extended(sql)));
    expect(e.code, e.message).toBe(code);
    expect(e.hint ?? '').not.toBe('');
  });
  it('a review names the masked columns to the operator', () => {
    const a = env.approvals.find((x) => x.statement.includes("email LIKE 'c%'"));
    expect(a?.maskedColumns).toContain('public.customers.email');
  });
});
