/**
 * Read-only queries behind listSessions / listStatements. They run on the broker's thread (better-sqlite3 is
 * synchronous), so every one is bounded by a limit; a whole-session export for replay belongs in a worker.
 * A session's statements are found by id range plus session_id (statements has no session index, see migration 1).
 */
import type { DataStore } from '../audit/db.js';
import type { SessionSummary, StatementSummary, ValidArgs } from '../contract/api.js';

const IN_SESSION = `st.id BETWEEN s.first_statement_id AND COALESCE(s.last_statement_id, 9223372036854775807) AND st.session_id = s.id`;

export function listSessions(db: DataStore, a: ValidArgs<'listSessions'>): SessionSummary[] {
  const hadRefusals = a.hadRefusals === undefined ? null : a.hadRefusals ? 1 : 0;
  return db
    .prepare(
      `SELECT s.id, s.identity, s.target, s.client_addr AS clientAddr, s.application_name AS applicationName,
              s.started_at AS startedAt, s.ended_at AS endedAt, s.end_reason AS endReason,
              (SELECT COUNT(*) FROM statements st WHERE ${IN_SESSION}) AS statements,
              (SELECT COUNT(*) FROM statements st WHERE ${IN_SESSION} AND st.decision = 'deny') AS refusals
         FROM sessions s
        WHERE (@identity IS NULL OR s.identity = @identity)
          AND (@target IS NULL OR s.target = @target)
          AND (@until IS NULL OR s.started_at < @until)
          AND (@since IS NULL OR s.ended_at IS NULL OR s.ended_at >= @since)
          AND (@beforeId IS NULL OR s.id < @beforeId)
          AND (@hadRefusals IS NULL
               OR EXISTS (SELECT 1 FROM statements st WHERE ${IN_SESSION} AND st.decision = 'deny') = @hadRefusals)
        ORDER BY s.id DESC LIMIT @limit`,
    )
    .all({
      identity: a.identity ?? null, target: a.target ?? null, since: a.since ?? null, until: a.until ?? null,
      beforeId: a.beforeId ?? null, hadRefusals, limit: a.limit,
    }) as SessionSummary[];
}

interface StatementJoinRow {
  id: number; sessionId: number; seq: number; receivedAt: number; protocol: StatementSummary['protocol'];
  name: string | null; text: string; classes: string | null; objects: string | null;
  decision: StatementSummary['decision']; rule: string | null; reason: string | null; params: string | null;
  completedAt: number | null; durationMs: number | null; rows: number | null; bytes: number | null;
  errorCode: string | null; errorMessage: string | null; maskedFields: number | null;
}

/** Statements of a session in order, with how each ended; null when there is no such session. */
export function listStatements(db: DataStore, a: ValidArgs<'listStatements'>): StatementSummary[] | null {
  if (!db.prepare('SELECT 1 FROM sessions WHERE id = ?').get(a.sessionId)) return null;
  const rows = db
    .prepare(
      `SELECT st.id, st.session_id AS sessionId, st.seq, st.received_at AS receivedAt, st.protocol, st.name, st.text,
              st.classes, st.objects, st.decision, st.rule, st.reason, st.params,
              r.completed_at AS completedAt, r.duration_ms AS durationMs, r.rows, r.bytes,
              r.error_code AS errorCode, r.error_message AS errorMessage, r.masked_fields AS maskedFields
         FROM sessions s JOIN statements st ON ${IN_SESSION}
         LEFT JOIN statement_results r ON r.id = (SELECT MAX(id) FROM statement_results WHERE statement_id = st.id)
        WHERE s.id = ? AND st.seq > ? ORDER BY st.id LIMIT ?`,
    )
    .all(a.sessionId, a.afterSeq, a.limit) as StatementJoinRow[];
  return rows.map((r) => ({
    id: r.id, sessionId: r.sessionId, seq: r.seq, receivedAt: r.receivedAt, protocol: r.protocol, name: r.name,
    text: r.text, classes: jsonList(r.classes), objects: jsonList(r.objects), decision: r.decision, rule: r.rule,
    reason: r.reason, params: r.params === null ? null : (JSON.parse(r.params) as (string | null)[]),
    result: r.completedAt === null ? null : {
      completedAt: r.completedAt, durationMs: r.durationMs ?? 0, rows: r.rows, bytes: r.bytes,
      errorCode: r.errorCode, errorMessage: r.errorMessage, maskedFields: r.maskedFields,
    },
  }));
}

function jsonList(text: string | null): string[] {
  if (text === null) return [];
  const v: unknown = JSON.parse(text);
  return Array.isArray(v) ? v.map(String) : [];
}
