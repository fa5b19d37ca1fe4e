/**
 * PostgreSQL restarted under Sluice while a session is idle, mid-result and mid-transaction: each client gets a
 * clear error, each session is recorded as ended with the reason, nothing is replayed behind the client's back, and
 * new sessions work once PostgreSQL is back.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PgCluster } from '../harness/postgres.js';
import { startSluice, type RunningSluice } from '../harness/sluice.js';
import { waitFor } from '../integration/clients/util.js';

let cluster: PgCluster;
let sluice: RunningSluice;
beforeAll(async () => {
  cluster = await startPostgres();
  await cluster.sql('CREATE TABLE r (v int); GRANT ALL ON r TO app;', 'app');
  sluice = await startSluice(cluster);
});
afterAll(async () => {
  await sluice?.close();
  await cluster?.stop();
});

async function client(name: string): Promise<{ c: pg.Client; errors: Error[] }> {
  const errors: Error[] = [];
  const c = new pg.Client({ connectionString: sluice.url(), application_name: name });
  c.on('error', (e) => errors.push(e));
  await c.connect();
  return { c, errors };
}

const endReason = (app: string) =>
  sluice.broker.db.prepare('SELECT end_reason AS reason FROM sessions WHERE application_name = ? ORDER BY id DESC LIMIT 1').get(app) as { reason: string | null } | undefined;

describe('upstream restarted', () => {
  it('idle, mid-result and mid-transaction sessions end with a clear error and a recorded reason; no replay', async () => {
    const idle = await client('idle');
    const busy = await client('busy');
    const txn = await client('txn');
    await txn.c.query('BEGIN');
    await txn.c.query('INSERT INTO r VALUES (1)');
    const running = busy.c.query('SELECT pg_sleep(30)').then(() => null, (e: Error & { code?: string }) => e);
    const admin = new pg.Client({ connectionString: cluster.url() });
    await admin.connect();
    await waitFor(async () => ((await admin.query("SELECT 1 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'")).rowCount ? true : undefined), 'the sleep to run');
    await admin.end();

    await cluster.restart();

    const midResult = await running;
    expect(midResult).not.toBeNull();
    expect(midResult!.message).toMatch(/terminating connection due to administrator command|Connection terminated|lost the connection/);
    // The idle and the in-transaction clients learn it at their next statement at the latest.
    for (const s of [idle, txn]) {
      const e = await s.c.query('SELECT 1').then(() => null, (err: Error) => err);
      expect(e, 'a statement on a session whose server went away must fail').not.toBeNull();
    }
    for (const app of ['idle', 'busy', 'txn']) {
      const r = await waitFor(() => (endReason(app)?.reason ? endReason(app) : undefined), `session ${app} to be recorded as ended`);
      expect(r!.reason).toMatch(/57P01|upstream connection lost|server/);
    }
    for (const s of [idle, busy, txn]) await s.c.end().catch(() => {});

    // Back: new sessions work, and the uncommitted INSERT was not replayed.
    const again = await client('again');
    expect((await again.c.query('SELECT count(*)::int AS n FROM r')).rows).toEqual([{ n: 0 }]);
    await again.c.query('INSERT INTO r VALUES (2)');
    expect((await again.c.query('SELECT count(*)::int AS n FROM r')).rows).toEqual([{ n: 1 }]);
    await again.c.end();
  });
});
