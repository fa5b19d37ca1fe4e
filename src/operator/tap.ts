import type { AuditLog, RecordDone, StatementRecord } from '../audit/audit-log.js';
import type { SluiceEvent } from '../contract/api.js';
import type { EventBus } from './event-bus.js';

/** The part of the audit log the proxy writes through (ProxyContext['audit']). */
export type ProxyAudit = Pick<AuditLog, 'openSession' | 'endSession' | 'record' | 'complete' | 'event'>;

const FEED_TEXT_LIMIT = 4000;
/** Forwarded statements whose completion is still to come; bounded so a statement that never completes cannot leak. */
const MAX_AWAITING_COMPLETION = 20_000;

export interface AuditTap {
  /** Hand this to the proxy instead of the audit log: same writes, plus contract events. */
  readonly audit: ProxyAudit;
  /** Sessions open now, by id -> target. */
  readonly openSessions: ReadonlyMap<number, string>;
  readonly counts: { allow: number; deny: number; review: number };
}

/**
 * Session and statement events come from what the proxy records, not from the proxy itself: the audit log is the
 * one place every session and decided statement passes (after commit), so the feed shows exactly what the audit
 * trail holds, and the proxy needs no knowledge of the UI.
 */
export function tapAudit(audit: AuditLog, bus: EventBus, onSessionEnd: (sessionId: number, reason: string) => void): AuditTap {
  const openSessions = new Map<number, string>();
  const sessionInfo = new Map<number, { identity: string; target: string }>();
  const awaiting = new Map<number, number>();
  const counts = { allow: 0, deny: 0, review: 0 };
  const emitDecided = (records: StatementRecord[], ids: readonly number[]) => {
    const at = Date.now();
    records.forEach((r, i) => {
      if (r.decision) counts[r.decision]++;
      if (!bus.active) return;
      const who = sessionInfo.get(r.sessionId) ?? { identity: '?', target: '?' };
      if (r.decision !== 'deny') {
        if (awaiting.size >= MAX_AWAITING_COMPLETION) awaiting.delete(awaiting.keys().next().value!);
        awaiting.set(ids[i]!, r.sessionId);
      }
      const event: SluiceEvent = {
        type: 'statement_decided',
        at,
        statement: {
          id: ids[i]!, sessionId: r.sessionId, identity: who.identity, target: who.target, receivedAt: r.receivedAt, protocol: r.protocol,
          text: r.text.length > FEED_TEXT_LIMIT ? `${r.text.slice(0, FEED_TEXT_LIMIT)}…` : r.text,
          decision: r.decision ?? null, rule: r.rule ?? null, reason: r.reason ?? null,
          classes: [...(r.classes ?? [])], objects: [...(r.objects ?? [])],
        },
      };
      bus.emit(event);
    });
  };
  const tapped: ProxyAudit = {
    openSession(s) {
      const id = audit.openSession(s);
      openSessions.set(id, s.target);
      sessionInfo.set(id, { identity: s.identity, target: s.target });
      bus.emit({ type: 'session_opened', at: Date.now(), session: { id, ...s } });
      return id;
    },
    endSession(id, reason) {
      audit.endSession(id, reason);
      // A held statement of a session that ended can never be answered: its approval is void.
      onSessionEnd(id, reason);
      sessionInfo.delete(id);
      if (openSessions.delete(id)) bus.emit({ type: 'session_closed', at: Date.now(), sessionId: id, reason });
    },
    record(records, done: RecordDone) {
      audit.record(records, (err, ids) => {
        // The statement is forwarded from `done`: the feed comes second.
        try {
          done(err, ids);
        } finally {
          if (!err && ids) emitDecided(records, ids);
        }
      });
    },
    complete(statementId, result, done) {
      audit.complete(statementId, result, done);
      const sessionId = awaiting.get(statementId);
      if (sessionId === undefined) return;
      awaiting.delete(statementId);
      if (!bus.active) return;
      bus.emit({
        type: 'statement_completed', at: Date.now(),
        result: { statementId, sessionId, durationMs: result.durationMs, rows: result.rows ?? null, errorCode: result.errorCode ?? null, maskedFields: result.maskedFields ?? null },
      });
    },
    event: (kind, sessionId, detail) => audit.event(kind, sessionId, detail),
  };
  return { audit: tapped, openSessions, counts };
}
