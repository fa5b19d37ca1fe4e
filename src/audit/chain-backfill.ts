import type Database from 'better-sqlite3';
import { hashedColumns, type ChainValue } from './chain.js';
import { ChainWriter } from './chain-writer.js';
import { SESSION_ENDED, SESSION_OPENED, sessionEndedDetail, sessionOpenedDetail } from './events.js';

const PAGE = 1000;

/**
 * Part of migration 2 (runs inside its transaction): rows written before the chain existed are chained now,
 * so from the upgrade on they are as tamper-evident as new ones (an edit made *before* the upgrade cannot be
 * detected; nothing recorded what they were). Order: a 'session_opened' event per existing session (by id),
 * then every existing statement (by id), then a 'session_ended' event per session that had ended. These events
 * carry `"backfilled": true`. Frozen with migration 2: it must keep producing the same chain.
 */
export function chainExistingRows(db: Database.Database): void {
  const w = new ChainWriter(db);
  const sessions = db.prepare<[number, number], { id: number; identity: string; target: string; clientAddr: string; applicationName: string | null; startedAt: number; endedAt: number | null; endReason: string | null }>(
    `SELECT id, identity, target, client_addr AS clientAddr, application_name AS applicationName,
            started_at AS startedAt, ended_at AS endedAt, end_reason AS endReason
       FROM sessions WHERE id > ? ORDER BY id LIMIT ?`,
  );
  const statements = db.prepare<[number, number], ChainValue[]>(
    `SELECT ${hashedColumns('statements')} FROM statements WHERE id > ? ORDER BY id LIMIT ?`,
  ).raw();

  w.transact(() => {
    forPages((after) => sessions.all(after, PAGE), (s) => s.id, (s) => {
      w.append('audit_events', [SESSION_OPENED, s.id, s.startedAt, sessionOpenedDetail(s, true)]);
    });
    forPages((after) => statements.all(after, PAGE), (r) => r[0] as number, (r) => w.stamp('statements', r));
    forPages((after) => sessions.all(after, PAGE), (s) => s.id, (s) => {
      if (s.endedAt !== null) w.append('audit_events', [SESSION_ENDED, s.id, s.endedAt, sessionEndedDetail(s.endReason, true)]);
    });
  });
  w.checkpoint();
}

/** Read by id pages (no statement may run while an iterator is open on the same connection). */
function forPages<T>(page: (afterId: number) => T[], idOf: (row: T) => number, each: (row: T) => void): void {
  let after = 0;
  for (;;) {
    const rows = page(after);
    for (const r of rows) each(r);
    if (rows.length < PAGE) return;
    after = idOf(rows.at(-1)!);
  }
}
