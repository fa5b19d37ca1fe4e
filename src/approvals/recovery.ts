import type Database from 'better-sqlite3';
import { APPROVAL_REQUESTED, APPROVAL_RESOLVED } from './queue.js';

/**
 * Crash recovery, at startup: approvals requested by a previous run that never got an outcome (Sluice was killed
 * while they waited) are recorded as voided now, so every request in the audit trail has exactly one outcome. Their
 * statements never ran: the wait lived in that process and the client's connection died with it.
 */
export function voidOrphanedApprovals(db: Database.Database, audit: { event(kind: string, sessionId: number | null, detail: Readonly<Record<string, unknown>> | null): number }): number {
  const orphans = db.prepare(
    `SELECT r.session_id AS sessionId, json_extract(r.detail, '$.approvalId') AS approvalId, r.at AS at
       FROM audit_events r
      WHERE r.kind = ? AND NOT EXISTS (
        SELECT 1 FROM audit_events s
         WHERE s.kind = ? AND s.id > r.id AND json_extract(s.detail, '$.approvalId') = json_extract(r.detail, '$.approvalId'))`,
  ).all(APPROVAL_REQUESTED, APPROVAL_RESOLVED) as { sessionId: number | null; approvalId: string; at: number }[];
  for (const o of orphans) {
    audit.event(APPROVAL_RESOLVED, o.sessionId, {
      approvalId: o.approvalId, resolution: 'voided', operator: null,
      reason: 'Sluice stopped before an operator decided; the statement did not run', waitedMs: Date.now() - o.at,
    });
  }
  return orphans.length;
}
