import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditLog } from '../../../src/audit/audit-log.js';
import { openDataStore, schemaVersion, type DataStore } from '../../../src/audit/db.js';
import { migrations } from '../../../src/audit/migrations.js';
import { verifyAudit } from '../../../src/audit/verify.js';
import { chainOrder, rec, recordP } from './fixture.js';

let dir: string;
const open: DataStore[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-migrate-'));
});
afterEach(() => {
  for (const d of open.splice(0)) if (d.open) d.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A store as the first release left it: schema 1, rows written the way its AuditLog wrote them. */
function releaseOneStore(): void {
  const db = openDataStore(dir, migrations.slice(0, 1));
  const session = db.prepare('INSERT INTO sessions (identity, target, client_addr, application_name, started_at) VALUES (?, ?, ?, ?, ?)');
  const stmt = db.prepare("INSERT INTO statements (session_id, seq, received_at, protocol, name, text) VALUES (?, ?, ?, 'simple', NULL, ?)");
  session.run('ci-bot', 'prod', '10.0.0.5:4000', 'psql', 1000);
  session.run('agent', 'prod', '10.0.0.6:4000', null, 2000);
  stmt.run(1, 1, 1100, 'SELECT 1');
  stmt.run(2, 1, 2100, 'SELECT 2');
  stmt.run(1, 2, 1200, 'SELECT 3');
  db.prepare("UPDATE sessions SET first_statement_id = id, ended_at = 1300, end_reason = 'client closed', last_statement_id = 3 WHERE id = 1").run();
  db.prepare('UPDATE sessions SET first_statement_id = 2 WHERE id = 2').run();
  db.close();
}

describe('migration 2 on a store with release-1 rows', () => {
  it('adds the decision columns and tables, and chains the existing rows', () => {
    releaseOneStore();
    const db = openDataStore(dir);
    open.push(db);
    expect(schemaVersion(db)).toBe(migrations.at(-1)!.version);
    // opened events (by session id), then statements (by id), then the ended event of the session that had ended
    expect(chainOrder(db).map((o) => [o.table, o.id, o.seq])).toEqual([
      ['audit_events', 1, 1], ['audit_events', 2, 2],
      ['statements', 1, 3], ['statements', 2, 4], ['statements', 3, 5],
      ['audit_events', 3, 6],
    ]);
    const events = db.prepare('SELECT kind, session_id AS sessionId, at, detail FROM audit_events ORDER BY id').all();
    expect(events).toEqual([
      { kind: 'session_opened', sessionId: 1, at: 1000, detail: JSON.stringify({ identity: 'ci-bot', target: 'prod', clientAddr: '10.0.0.5:4000', applicationName: 'psql', backfilled: true }) },
      { kind: 'session_opened', sessionId: 2, at: 2000, detail: JSON.stringify({ identity: 'agent', target: 'prod', clientAddr: '10.0.0.6:4000', applicationName: null, backfilled: true }) },
      { kind: 'session_ended', sessionId: 1, at: 1300, detail: JSON.stringify({ reason: 'client closed', backfilled: true }) },
    ]);
    expect(db.prepare('SELECT text, decision, classes FROM statements WHERE id = 1').get()).toEqual({ text: 'SELECT 1', decision: null, classes: null });
    expect(verifyAudit(db)).toMatchObject({ ok: true, rows: 6 });
  });

  it('lets the new writer continue the chain, and the old rows are now tamper-evident', async () => {
    releaseOneStore();
    const db = openDataStore(dir);
    open.push(db);
    const log = new AuditLog(db);
    expect(log.markOpenSessionsAborted('Sluice stopped while the session was open')).toBe(1); // session 2, at its last statement
    expect(db.prepare('SELECT ended_at FROM sessions WHERE id = 2').pluck().get()).toBe(2100);
    const s = log.openSession({ identity: 'new', target: 'prod', clientAddr: 'x', applicationName: null });
    expect((await recordP(log, [rec(s, 'SELECT 4', { decision: 'allow' })])).err).toBeNull();
    log.close();
    expect(verifyAudit(db)).toMatchObject({ ok: true, rows: 9 });
    db.prepare("UPDATE statements SET text = 'SELECT 33' WHERE id = 3").run();
    expect(verifyAudit(db)).toMatchObject({ ok: false, firstBad: { table: 'statements', id: 3, seq: 5, problem: 'changed' } });
  });

  it('migrates an empty release-1 store to an empty chain', () => {
    openDataStore(dir, migrations.slice(0, 1)).close();
    const db = openDataStore(dir);
    open.push(db);
    expect(verifyAudit(db)).toMatchObject({ ok: true, rows: 0, head: { seq: 0, hash: '0'.repeat(64) } });
  });
});
