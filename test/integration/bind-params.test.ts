import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STATEMENT_CLASSES } from '../../src/sql/types.js';
import { startPostgres, type PgCluster } from '../harness/postgres.js';
import { startSluice, type RunningSluice } from '../harness/sluice.js';

let cluster: PgCluster;
let sluice: RunningSluice;
let secretKey: string;

beforeAll(async () => {
  cluster = await startPostgres();
  sluice = await startSluice(cluster, {
    config: {
      policy: {
        rules: [
          { name: 'tests', match: { groups: ['test'] }, allow: [...STATEMENT_CLASSES] },
          { name: 'no-params-in-audit', match: { groups: ['pii'] }, allow: [...STATEMENT_CLASSES], redactParams: true },
        ],
      },
    },
  });
  secretKey = sluice.broker.keys.add('pii-agent', { groups: ['pii'] }).secret;
});
afterAll(async () => {
  await sluice?.close();
  await cluster?.stop();
});

async function paramsOfLastSession(run: (c: pg.Client) => Promise<unknown>, user = 'agent', password = sluice.key): Promise<unknown[]> {
  const c = new pg.Client({ connectionString: sluice.url({ user, password }) });
  await c.connect();
  await run(c);
  await c.end();
  const s = sluice.broker.audit.listSessions().find((x) => x.identity === user && x.endedAt !== null)!;
  const rows = sluice.broker.db.prepare(`SELECT params FROM statements WHERE session_id = ? AND protocol = 'execute' ORDER BY id`).all(s.id) as { params: string | null }[];
  return rows.map((r) => (r.params === null ? null : JSON.parse(r.params)));
}

describe('bind parameters in the audit log', () => {
  it('are recorded with each Execute: text as text, binary as \\x hex, NULL as null', async () => {
    const params = await paramsOfLastSession(async (c) => {
      await c.query('SELECT $1::text AS a, $2::int AS b, $3::text AS n', ['héllo', 42, null]);
      await c.query('SELECT $1::bytea AS b', [Buffer.from([0xde, 0xad, 0xbe, 0xef])]);
      await c.query('SELECT 1');
    });
    expect(params).toEqual([['héllo', '42', null], ['\\xdeadbeef']]);
  });

  it('are stored as <redacted> for sessions a redactParams rule matches', async () => {
    const params = await paramsOfLastSession(async (c) => {
      await c.query('SELECT $1::text AS ssn', ['078-05-1120']);
    }, 'pii-agent', secretKey);
    expect(params).toEqual([['<redacted>']]);
    const dump = sluice.broker.db.prepare('SELECT group_concat(coalesce(params, \'\')) AS all_params FROM statements').get() as { all_params: string };
    expect(dump.all_params).not.toContain('078-05-1120');
  });
});
