/**
 * The audit store locked by another writer beyond the busy timeout: the statement is refused with a clear error and
 * nothing is forwarded (fail closed); once the lock is gone Sluice records and forwards again, and the store is
 * intact (integrity_check, hash chain).
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATA_STORE_FILE } from '../../src/audit/db.js';
import { verifyAudit } from '../../src/audit/verify.js';
import { startPostgres, type PgCluster } from '../harness/postgres.js';
import { startSluice, type RunningSluice } from '../harness/sluice.js';

let cluster: PgCluster;
let sluice: RunningSluice;
beforeAll(async () => {
  cluster = await startPostgres();
  await cluster.sql('CREATE TABLE l (i int); GRANT ALL ON l TO app;', 'app');
  sluice = await startSluice(cluster);
});
afterAll(async () => {
  await sluice?.close();
  await cluster?.stop();
});

async function rows(): Promise<number> {
  const c = new pg.Client({ connectionString: cluster.url('postgres', cluster.password, 'app') });
  await c.connect();
  try {
    return (await c.query('SELECT count(*)::int AS n FROM l')).rows[0].n as number;
  } finally {
    await c.end();
  }
}

describe('audit store locked', () => {
  it('refuses (58030, nothing forwarded) while another writer holds the lock past the timeout, then recovers', async () => {
    // The shipped busy timeout is 5 s; shortened here so the test is quick. The lock is held by another handle,
    // as a second process writing the same store would.
    sluice.broker.db.pragma('busy_timeout = 300');
    const c = new pg.Client({ connectionString: sluice.url() });
    c.on('error', () => { /* the session ends with FATAL 58030 */ });
    await c.connect();
    await c.query('INSERT INTO l VALUES (1)');
    const other = new Database(join(sluice.dataDir, DATA_STORE_FILE));
    other.pragma('busy_timeout = 0');
    other.exec('BEGIN EXCLUSIVE');
    try {
      const err = await c.query('INSERT INTO l VALUES (2)').then(() => null, (e: { code?: string; message: string }) => e);
      expect(err).toMatchObject({ code: '58030', message: expect.stringContaining('could not record the statement') });
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    expect(await rows()).toBe(1);
    await c.end().catch(() => {});

    const again = new pg.Client({ connectionString: sluice.url() });
    await again.connect();
    await again.query('INSERT INTO l VALUES (3)');
    await again.end();
    expect(await rows()).toBe(2);
    const db = sluice.broker.db;
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(verifyAudit(db)).toMatchObject({ ok: true });
  });
});
