import { ApprovalRequestError, type ApprovalDecision, type ApprovalRequestInfo } from '../approvals/queue.js';
import { bytesHash, shapeKey } from '../approvals/keys.js';
import type { ApprovalsPort } from './context.js';
import { columnsNamed } from '../sql/columns.js';
import type { StatementGate } from './statement-gate.js';
import type { Held, HoldPolicy, Resume } from './statement-loop.js';

/** How often a held session tells the server it is alive, so idle(-in-transaction) timeouts do not end it. */
export const KEEPALIVE_MS = 250;

/** How many earlier statements of the session an operator sees with an approval request. */
const RECENT = 5;

/** The statement loop's view of the approval queue for one session. */
export function holdPolicy(approvals: ApprovalsPort | undefined, sessionId: number): HoldPolicy {
  if (!approvals) return { canHold: false, sessionAllows: () => false };
  return { canHold: true, sessionAllows: (text) => approvals.sessionAllows(sessionId, shapeKey(text)) };
}

/** The last few statement texts of a session, for the operator deciding on the next one. */
export class RecentStatements {
  private readonly texts: string[] = [];

  push(text: string): void {
    if (this.texts.length === RECENT) this.texts.shift();
    this.texts.push(text.length > 2000 ? `${text.slice(0, 2000)}…` : text);
  }

  list(): string[] {
    return [...this.texts];
  }
}

/** What the operator is shown; bind parameters redacted when policy keeps them out of the audit log. */
export function approvalRequest(h: Held, gate: StatementGate, sessionId: number, target: string, recent: RecentStatements): ApprovalRequestInfo {
  const s = gate.session;
  const params = h.params && gate.redactParams ? h.params.map(() => '<redacted>') : h.params;
  return {
    sessionId,
    identity: s?.identity.name ?? '?',
    groups: s?.identity.groups ?? [],
    target,
    applicationName: s?.applicationName ?? null,
    clientAddr: s?.clientAddr ?? null,
    statement: h.text,
    classes: h.audit.classes,
    tables: h.audit.objects,
    columns: columnsNamed(h.text),
    recentStatements: recent.list(),
    params,
    explainParams: h.params,
    rule: h.audit.rule,
    maskedColumns: h.maskedColumns,
    shapeKey: shapeKey(h.text),
    bytesHash: bytesHash(h.text, h.params),
    ...(h.approvalTimeoutMs !== null ? { deadlineMs: h.approvalTimeoutMs } : {}),
  };
}

/** A request the queue could not take (full, closed, not auditable) refuses the statement at once. */
export function refusedRequest(err: unknown): Resume {
  if (!(err instanceof ApprovalRequestError)) throw err;
  return { kind: 'refuse', refusal: err.refusal, note: `not held for approval: ${err.refusal.message}` };
}

/**
 * The operator's decision as the statement loop takes it. Null: nothing is owed to the client (the session is
 * ending). An approve-once grant is spent here, right before the statement is forwarded.
 */
export function resumeFor(d: ApprovalDecision, approvals: ApprovalsPort, cancelled: boolean): Resume | null {
  switch (d.kind) {
    case 'approved':
      if (d.scope === 'once' && !approvals.redeem(d.approvalId, d.bytesHash)) {
        return { kind: 'refuse', refusal: { code: '42501', message: `approval ${d.approvalId} was already used`, hint: 'Each approve-once grant runs its statement once; ask again.' }, note: `approval ${d.approvalId} could not be redeemed` };
      }
      return { kind: 'approve', note: `approved ${d.scope === 'once' ? 'once' : 'for this session'} by ${d.operator} (approval ${d.approvalId})` };
    case 'denied':
      return { kind: 'refuse', refusal: d.refusal, note: d.timedOut ? `approval ${d.approvalId} timed out` : `denied by an operator (approval ${d.approvalId}): ${d.refusal.message}` };
    case 'voided':
      if (!cancelled) return null;
      return {
        kind: 'refuse',
        refusal: { code: '57014', message: 'canceling statement due to user request', hint: 'The statement was waiting for approval and did not run.' },
        note: `cancelled by the client while waiting for approval ${d.approvalId}`,
      };
  }
}
