/**
 * Row limits: a client never receives more rows than its policy allows, per statement and per session. The row
 * that would cross the limit becomes ERROR 54000, the rest of the result is withheld, the server is told to stop
 * when that is safe, and the session goes on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseErrorFields } from '../../../src/protocol/messages.js';
import {
  pbe, query, rawThroughSluice, readReady, rejection, serialize, startPolicyEnv, summary, withPg, type PolicyEnv,
} from './helpers.js';
import type { BackendFrame } from '../../redteam/raw-client.js';

let env: PolicyEnv;
beforeAll(async () => {
  env = await startPolicyEnv({
    rules: [{
      name: 'bounded',
      match: { groups: ['test'] },
      allow: ['read', 'write', 'transaction', 'session', 'copy_out', 'utility'],
      limits: { maxRowsPerStatement: 10, maxRowsPerSession: 40 },
    }],
  }, 'CREATE TABLE big AS SELECT g FROM generate_series(1, 5000) g; GRANT ALL ON big TO app;');
});
afterAll(async () => {
  await env?.stop();
});

const rows = (frames: readonly BackendFrame[]) => frames.filter((f) => f.code === 'D').length;
const errorOf = (frames: readonly BackendFrame[]) => parseErrorFields(frames.find((f) => f.code === 'E')!.frame);

describe('row limits', () => {
  it('cuts a result at maxRowsPerStatement with 54000 naming the rule, and the session goes on', async () => {
    const c = await rawThroughSluice(env.sluice);
    try {
      c.write(query('SELECT g FROM big ORDER BY g'));
      const frames = await readReady(c);
      expect(rows(frames)).toBe(10);
      expect(summary(frames).slice(-3)).toEqual(['D:10', 'E:54000', 'Z:I']);
      const e = errorOf(frames);
      expect(e.M).toContain('maxRowsPerStatement (10)');
      expect(e.M).toContain('rule "bounded"');
      expect(e.H).toMatch(/LIMIT/);
      c.write(query('SELECT 1 AS one'));
      expect(summary(await readReady(c))).toEqual(['T', 'D:1', 'C:SELECT 1', 'Z:I']);
    } finally {
      c.destroy();
    }
  });

  it('lets exactly the limit through', async () => {
    await withPg(env.sluice.url(), async (c) => {
      expect((await c.query('SELECT g FROM big ORDER BY g LIMIT 10')).rowCount).toBe(10);
    });
  });

  it('stops the server: a 25-million-row result ends at once, and the transaction is the server\'s own', async () => {
    await withPg(env.sluice.url(), async (c) => {
      await c.query('BEGIN');
      const e = await rejection(c.query('SELECT a.g FROM big a, big b'));
      expect(e.code).toBe('54000');
      // The cancel reached the statement: the server's transaction failed, as the client was told.
      expect((await rejection(c.query('SELECT 1'))).code).toBe('25P02');
      await c.query('ROLLBACK');
      expect((await c.query('SELECT 2 AS two')).rows).toEqual([{ two: 2 }]);
    });
    // The server is not still producing the result.
    const running = await env.admin.query("SELECT 1 FROM pg_stat_activity WHERE query LIKE '%FROM big a, big b%' AND state = 'active' AND pid <> pg_backend_pid()");
    expect(running.rowCount).toBe(0);
  });

  it('counts a portal fetched in batches as one statement', async () => {
    const c = await rawThroughSluice(env.sluice);
    try {
      c.write(Buffer.concat([
        serialize.parse({ text: 'SELECT g FROM big ORDER BY g' }), serialize.bind({}),
        serialize.execute({ rows: 4 }), serialize.execute({ rows: 4 }), serialize.execute({ rows: 4 }), serialize.sync(),
      ]));
      const frames = await readReady(c);
      expect(rows(frames)).toBe(10);
      expect(summary(frames)).toEqual(['1', '2', 'D:1', 'D:2', 'D:3', 'D:4', 's', 'D:5', 'D:6', 'D:7', 'D:8', 's', 'D:9', 'D:10', 'E:54000', 'Z:I']);
    } finally {
      c.destroy();
    }
  });

  it('cuts COPY TO STDOUT, whose rows are CopyData messages', async () => {
    const c = await rawThroughSluice(env.sluice);
    try {
      c.write(query('COPY (SELECT g FROM big) TO STDOUT'));
      const frames = await readReady(c);
      expect(frames.filter((f) => f.code === 'd')).toHaveLength(10);
      expect(summary(frames).slice(-2)).toEqual(['E:54000', 'Z:I']);
    } finally {
      c.destroy();
    }
  });

  it('does not cancel behind a pipelined request: the next cycle runs untouched and the cut one is drained', async () => {
    const c = await rawThroughSluice(env.sluice);
    try {
      c.write(Buffer.concat([query('SELECT g FROM big ORDER BY g'), pbe('SELECT 7 AS seven'), query('SELECT 8')]));
      const frames = await readReady(c, 3);
      expect(summary(frames)).toEqual([
        'T', ...Array.from({ length: 10 }, (_, i) => `D:${i + 1}`), 'E:54000', 'Z:I',
        '1', '2', 'D:7', 'C:SELECT 1', 'Z:I',
        'T', 'D:8', 'C:SELECT 1', 'Z:I',
      ]);
    } finally {
      c.destroy();
    }
  });

  it('spends the per-session budget across statements, then cuts every result', async () => {
    const c = await rawThroughSluice(env.sluice);
    try {
      for (let i = 0; i < 4; i++) {
        c.write(query('SELECT g FROM big LIMIT 10'));
        expect(rows(await readReady(c))).toBe(10);
      }
      c.write(query('SELECT 1'));
      const frames = await readReady(c);
      expect(summary(frames)).toEqual(['T', 'E:54000', 'Z:I']);
      expect(errorOf(frames).M).toContain('maxRowsPerSession (40)');
      // Statements without rows still work.
      c.write(query('SET application_name = x'));
      expect(summary(await readReady(c)).filter((s) => s !== 'S')).toEqual(['C:SET', 'Z:I']);
    } finally {
      c.destroy();
    }
  });

  it('records the cut in the audit log with the rows the client saw', async () => {
    const c = await rawThroughSluice(env.sluice);
    try {
      c.write(query('SELECT g AS audited_cut FROM big'));
      await readReady(c);
    } finally {
      c.destroy();
    }
    const db = env.sluice.broker.db;
    await new Promise((r) => setTimeout(r, 250)); // completions are committed with the next batch or within 100 ms
    const r = db.prepare(`SELECT r.error_code AS code, r.error_message AS message, r.rows AS rows FROM statements s
      JOIN statement_results r ON r.statement_id = s.id WHERE s.text = 'SELECT g AS audited_cut FROM big'`).get() as { code: string; message: string; rows: number };
    expect(r.code).toBe('54000');
    expect(r.message).toContain('maxRowsPerStatement');
    expect(r.rows).toBe(10);
  });
});
