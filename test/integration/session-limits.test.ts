import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PgCluster } from '../harness/postgres.js';
import { startSluice, type RunningSluice } from '../harness/sluice.js';

let cluster: PgCluster;
let sluice: RunningSluice;

beforeAll(async () => {
  cluster = await startPostgres();
  await cluster.sql('CREATE TABLE limits_t (i int); GRANT ALL ON limits_t TO app;', 'app');
  sluice = await startSluice(cluster, {
    config: {
      policy: {
        rules: [{
          name: 'bounded',
          match: { groups: ['test'] },
          allow: ['read', 'write', 'session', 'transaction'],
          functions: { pg_sleep: 'allow' },
          limits: { readOnly: true, statementTimeoutMs: 1500, maxRowsPerStatement: 10 },
        }],
      },
    },
  });
});
afterAll(async () => {
  await sluice?.close();
  await cluster?.stop();
});

async function withClient<T>(opts: { statement_timeout?: number }, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: sluice.url(), ...opts });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

const show = async (c: pg.Client, name: string) => (await c.query(`SHOW ${name}`)).rows[0][name] as string;

describe('policy limits pinned upstream', () => {
  it('starts the session read-only with the statement_timeout ceiling, and RESET ALL returns to them', async () => {
    await withClient({}, async (c) => {
      expect(await show(c, 'default_transaction_read_only')).toBe('on');
      expect(await show(c, 'statement_timeout')).toBe('1500ms');
      await c.query('RESET ALL');
      expect(await show(c, 'default_transaction_read_only')).toBe('on');
      expect(await show(c, 'statement_timeout')).toBe('1500ms');
      await expect(c.query('SELECT pg_sleep(5)')).rejects.toMatchObject({ code: '57014' });
    });
  });

  it('refuses writes and lifting the limits, and nothing is written', async () => {
    await withClient({}, async (c) => {
      await expect(c.query('INSERT INTO limits_t VALUES (1)')).rejects.toMatchObject({ code: '42501' });
      await expect(c.query('SET statement_timeout = 0')).rejects.toMatchObject({ code: '42501' });
      await expect(c.query('SET default_transaction_read_only = off')).rejects.toMatchObject({ code: '42501' });
    });
    const admin = new pg.Client({ connectionString: cluster.url('postgres', cluster.password, 'app') });
    await admin.connect();
    expect((await admin.query('SELECT count(*)::int AS n FROM limits_t')).rows[0].n).toBe(0);
    await admin.end();
  });

  it('enforces the rule\'s row limit alongside the pinned settings', async () => {
    await withClient({}, async (c) => {
      expect((await c.query('SELECT generate_series(1, 10)')).rowCount).toBe(10);
      await expect(c.query('SELECT generate_series(1, 11)')).rejects.toMatchObject({ code: '54000' });
    });
    expect(sluice.logs.filter((l) => l.includes('not enforced'))).toEqual([]);
  });

  it('keeps a client statement_timeout that is stricter than the ceiling, and caps a looser one', async () => {
    expect(await withClient({ statement_timeout: 700 }, (c) => show(c, 'statement_timeout'))).toBe('700ms');
    expect(await withClient({ statement_timeout: 60_000 }, (c) => show(c, 'statement_timeout'))).toBe('1500ms');
  });
});
