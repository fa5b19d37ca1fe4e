/**
 * The desktop shell's tray and quit against a real broker in front of a real PostgreSQL: pause refuses new
 * sessions (open ones carry on), resume accepts them again; quitting denies what waits for an operator, closes
 * every session with the reason recorded, and leaves a flushed audit store behind.
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventBus } from '../../../src/operator/event-bus.js';
import { quitBroker, QUIT_REASON } from '../../../main/core/quit.js';
import { TrayController } from '../../../main/core/tray-controller.js';
import type { TrayMenuItem, TrayPort } from '../../../main/core/ports.js';
import { waitFor } from '../../integration/clients/util.js';
import { rejection, startPolicyEnv, withPg, type PolicyEnv } from '../../integration/policy/helpers.js';

const OPERATOR = 'tester via desktop app';
let env: PolicyEnv;
beforeAll(async () => {
  env = await startPolicyEnv({
    rules: [{ name: 'writes-reviewed', match: { groups: ['test'] }, allow: ['read', 'transaction', 'session'], review: ['write'] }],
  }, 'CREATE TABLE t (v int); ALTER TABLE t OWNER TO app;', { operator: 'none' });
});
afterAll(async () => {
  await env?.stop();
});

function fakeTray() {
  const state = { tooltip: '', title: '', menu: [] as TrayMenuItem[], destroyed: false };
  const port: TrayPort = {
    setToolTip: (t) => { state.tooltip = t; },
    setTitle: (t) => { state.title = t; },
    setMenu: (m) => { state.menu = m; },
    onClick: () => {},
    destroy: () => { state.destroyed = true; },
  };
  const item = (label: RegExp) => {
    const found = state.menu.find((i) => i.kind === 'item' && label.test(i.label));
    if (!found || found.kind !== 'item') throw new Error(`no menu item ${label}; menu: ${JSON.stringify(state.menu)}`);
    return found;
  };
  return { state, port, item };
}

describe('tray: pause and resume', () => {
  it('pause refuses new sessions with 57P03 and a hint, keeps open ones, and resume lets them in again', async () => {
    const broker = env.sluice.broker;
    const tray = fakeTray();
    const controller = new TrayController({
      tray: tray.port, bus: broker.events, pendingCount: () => broker.approvals.size, broker, operator: OPERATOR,
      openInbox: () => {}, openWindow: () => {}, quit: () => {},
    });
    try {
      await withPg(env.sluice.url(), async (open) => {
        await open.query('SELECT 1');
        tray.item(/^Pause/).click!();
        expect(broker.paused).toBe(true);
        expect(tray.state.tooltip).toMatch(/paused: new sessions refused/);
        const err = await rejection(withPg(env.sluice.url(), (c) => c.query('SELECT 1')));
        expect([err.code, err.message, err.hint]).toEqual(['57P03', 'Sluice is paused: new sessions are refused for now', expect.stringMatching(/retry later/)]);
        // The session that was open before the pause carries on.
        expect((await open.query('SELECT 2 AS v')).rows).toEqual([{ v: 2 }]);
        tray.item(/^Resume/).click!();
        expect(broker.paused).toBe(false);
        expect((await withPg(env.sluice.url(), (c) => c.query('SELECT 3 AS v'))).rows).toEqual([{ v: 3 }]);
      });
      // Both switches are in the audit trail with the operator; the refused login too.
      const events = broker.db.prepare(`SELECT kind, detail FROM audit_events WHERE kind IN ('broker_paused', 'broker_resumed') ORDER BY id`).all() as { kind: string; detail: string }[];
      expect(events.map((e) => [e.kind, JSON.parse(e.detail).operator])).toEqual([['broker_paused', OPERATOR], ['broker_resumed', OPERATOR]]);
      const refused = broker.db.prepare(`SELECT end_reason FROM sessions WHERE end_reason LIKE 'refused: Sluice paused%'`).all();
      expect(refused).toEqual([{ end_reason: `refused: Sluice paused by ${OPERATOR}` }]);
    } finally {
      controller.close();
    }
    expect(tray.state.destroyed).toBe(true);
  });

  it('shows the pending count and redraws when approvals come and go', () => {
    const bus = new EventBus();
    const tray = fakeTray();
    let pending = 0;
    let paused = false;
    new TrayController({
      tray: tray.port, bus, pendingCount: () => pending, operator: OPERATOR, openInbox: () => {}, openWindow: () => {}, quit: () => {},
      broker: { get paused() { return paused; }, pause: () => { paused = true; }, resume: () => { paused = false; } },
    });
    expect(tray.item(/approvals? waiting/).enabled).toBe(false);
    pending = 2;
    bus.emit({ type: 'approval_resolved', at: 0, approval: {} as never });
    expect(tray.state.title).toBe('2');
    expect(tray.item(/^Review 2 approvals waiting/).enabled).toBe(true);
  });
});

describe('quit sequence', () => {
  it('denies waiting statements, closes sessions with the reason, and flushes the audit store', async () => {
    const { sluice } = env;
    const broker = sluice.broker;
    const idle = new pg.Client({ connectionString: sluice.url() });
    idle.on('error', () => {});
    await idle.connect();
    await idle.query('SELECT 41');
    const waiting = new pg.Client({ connectionString: sluice.url() });
    waiting.on('error', () => {});
    await waiting.connect();
    const insert = rejection(waiting.query('INSERT INTO t VALUES (7)'));
    const approval = await waitFor(() => broker.approvals.list().find((a) => a.statement === 'INSERT INTO t VALUES (7)'), 'the approval');
    const logs: string[] = [];

    const report = await quitBroker(broker, { operator: OPERATOR }, (_l, m) => logs.push(m));

    expect(report).toEqual({ denied: [approval.id], notApplied: [] });
    const err = await insert;
    expect([err.code, err.message]).toEqual(['42501', expect.stringContaining(`statement denied by operator ${OPERATOR}: ${QUIT_REASON}`)]);
    await idle.end().catch(() => {});
    await waiting.end().catch(() => {});
    expect(Number((await env.admin.query('SELECT count(*) FROM t')).rows[0].count)).toBe(0);
    // The broker closed its store; read what it left on disk.
    const db = new Database(join(sluice.dataDir, 'sluice.db'), { readonly: true });
    try {
      const open = db.prepare(`SELECT count(*) AS n FROM sessions WHERE ended_at IS NULL`).get() as { n: number };
      expect(open.n).toBe(0);
      const ends = db.prepare(`SELECT DISTINCT end_reason FROM sessions WHERE id IN (SELECT session_id FROM statements WHERE text IN ('SELECT 41', 'INSERT INTO t VALUES (7)'))`).all();
      expect(ends).toEqual([{ end_reason: `broker shutdown: ${QUIT_REASON}` }]);
      const resolved = db.prepare(`SELECT detail FROM audit_events WHERE kind = 'approval_resolved'`).all() as { detail: string }[];
      expect(resolved.map((r) => JSON.parse(r.detail))).toContainEqual(expect.objectContaining({ approvalId: approval.id, resolution: 'denied', operator: OPERATOR, reason: QUIT_REASON }));
      const rec = db.prepare(`SELECT decision FROM statements WHERE text = 'INSERT INTO t VALUES (7)'`).all();
      expect(rec).toEqual([{ decision: 'deny' }]); // refused by the quit sequence's denial
    } finally {
      db.close();
    }
    expect(logs.join('\n')).toMatch(/1 waiting statement\(s\) denied/);
  });
});
