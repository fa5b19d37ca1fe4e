import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PgCluster } from '../harness/postgres.js';
import { startSluice, type RunningSluice } from '../harness/sluice.js';

let cluster: PgCluster;
let sluice: RunningSluice;

beforeAll(async () => {
  cluster = await startPostgres();
  await cluster.sql('CREATE TABLE done_t (i int); GRANT ALL ON done_t TO app;', 'app');
  sluice = await startSluice(cluster);
});
afterAll(async () => {
  await sluice?.close();
  await cluster?.stop();
});

interface ResultRow { text: string; protocol: string; rows: number | null; bytes: number | null; error_code: string | null; duration_ms: number }

function results(sessionId: number): ResultRow[] {
  return sluice.broker.db.prepare(
    `SELECT s.text, s.protocol, r.rows, r.bytes, r.error_code, r.duration_ms
       FROM statements s JOIN statement_results r ON r.statement_id = s.id
      WHERE s.session_id = ? ORDER BY s.id`,
  ).all(sessionId) as ResultRow[];
}

describe('how each forwarded statement ended', () => {
  it('records rows, bytes, errors and duration for simple and extended statements, skipped ones included', async () => {
    const c = new pg.Client({ connectionString: sluice.url() });
    await c.connect();
    await c.query('SELECT g FROM generate_series(1, 25) g');
    await c.query('INSERT INTO done_t SELECT generate_series(1, 7)');
    await c.query('SELECT $1::int AS x', [5]);
    await c.query('UPDATE done_t SET i = i + $1', [1]);
    await expect(c.query('SELECT 1/0')).rejects.toMatchObject({ code: '22012' });
    await expect(c.query('SELECT $1::int / 0', [1])).rejects.toMatchObject({ code: '22012' });
    await c.query('SELECT 1; SELECT 2, 3');
    await c.end();
    // Completions are written with the next batch: wait until the session's are all there.
    const s = sluice.broker.audit.listSessions().find((x) => x.endedAt !== null)!;
    for (let i = 0; i < 50 && results(s.id).length < 7; i++) await new Promise((r) => setTimeout(r, 20));
    const got = results(s.id).map((r) => [r.protocol, r.text, r.rows, r.error_code]);
    expect(got).toEqual([
      ['simple', 'SELECT g FROM generate_series(1, 25) g', 25, null],
      ['simple', 'INSERT INTO done_t SELECT generate_series(1, 7)', 7, null],
      ['execute', 'SELECT $1::int AS x', 1, null],
      ['execute', 'UPDATE done_t SET i = i + $1', 7, null],
      ['simple', 'SELECT 1/0', 0, '22012'],
      ['execute', 'SELECT $1::int / 0', 0, '22012'],
      ['simple', 'SELECT 1; SELECT 2, 3', 2, null],
    ]);
    const rows = results(s.id);
    expect(rows[0]!.bytes).toBeGreaterThan(25 * 7);
    expect(rows.every((r) => r.duration_ms >= 0)).toBe(true);
  });
});
