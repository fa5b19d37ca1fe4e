import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PgCluster } from '../harness/postgres.js';
import { startSluice, type RunningSluice } from '../harness/sluice.js';

let cluster: PgCluster;
let sluice: RunningSluice;

beforeAll(async () => {
  cluster = await startPostgres();
  sluice = await startSluice(cluster);
});
afterAll(async () => {
  await sluice?.close();
  await cluster?.stop();
});

describe('through Sluice', () => {
  it('runs a query for each upstream auth method and records it', async () => {
    for (const target of ['app', 'md5', 'trust']) {
      const c = new pg.Client({ connectionString: sluice.url({ target }) });
      await c.connect();
      const r = await c.query('SELECT current_user AS u, $1::int + 1 AS n', [41]);
      await c.end();
      expect(r.rows[0]).toEqual({ u: target === 'app' ? 'app' : target === 'md5' ? 'md5user' : 'trustuser', n: 42 });
    }
    const sessions = sluice.broker.audit.listSessions();
    expect(sessions.filter((s) => s.identity === 'agent')).toHaveLength(3);
    const texts = sluice.broker.audit.listStatements(sessions[0]!.id).map((s) => `${s.protocol}:${s.text}`);
    expect(texts).toEqual(['parse:SELECT current_user AS u, $1::int + 1 AS n', 'execute:SELECT current_user AS u, $1::int + 1 AS n']);
  });

  it('refuses a wrong key with 28P01', async () => {
    const c = new pg.Client({ connectionString: sluice.url({ password: 'sk_wrong' }) });
    await expect(c.connect()).rejects.toMatchObject({ code: '28P01' });
  });
});
