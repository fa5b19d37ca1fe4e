import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { estimateImpact } from '../../../src/approvals/impact.js';
import { sideConnectionEstimator } from '../../../src/approvals/estimator.js';
import type { SideConnection, SideResult } from '../../../src/proxy/side-connection.js';
import { loadParser } from '../../../src/sql/parser.js';
import { startPostgres, type PgCluster } from '../../harness/postgres.js';

/**
 * A throwaway SideConnection over node-postgres (the real one is built concurrently in src/proxy), which also
 * keeps the statements it was asked to run so the tests can see exactly what Sluice sent.
 */
async function pgSide(url: string): Promise<SideConnection & { sent: string[] }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const sent: string[] = [];
  return {
    sent,
    async query(sql: string, params?: (string | null)[]): Promise<SideResult> {
      sent.push(sql);
      const r = await client.query({ text: sql, values: params ?? [], rowMode: 'array', types: { getTypeParser: () => (v: string) => v } });
      return {
        fields: r.fields.map((f) => ({ name: f.name, typeOid: f.dataTypeID })),
        rows: r.rows as (string | null)[][],
        command: `${r.command} ${r.rowCount ?? ''}`.trim(),
      };
    },
    close: () => void client.end(),
  };
}

let cluster: PgCluster;
let side: SideConnection & { sent: string[] };

beforeAll(async () => {
  await loadParser();
  cluster = await startPostgres();
  await cluster.sql(`
    CREATE TABLE orders (id int PRIMARY KEY, status text, note text);
    INSERT INTO orders SELECT g, CASE WHEN g % 10 = 0 THEN 'open' ELSE 'done' END, '' FROM generate_series(1, 5000) g;
    CREATE TABLE archive (LIKE orders);
    CREATE TABLE touched (n int);
    CREATE FUNCTION touch() RETURNS int LANGUAGE sql VOLATILE AS 'INSERT INTO touched VALUES (1) RETURNING 1';
    ANALYZE orders;
  `);
  side = await pgSide(cluster.url());
});

afterAll(async () => {
  side?.close();
  await cluster?.stop();
});

const count = async (table: string): Promise<number> => {
  const r = await side.query(`SELECT count(*) FROM ${table}`);
  return Number(r.rows[0]![0]);
};

describe('EXPLAIN impact estimate against PostgreSQL', () => {
  it('estimates rows an UPDATE would touch, from EXPLAIN only, and changes nothing', async () => {
    side.sent.length = 0;
    const e = await estimateImpact(side, "UPDATE orders SET status = 'x' WHERE status = 'open'", null);
    expect(e).toMatchObject({ kind: 'estimate', operation: 'update', relation: 'public.orders', source: 'EXPLAIN (FORMAT JSON)' });
    if (e.kind !== 'estimate') throw new Error('unreachable');
    expect(e.rows).toBeGreaterThan(250);
    expect(e.rows).toBeLessThan(1000);
    expect(side.sent).toEqual([
      'BEGIN TRANSACTION READ ONLY',
      'SET LOCAL statement_timeout = 5000',
      "EXPLAIN (FORMAT JSON, VERBOSE) UPDATE orders SET status = 'x' WHERE status = 'open'",
      'ROLLBACK',
    ]);
    expect(side.sent.some((s) => /ANALYZE/i.test(s.replace('EXPLAIN (FORMAT JSON, VERBOSE)', '')))).toBe(false);
    const r = await side.query("SELECT count(*) FROM orders WHERE status = 'x'");
    expect(r.rows[0]![0]).toBe('0');
  });

  it('passes bind parameters as parameters', async () => {
    const e = await estimateImpact(side, 'DELETE FROM orders WHERE id <= $1', ['100']);
    expect(e).toMatchObject({ kind: 'estimate', operation: 'delete' });
    if (e.kind === 'estimate') {
      expect(e.rows).toBeGreaterThanOrEqual(50);
      expect(e.rows).toBeLessThanOrEqual(200);
    }
    expect(await count('orders')).toBe(5000);
  });

  it('estimates INSERT ... SELECT by the rows the SELECT feeds it', async () => {
    const e = await estimateImpact(side, 'INSERT INTO archive SELECT * FROM orders', null);
    expect(e).toMatchObject({ kind: 'estimate', operation: 'insert', relation: 'public.archive' });
    if (e.kind === 'estimate') expect(e.rows).toBeGreaterThan(4000);
    expect(await count('archive')).toBe(0);
  });

  it('runs nothing for statements it does not estimate', async () => {
    side.sent.length = 0;
    for (const sql of [
      'SELECT * FROM orders',
      "INSERT INTO orders VALUES (9999, 'x', '')",
      'DELETE FROM orders; DROP TABLE orders',
      'EXPLAIN ANALYZE DELETE FROM orders',
      'DROP TABLE orders',
      'DELETE FROM orders WHERE',
    ]) {
      const e = await estimateImpact(side, sql, null);
      expect(e.kind, sql).toBe('not_applicable');
    }
    expect(side.sent).toEqual([]);
    expect(await count('orders')).toBe(5000);
  });

  it('calls no function while planning and leaves the connection usable after a server error', async () => {
    const e = await estimateImpact(side, 'DELETE FROM orders WHERE id = touch()', null);
    expect(e.kind).toBe('estimate');
    expect(await count('touched')).toBe(0);
    const bad = await estimateImpact(side, 'DELETE FROM no_such_table', null);
    expect(bad).toMatchObject({ kind: 'unavailable' });
    if (bad.kind === 'unavailable') expect(bad.reason).toMatch(/no_such_table/);
    expect(await count('orders')).toBe(5000);
  });

  it('serialises concurrent estimates on one connection', async () => {
    const all = await Promise.all(Array.from({ length: 5 }, (_, i) => estimateImpact(side, `DELETE FROM orders WHERE id <= ${(i + 1) * 1000}`, null)));
    expect(all.every((e) => e.kind === 'estimate')).toBe(true);
  });

  it('the estimator hook opens a side connection per estimate and closes it', async () => {
    const opened: (SideConnection & { sent: string[] })[] = [];
    const estimate = sideConnectionEstimator(async () => {
      const c = await pgSide(cluster.url());
      opened.push(c);
      return c;
    });
    const approval = { statement: 'DELETE FROM orders WHERE id <= $1', target: 'app' } as Parameters<typeof estimate>[0];
    expect(await estimate(approval, ['10'])).toMatchObject({ kind: 'estimate', operation: 'delete' });
    expect(opened).toHaveLength(1);
    const failing = sideConnectionEstimator(() => Promise.reject(new Error('connection refused')));
    expect(await failing(approval, ['10'])).toEqual({ kind: 'unavailable', reason: 'no side connection to app: connection refused' });
  });
});
