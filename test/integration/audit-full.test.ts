import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAudit } from '../../src/audit/verify.js';
import { startPostgres, type PgCluster } from '../harness/postgres.js';
import { startSluice, type RunningSluice } from '../harness/sluice.js';

let cluster: PgCluster;
let sluice: RunningSluice;

beforeAll(async () => {
  cluster = await startPostgres();
  await cluster.sql('CREATE TABLE full_t (i int); GRANT ALL ON full_t TO app;', 'app');
  sluice = await startSluice(cluster);
});
afterAll(async () => {
  await sluice?.close();
  await cluster?.stop();
});

async function rowsInTable(): Promise<number> {
  const admin = new pg.Client({ connectionString: cluster.url('postgres', cluster.password, 'app') });
  await admin.connect();
  try {
    return (await admin.query('SELECT count(*)::int AS n FROM full_t')).rows[0].n as number;
  } finally {
    await admin.end();
  }
}

describe('audit store full', () => {
  it('refuses the statement (nothing forwarded), keeps serving others, and recovers when space returns', async () => {
    const c = new pg.Client({ connectionString: sluice.url() });
    c.on('error', () => { /* the session ends with FATAL 58030: expected */ });
    await c.connect();
    await c.query('INSERT INTO full_t VALUES (1)');
    // A full disk, as SQLite sees it: no page may be added (SQLITE_FULL on the next commit that needs one).
    const db = sluice.broker.db;
    const pages = db.pragma('page_count', { simple: true }) as number;
    db.pragma(`max_page_count = ${pages}`);
    const filler = 'x'.repeat(8000); // a record that cannot fit in the pages already there
    const err = await c.query(`INSERT INTO full_t SELECT 2 WHERE '${filler}' <> ''`).then(() => null, (e: { code?: string; message: string }) => e);
    expect(err).toMatchObject({ code: '58030', message: expect.stringContaining('could not record the statement') });
    expect(await rowsInTable()).toBe(1); // the refused INSERT never reached the database
    await c.end().catch(() => {});

    db.pragma('max_page_count = 1073741823');
    const again = new pg.Client({ connectionString: sluice.url() });
    await again.connect();
    await again.query('INSERT INTO full_t VALUES (3)');
    await again.end();
    expect(await rowsInTable()).toBe(2);
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(verifyAudit(db)).toMatchObject({ ok: true });
  });
});
