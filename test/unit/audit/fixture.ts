import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { AuditLog, type StatementRecord, type StatementResult } from '../../../src/audit/audit-log.js';
import { DATA_STORE_FILE, openDataStore, type DataStore } from '../../../src/audit/db.js';

/** A data directory with an open store and AuditLog; `raw` is a second, plain connection for tampering. */
export interface Store {
  dir: string;
  db: DataStore;
  log: AuditLog;
  raw(): Database.Database;
  reopen(): void;
  cleanup(): void;
}

export function makeStore(): Store {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-audit-'));
  const raws: Database.Database[] = [];
  const s: Store = {
    dir,
    db: openDataStore(dir),
    log: null as unknown as AuditLog,
    raw() {
      const r = new Database(join(dir, DATA_STORE_FILE));
      raws.push(r);
      return r;
    },
    reopen() {
      s.log.close();
      s.db.close();
      s.db = openDataStore(dir);
      s.log = new AuditLog(s.db, { onError: () => {} });
    },
    cleanup() {
      s.log.close();
      for (const d of [s.db, ...raws]) if (d.open) d.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  s.log = new AuditLog(s.db, { onError: () => {} });
  return s;
}

export const rec = (sessionId: number, text: string, extra: Partial<StatementRecord> = {}): StatementRecord => ({
  sessionId, protocol: 'simple', name: null, text, receivedAt: Date.now(), ...extra,
});

export function recordP(log: AuditLog, records: StatementRecord[]): Promise<{ err: Error | null; ids: readonly number[] | undefined }> {
  return new Promise((resolve) => log.record(records, (err, ids) => resolve({ err, ids })));
}

export function completeP(log: AuditLog, id: number, result: StatementResult): Promise<Error | null> {
  return new Promise((resolve) => log.complete(id, result, resolve));
}

export function openSession(log: AuditLog, identity = 'agent'): number {
  return log.openSession({ identity, target: 'prod', clientAddr: '127.0.0.1:5555', applicationName: 'psql' });
}

/**
 * A store with a bit of everything, in this chain order: two sessions opened, statements (one batch of three,
 * then one), a completion, a policy version, an event, a session end.
 */
export async function populate(log: AuditLog): Promise<{ a: number; b: number; ids: number[] }> {
  const a = openSession(log, 'ci-bot');
  const b = openSession(log, 'agent-7');
  const ids: number[] = [];
  const batch = await Promise.all([
    recordP(log, [rec(a, 'SELECT 1', { classes: ['read'], decision: 'allow', rule: 'read-all' })]),
    recordP(log, [rec(b, 'DELETE FROM users', { classes: ['write'], objects: ['w:public.users'], decision: 'deny', rule: 'no-writes', reason: 'writes are refused' })]),
    recordP(log, [rec(a, 'SELECT $1::int', { protocol: 'parse', name: 's1', params: ['42'], tags: { tool: 'psql', run: 'r1' } })]),
  ]);
  for (const r of batch) ids.push(...r.ids!);
  const more = await recordP(log, [rec(b, 'SELECT now()')]);
  ids.push(...more.ids!);
  if ((await completeP(log, ids[0]!, { completedAt: Date.now(), durationMs: 1.5, rows: 1, bytes: 20 })) !== null) throw new Error('complete failed');
  log.recordPolicyVersion('/etc/sluice.yaml', 'policy:\n  rules: []\n');
  log.event('approval_decided', b, { operator: 'alice', decision: 'deny' });
  log.endSession(a, 'client closed');
  return { a, b, ids };
}

/** chain order as stored: [table, id, chain_seq] sorted by chain_seq. */
export function chainOrder(db: Database.Database): { table: string; id: number; seq: number }[] {
  return db
    .prepare(
      `SELECT 'statements' AS "table", id, chain_seq AS seq FROM statements
       UNION ALL SELECT 'statement_results', id, chain_seq FROM statement_results
       UNION ALL SELECT 'audit_events', id, chain_seq FROM audit_events ORDER BY seq`,
    )
    .all() as { table: string; id: number; seq: number }[];
}
