/**
 * Event kinds the audit store writes itself. Their `detail` shapes are what `verifyAudit` checks the sessions
 * and policy_versions rows against, so `AuditLog.event()` refuses them from callers.
 */
export const SESSION_OPENED = 'session_opened';
export const SESSION_ENDED = 'session_ended';
export const POLICY_APPLIED = 'policy_applied';
export const RESERVED_EVENT_KINDS: ReadonlySet<string> = new Set([SESSION_OPENED, SESSION_ENDED, POLICY_APPLIED]);

/** session_opened: `at` = sessions.started_at. */
export interface SessionOpenedDetail {
  identity: string;
  target: string;
  clientAddr: string;
  applicationName: string | null;
  /** Set on events written by migration 2 for sessions that existed before the chain. */
  backfilled?: true;
}

/** session_ended: `at` = sessions.ended_at. */
export interface SessionEndedDetail {
  reason: string | null;
  backfilled?: true;
}

/** policy_applied: sha256 (hex) of policy_versions.text as UTF-8. */
export interface PolicyAppliedDetail {
  policyVersionId: number;
  sha256: string;
  sourcePath: string | null;
}

export function sessionOpenedDetail(s: { identity: string; target: string; clientAddr: string; applicationName: string | null }, backfilled = false): string {
  const d: SessionOpenedDetail = { identity: s.identity, target: s.target, clientAddr: s.clientAddr, applicationName: s.applicationName };
  if (backfilled) d.backfilled = true;
  return JSON.stringify(d);
}

export function sessionEndedDetail(reason: string | null, backfilled = false): string {
  const d: SessionEndedDetail = { reason };
  if (backfilled) d.backfilled = true;
  return JSON.stringify(d);
}
