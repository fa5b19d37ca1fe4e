/**
 * Review statements wait on the wire, connection intact, until an operator decides: approve once, approve for the
 * session, deny with a reason, the deadline, a client cancel or disconnect. Real PostgreSQL, real clients; the
 * operator is the broker's own approval queue (what the UI and `sluice approve` call).
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PendingApproval } from '../../../src/contract/api.js';
import { internals, psql, sendCancelRequest, waitFor } from '../clients/util.js';
import {
  count, query, rawThroughSluice, readReady, rejection, serialize, startPolicyEnv, summary, withPg, type PolicyEnv,
} from '../policy/helpers.js';

let env: PolicyEnv;
beforeAll(async () => {
  env = await startPolicyEnv({
    rules: [
      // A short deadline for one table, to see it expire (first: on a tie the first rule decides).
      { name: 'quick-deadline', match: { groups: ['test'] }, tables: { 'public.quick': { review: ['write'] } }, approvalTimeoutSeconds: 1 },
      { name: 'writes-reviewed', match: { groups: ['test'] }, allow: ['read', 'transaction', 'session'], review: ['write'] },
    ],
  }, `CREATE TABLE t (v int); CREATE TABLE quick (v int); ALTER TABLE t OWNER TO app; ALTER TABLE quick OWNER TO app;
      ALTER SYSTEM SET idle_in_transaction_session_timeout = '400ms'; SELECT pg_reload_conf();`, { operator: 'none' });
});
afterAll(async () => {
  await env?.stop();
});

const approvals = () => env.sluice.broker.approvals;
const rows = async (v: number) => Number((await env.admin.query('SELECT count(*) FROM t WHERE v = $1', [v])).rows[0].count);

/** Waits until an approval for `statement` is pending and returns it. */
function pending(statement: string): Promise<PendingApproval> {
  return waitFor(() => approvals().list().find((a) => a.statement === statement), `approval for ${statement}`);
}

describe('a review statement waits for an operator', () => {
  it('approve once: the client waits, then gets its result; the operator saw who, what and the context', async () => {
    await withPg(env.sluice.url(), async (c) => {
      await c.query('SELECT 1 AS warmup');
      const insert = c.query('INSERT INTO t VALUES (1)');
      const a = await pending('INSERT INTO t VALUES (1)');
      expect(a).toMatchObject({ identity: 'agent', groups: ['test'], target: 'app', classes: ['write'], tables: ['w:public.t'], rule: 'writes-reviewed' });
      expect(a.recentStatements).toContain('SELECT 1 AS warmup');
      expect(a.columns).toEqual([]); // INSERT ... VALUES without a column list names none
      expect(await rows(1)).toBe(0);
      expect(approvals().decide(a.id, { decision: 'approve_once' }, 'alice')).toMatchObject({ outcome: 'applied' });
      expect((await insert).rowCount).toBe(1);
      expect(await rows(1)).toBe(1);
      // Single use: the same statement again waits for a new decision.
      const again = c.query('INSERT INTO t VALUES (1)');
      const b = await pending('INSERT INTO t VALUES (1)');
      expect(b.id).not.toBe(a.id);
      approvals().decide(b.id, { decision: 'deny', reason: 'once is enough' }, 'alice');
      const e = await rejection(again);
      expect([e.code, e.message]).toEqual(['42501', expect.stringContaining('once is enough')]);
    });
    expect(await rows(1)).toBe(1);
    const rec = env.sluice.broker.db.prepare(`SELECT decision, reason FROM statements WHERE text = 'INSERT INTO t VALUES (1)' ORDER BY id`).all();
    expect(rec).toEqual([
      { decision: 'allow', reason: expect.stringContaining('approved once by alice') },
      { decision: 'deny', reason: expect.stringContaining('once is enough') },
    ]);
  });

  it('psql waits, then prints the result once approved', async () => {
    const run = psql(env.sluice.url(), ['-c', 'INSERT INTO t VALUES (11)']);
    const a = await pending('INSERT INTO t VALUES (11)');
    approvals().decide(a.id, { decision: 'approve_once' }, 'alice');
    const r = await run;
    expect([r.code, r.stdout.toString().trim()]).toEqual([0, 'INSERT 0 1']);
    expect(await rows(11)).toBe(1);
  });

  it('extended protocol: the Parse goes through; each Bind waits, shown with its parameters, and runs once', async () => {
    const c = await rawThroughSluice(env.sluice);
    try {
      c.write(Buffer.concat([serialize.parse({ name: 'ins', text: 'INSERT INTO t VALUES ($1)' }), serialize.sync()]));
      expect(summary(await readReady(c))).toEqual(['1', 'Z:I']);
      expect(approvals().list()).toEqual([]);
      const bind = (v: string) => Buffer.concat([serialize.bind({ statement: 'ins', values: [v] }), serialize.execute({}), serialize.sync()]);
      c.write(bind('12'));
      const a = await pending('INSERT INTO t VALUES ($1)');
      expect(a.params).toEqual(['12']);
      approvals().decide(a.id, { decision: 'approve_once' }, 'alice');
      expect(summary(await readReady(c))).toEqual(['2', 'C:INSERT 0 1', 'Z:I']);
      // The named statement is not approved for good: the next execution waits again, and a denial refuses it.
      c.write(bind('13'));
      const b = await pending('INSERT INTO t VALUES ($1)');
      expect(b.params).toEqual(['13']);
      approvals().decide(b.id, { decision: 'deny', reason: 'one is enough' }, 'alice');
      const frames = await readReady(c);
      expect(summary(frames)).toEqual(['E:42501', 'Z:I']);
    } finally {
      c.destroy();
    }
    expect([await rows(12), await rows(13)]).toEqual([1, 0]);
    const rec = env.sluice.broker.db.prepare(`SELECT protocol, decision, reason, params FROM statements WHERE text = 'INSERT INTO t VALUES ($1)' AND session_id = (SELECT max(session_id) FROM statements) ORDER BY id`).all();
    expect(rec).toEqual([
      { protocol: 'parse', decision: 'review', reason: expect.stringContaining('each execution waits'), params: null },
      { protocol: 'execute', decision: 'allow', reason: expect.stringContaining('approved once by alice'), params: '["12"]' },
      { protocol: 'execute', decision: 'deny', reason: expect.stringContaining('one is enough'), params: '["13"]' },
    ]);
  });

  it('deny: ERROR 42501 with the reason, not FATAL; the connection goes on', async () => {
    await withPg(env.sluice.url(), async (c) => {
      const p = c.query('INSERT INTO t VALUES (2)');
      const a = await pending('INSERT INTO t VALUES (2)');
      approvals().decide(a.id, { decision: 'deny', reason: 'not during the freeze' }, 'bob');
      const e = await rejection(p);
      expect(e.code).toBe('42501');
      expect(e.message).toContain('not during the freeze');
      expect((await c.query('SELECT 3 AS three')).rows).toEqual([{ three: 3 }]);
      // The operator sees the columns a statement touches.
      const upd = rejection(c.query('UPDATE t SET v = 0 WHERE v = 2'));
      const u = await pending('UPDATE t SET v = 0 WHERE v = 2');
      expect(u.columns.sort()).toEqual(['v']);
      approvals().decide(u.id, { decision: 'deny', reason: 'no' }, 'bob');
      expect((await upd).code).toBe('42501');
    });
    expect(await rows(2)).toBe(0);
  });

  it('approve for this session: the same statement runs again without asking, another one still waits', async () => {
    await withPg(env.sluice.url(), async (c) => {
      const first = c.query('INSERT INTO t VALUES ($1)', [3]);
      const a = await pending('INSERT INTO t VALUES ($1)');
      expect(a.params).toEqual(['3']);
      expect(a.columns).toEqual([]);
      approvals().decide(a.id, { decision: 'approve_session' }, 'carol');
      await first;
      await c.query('INSERT INTO t VALUES ($1)', [3]);
      expect(approvals().list()).toEqual([]);
      const other = c.query('INSERT INTO t VALUES (33)');
      const b = await pending('INSERT INTO t VALUES (33)');
      approvals().decide(b.id, { decision: 'deny', reason: 'no' }, 'carol');
      expect((await rejection(other)).code).toBe('42501');
    });
    expect(await rows(3)).toBe(2);
    // The grant was for that session only.
    await withPg(env.sluice.url(), async (c) => {
      const p = c.query('INSERT INTO t VALUES ($1)', [3]);
      const a = await pending('INSERT INTO t VALUES ($1)');
      approvals().decide(a.id, { decision: 'deny', reason: 'new session' }, 'carol');
      expect((await rejection(p)).code).toBe('42501');
    });
  });

  it('the deadline refuses with "approval timed out" (57014) and a late decision changes nothing', async () => {
    await withPg(env.sluice.url(), async (c) => {
      const p = c.query('INSERT INTO quick VALUES (1)');
      const a = await pending('INSERT INTO quick VALUES (1)');
      expect(a.deadlineAt - a.requestedAt).toBe(1000);
      const e = await rejection(p);
      expect([e.code, e.message]).toEqual(['57014', expect.stringContaining('approval timed out')]);
      expect(approvals().decide(a.id, { decision: 'approve_once' }, 'late')).toMatchObject({ outcome: 'not_applied' });
      expect((await c.query('SELECT 4 AS four')).rows).toEqual([{ four: 4 }]);
    });
    expect(await count(env, 'quick')).toBe(0);
  });

  it('a CancelRequest voids the wait at once (57014) and the session goes on', async () => {
    await withPg(env.sluice.url(), async (c) => {
      const p = rejection(c.query('INSERT INTO t VALUES (5)')); // handled at once: it fails during the cancel
      const a = await pending('INSERT INTO t VALUES (5)');
      const { processID, secretKey } = internals(c);
      await sendCancelRequest(env.sluice.port, processID, secretKey);
      const e = await p;
      expect([e.code, e.message]).toEqual(['57014', 'canceling statement due to user request']);
      expect(approvals().list()).toEqual([]);
      expect(approvals().decide(a.id, { decision: 'approve_once' }, 'late')).toMatchObject({ outcome: 'not_applied' });
      expect((await c.query('SELECT 5 AS five')).rows).toEqual([{ five: 5 }]);
    });
    expect(await rows(5)).toBe(0);
  });

  it('a client that disconnects voids its approval; approving it afterwards executes nothing', async () => {
    const c = await rawThroughSluice(env.sluice);
    c.write(query('INSERT INTO t VALUES (6)'));
    const a = await pending('INSERT INTO t VALUES (6)');
    c.destroy();
    await waitFor(() => (approvals().list().length === 0 ? true : undefined), 'the approval to be voided');
    expect(approvals().decide(a.id, { decision: 'approve_once' }, 'late')).toMatchObject({ outcome: 'not_applied' });
    await new Promise((r) => setTimeout(r, 200));
    expect(await rows(6)).toBe(0);
  });

  it('a lost upstream (backend terminated) voids the approval; approving it afterwards executes nothing', async () => {
    const c = new pg.Client({ connectionString: env.sluice.url(), application_name: 'held-victim' });
    c.on('error', () => { /* the FATAL that ends the session */ });
    await c.connect();
    try {
      // Handled from the start: the error arrives while the test is still awaiting the termination.
      const p = rejection(c.query('INSERT INTO t VALUES (14)'));
      const a = await pending('INSERT INTO t VALUES (14)');
      await env.admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'held-victim'");
      const e = await p;
      expect(e.message).toMatch(/terminat|lost the connection|Connection terminated/);
      await waitFor(() => (approvals().list().length === 0 ? true : undefined), 'the approval to be voided');
      expect(approvals().decide(a.id, { decision: 'approve_once' }, 'late')).toMatchObject({ outcome: 'not_applied' });
    } finally {
      await c.end().catch(() => {});
    }
    await new Promise((r) => setTimeout(r, 200));
    expect(await rows(14)).toBe(0);
  });

  it('a pipeline with a held statement in the middle: before it runs, after it waits, all in order', async () => {
    const c = await rawThroughSluice(env.sluice);
    try {
      c.write(Buffer.concat([query('SELECT 71'), query('INSERT INTO t VALUES (7)'), query('SELECT 72')]));
      expect(summary(await readReady(c))).toEqual(['T', 'D:71', 'C:SELECT 1', 'Z:I']);
      const a = await pending('INSERT INTO t VALUES (7)');
      await new Promise((r) => setTimeout(r, 100));
      expect(c.pending.length, 'nothing after the held statement yet').toBe(0);
      approvals().decide(a.id, { decision: 'approve_once' }, 'dave');
      expect(summary(await readReady(c, 2))).toEqual(['C:INSERT 0 1', 'Z:I', 'T', 'D:72', 'C:SELECT 1', 'Z:I']);
    } finally {
      c.destroy();
    }
  });

  it('waiting inside a transaction survives the server\'s idle_in_transaction_session_timeout', async () => {
    await withPg(env.sluice.url(), async (c) => {
      await c.query('BEGIN');
      const p = c.query('INSERT INTO t VALUES (8)');
      const a = await pending('INSERT INTO t VALUES (8)');
      await new Promise((r) => setTimeout(r, 1500)); // well past the 400 ms timeout
      approvals().decide(a.id, { decision: 'approve_once' }, 'erin');
      await p;
      await c.query('COMMIT');
    });
    expect(await rows(8)).toBe(1);
  });

  it('20 sessions waiting at once, decided in random order, each get their own outcome', async () => {
    const clients = await Promise.all(Array.from({ length: 20 }, async () => {
      const c = new pg.Client({ connectionString: env.sluice.url() });
      await c.connect();
      return c;
    }));
    try {
      const results = clients.map((c, i) => c.query(`INSERT INTO t VALUES (${100 + i})`).then(() => 'ok', (e: pg.DatabaseError) => e.code ?? 'error'));
      const list = await waitFor(() => (approvals().list().length === 20 ? approvals().list() : undefined), '20 pending approvals');
      const order = [...list].sort(() => Math.random() - 0.5);
      for (const a of order) {
        const i = Number(/\((\d+)\)/.exec(a.statement)![1]) - 100;
        approvals().decide(a.id, i % 2 === 0 ? { decision: 'approve_once' } : { decision: 'deny', reason: `odd ${i}` }, 'frank');
      }
      const outcomes = await Promise.all(results);
      expect(outcomes).toEqual(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? 'ok' : '42501')));
      const inserted = (await env.admin.query('SELECT v FROM t WHERE v >= 100 ORDER BY v')).rows.map((r) => r.v as number);
      expect(inserted).toEqual(Array.from({ length: 10 }, (_, k) => 100 + 2 * k));
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });
});
