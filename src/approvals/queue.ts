/**
 * The approval queue: statements that policy sent to review wait here, on the wire, until an operator decides, the
 * deadline passes, or the wait is voided (client cancel or disconnect, upstream lost, Sluice stopping).
 *
 * Each approval is settled exactly once; everything after that (a second operator clicking, a decision after the
 * deadline) changes nothing and is told so. Every request, settlement and late attempt is an audit event (hash
 * chained). An approval that cannot be recorded is not granted: fail closed.
 */
import { randomBytes } from 'node:crypto';
import type { ApprovalResolution, DecideResult, ImpactEstimate, PendingApproval, ResolvedApproval, SluiceEvent } from '../contract/api.js';
import { formatStatement } from './format.js';

export const DEFAULT_APPROVAL_DEADLINE_MS = 120_000;
const MAX_DEADLINE_MS = 24 * 3_600_000;
const TIMED_OUT = 'approval timed out';

/** Audit event kinds written by the queue (AuditLog.event). */
export const APPROVAL_REQUESTED = 'approval_requested';
export const APPROVAL_RESOLVED = 'approval_resolved';
export const APPROVAL_LATE_DECISION = 'approval_late_decision';

/** What the statement loop knows about the held statement. */
export interface ApprovalRequestInfo {
  sessionId: number;
  identity: string;
  groups?: readonly string[];
  target: string;
  applicationName: string | null;
  clientAddr?: string | null;
  /** The statement text as received. */
  statement: string;
  classes: readonly string[];
  /** Objects as the audit writes them ('r:public.users', 'w:public.orders'). */
  tables: readonly string[];
  columns?: readonly string[];
  maskedColumns?: readonly string[];
  /** The previous few statements of the session, oldest first. */
  recentStatements?: readonly string[];
  /** Bind parameters as the operator may see them (already redacted if policy says so). */
  params: readonly (string | null)[] | null;
  /** The real bind parameters for the EXPLAIN estimate when `params` is redacted; never stored or shown. */
  explainParams?: readonly (string | null)[] | null;
  rule?: string | null;
  /** approve-for-session key (keys.ts shapeKey). */
  shapeKey: string;
  /** approve-once key: the exact statement bytes and bind parameters (keys.ts bytesHash). */
  bytesHash: string;
  /** Time the operator has, in ms (default 120 s). */
  deadlineMs?: number;
}

/** A refusal ready for an ErrorResponse (SQLSTATE, message, hint). */
export interface ApprovalRefusal {
  code: string;
  message: string;
  hint: string;
}

/** What the held statement's wait ends with. The promise never rejects. */
export type ApprovalDecision =
  | { kind: 'approved'; scope: 'once'; approvalId: string; bytesHash: string; operator: string }
  | { kind: 'approved'; scope: 'session'; approvalId: string; shapeKey: string; operator: string }
  /** Denied by an operator (42501) or by the deadline (57014): answer the client with `refusal`, not FATAL. */
  | { kind: 'denied'; approvalId: string; timedOut: boolean; refusal: ApprovalRefusal }
  /** The caller voided it (or Sluice is stopping): nothing is owed to the client from the queue. */
  | { kind: 'voided'; approvalId: string; reason: string };

export type OperatorDecision =
  | { decision: 'approve_once'; reason?: string | undefined }
  | { decision: 'approve_session'; reason?: string | undefined }
  | { decision: 'deny'; reason: string };

/** Thrown by request(): the statement must be refused with `refusal` (nothing is pending). */
export class ApprovalRequestError extends Error {
  constructor(readonly refusal: ApprovalRefusal) {
    super(refusal.message);
  }
}

/** Thrown by decide() when a grant cannot be audited: nothing changed, the approval is still pending. */
export class ApprovalAuditError extends Error {}

export interface ApprovalQueueOptions {
  audit: { event(kind: string, sessionId: number | null, detail: Readonly<Record<string, unknown>> | null): number };
  emit?: (event: SluiceEvent) => void;
  /** Runs after the request is registered; its result is shown with the approval (approval_updated). */
  estimate?: (approval: PendingApproval, params: readonly (string | null)[] | null) => Promise<ImpactEstimate>;
  /** Where failures nobody waits for go (an audit write of a timeout). */
  onError?: (message: string) => void;
  now?: () => number;
  /** More waiting statements than this are refused rather than queued (default 1000). */
  maxPending?: number;
  /** How many settled approvals are remembered to answer late decisions (default 1000). */
  rememberResolved?: number;
}

interface Entry {
  view: PendingApproval;
  shapeKey: string;
  bytesHash: string;
  timer: NodeJS.Timeout;
  settle: (d: ApprovalDecision) => void;
}

interface Settled {
  approval: ResolvedApproval;
  bytesHash: string;
  redeemed: boolean;
}

export class ApprovalQueue {
  private readonly pending = new Map<string, Entry>();
  private readonly settled = new Map<string, Settled>();
  private readonly sessionShapes = new Map<number, Set<string>>();
  private readonly now: () => number;
  private closed = false;

  constructor(private readonly opts: ApprovalQueueOptions) {
    this.now = opts.now ?? Date.now;
  }

  /**
   * Hold a statement for an operator. Throws ApprovalRequestError when it cannot wait (queue closed or full, or
   * the request cannot be audited): refuse the statement then.
   */
  request(info: ApprovalRequestInfo): { id: string; decision: Promise<ApprovalDecision> } {
    if (this.closed) throw new ApprovalRequestError({ code: '57P01', message: 'Sluice is shutting down: the statement cannot wait for approval', hint: 'Reconnect when Sluice is back.' });
    if (this.pending.size >= (this.opts.maxPending ?? 1000)) {
      throw new ApprovalRequestError({ code: '53400', message: 'too many statements are waiting for approval', hint: 'Retry later; an operator must work through the pending approvals first.' });
    }
    const id = this.newId();
    const requestedAt = this.now();
    const deadlineMs = Math.min(Math.max(info.deadlineMs ?? DEFAULT_APPROVAL_DEADLINE_MS, 1), MAX_DEADLINE_MS);
    const view: PendingApproval = {
      id, sessionId: info.sessionId, identity: info.identity, groups: [...(info.groups ?? [])], target: info.target,
      applicationName: info.applicationName, clientAddr: info.clientAddr ?? null, statement: info.statement,
      formatted: formatStatement(info.statement), classes: [...info.classes], tables: [...info.tables],
      columns: [...(info.columns ?? [])], maskedColumns: [...(info.maskedColumns ?? [])],
      recentStatements: [...(info.recentStatements ?? [])], params: info.params ? [...info.params] : null,
      rule: info.rule ?? null, requestedAt, deadlineAt: requestedAt + deadlineMs,
      impact: this.opts.estimate ? { kind: 'pending' } : { kind: 'unavailable', reason: 'no impact estimator configured' },
    };
    try {
      // Parameters stay out of this record: the statement record keeps them under the policy's redaction rule.
      this.opts.audit.event(APPROVAL_REQUESTED, info.sessionId, {
        approvalId: id, statement: info.statement, classes: view.classes, tables: view.tables, rule: view.rule,
        bytesHash: info.bytesHash, shapeKey: info.shapeKey, deadlineAt: view.deadlineAt,
      });
    } catch (err) {
      throw new ApprovalRequestError({ code: '58030', message: `the approval request could not be recorded: ${(err as Error).message}`, hint: 'Sluice refuses statements it cannot audit; check the data directory.' });
    }
    let settle!: (d: ApprovalDecision) => void;
    const decision = new Promise<ApprovalDecision>((resolve) => (settle = resolve));
    const timer = setTimeout(() => this.timeout(id), deadlineMs);
    this.pending.set(id, { view, shapeKey: info.shapeKey, bytesHash: info.bytesHash, timer, settle });
    this.emit({ type: 'approval_requested', at: requestedAt, approval: snapshot(view) });
    if (this.opts.estimate) this.runEstimate(id, this.opts.estimate, view, info.explainParams ?? info.params);
    return { id, decision };
  }

  /** An operator's decision. Late or unknown decisions change nothing and say why. */
  decide(id: string, d: OperatorDecision, operator: string): DecideResult {
    const entry = this.pending.get(id);
    if (!entry) return this.late(id, d, operator);
    const reason = d.reason?.trim() || null;
    const resolution: ApprovalResolution =
      d.decision === 'deny' ? { kind: 'denied', operator, reason: reason ?? 'denied by the operator' }
        : d.decision === 'approve_once' ? { kind: 'approved_once', operator, reason }
          : { kind: 'approved_session', operator, reason };
    try {
      this.record(entry, resolution);
    } catch (err) {
      // A grant that is not in the audit trail is not given; a denial stands anyway (it is the safe side).
      if (resolution.kind !== 'denied') throw new ApprovalAuditError(`the decision could not be recorded, the statement still waits: ${(err as Error).message}`);
      this.opts.onError?.(`approval ${id}: denial could not be recorded: ${(err as Error).message}`);
    }
    if (resolution.kind === 'approved_session') {
      let shapes = this.sessionShapes.get(entry.view.sessionId);
      if (!shapes) this.sessionShapes.set(entry.view.sessionId, (shapes = new Set()));
      shapes.add(entry.shapeKey);
    }
    const approval = this.finish(entry, resolution);
    entry.settle(decisionFor(entry, resolution));
    return { outcome: 'applied', approval };
  }

  /** Client cancel or disconnect, lost upstream: the wait ends now. False if it was not pending. */
  void(id: string, reason: string): boolean {
    const entry = this.pending.get(id);
    if (!entry) return false;
    const resolution: ApprovalResolution = { kind: 'voided', reason };
    this.recordQuietly(entry, resolution);
    this.finish(entry, resolution);
    entry.settle({ kind: 'voided', approvalId: id, reason });
    return true;
  }

  /** The session ended: void its pending approvals and forget its approve-for-session grants. */
  endSession(sessionId: number, reason: string): void {
    for (const [id, e] of this.pending) if (e.view.sessionId === sessionId) this.void(id, reason);
    this.sessionShapes.delete(sessionId);
  }

  /** Whether an operator approved this statement shape for the rest of this session. */
  sessionAllows(sessionId: number, shapeKey: string): boolean {
    return this.sessionShapes.get(sessionId)?.has(shapeKey) ?? false;
  }

  /**
   * Spend an approve-once grant: true exactly once, and only for the bytes it was granted for. Call it right
   * before forwarding the held statement; false means refuse.
   */
  redeem(id: string, hash: string): boolean {
    const s = this.settled.get(id);
    if (!s || s.redeemed || s.approval.resolution.kind !== 'approved_once' || s.bytesHash !== hash) return false;
    s.redeemed = true;
    return true;
  }

  list(): PendingApproval[] {
    return [...this.pending.values()].map((e) => snapshot(e.view)).sort((a, b) => a.requestedAt - b.requestedAt);
  }

  get size(): number {
    return this.pending.size;
  }

  /** Void everything (Sluice stopping) and refuse new requests. */
  close(reason = 'Sluice is shutting down'): void {
    this.closed = true;
    for (const id of [...this.pending.keys()]) this.void(id, reason);
  }

  private timeout(id: string): void {
    const entry = this.pending.get(id);
    if (!entry) return;
    const seconds = Math.round((entry.view.deadlineAt - entry.view.requestedAt) / 1000);
    const resolution: ApprovalResolution = { kind: 'timed_out', reason: `${TIMED_OUT}: no operator decided within ${seconds} s` };
    this.recordQuietly(entry, resolution);
    this.finish(entry, resolution);
    entry.settle(decisionFor(entry, resolution));
  }

  private late(id: string, d: OperatorDecision, operator: string): DecideResult {
    const s = this.settled.get(id);
    try {
      this.opts.audit.event(APPROVAL_LATE_DECISION, s?.approval.sessionId ?? null, {
        approvalId: id, decision: d.decision, operator, reason: d.reason ?? null, settledAs: s?.approval.resolution.kind ?? null,
      });
    } catch (err) {
      this.opts.onError?.(`approval ${id}: late decision could not be recorded: ${(err as Error).message}`);
    }
    if (!s) return { outcome: 'not_applied', why: 'unknown', message: `no approval ${id} is pending (unknown or settled long ago); nothing changed`, approval: null };
    return { outcome: 'not_applied', why: 'already_resolved', message: `approval ${id} was already settled (${describe(s.approval.resolution)}); nothing changed`, approval: s.approval };
  }

  private record(entry: Entry, resolution: ApprovalResolution): void {
    const v = entry.view;
    this.opts.audit.event(APPROVAL_RESOLVED, v.sessionId, {
      approvalId: v.id, resolution: resolution.kind, operator: 'operator' in resolution ? resolution.operator : null,
      reason: resolution.reason, waitedMs: this.now() - v.requestedAt, bytesHash: entry.bytesHash, shapeKey: entry.shapeKey,
    });
  }

  private recordQuietly(entry: Entry, resolution: ApprovalResolution): void {
    try {
      this.record(entry, resolution);
    } catch (err) {
      this.opts.onError?.(`approval ${entry.view.id}: ${resolution.kind} could not be recorded: ${(err as Error).message}`);
    }
  }

  private finish(entry: Entry, resolution: ApprovalResolution): ResolvedApproval {
    clearTimeout(entry.timer);
    this.pending.delete(entry.view.id);
    const v = entry.view;
    const resolvedAt = this.now();
    const approval: ResolvedApproval = {
      id: v.id, sessionId: v.sessionId, identity: v.identity, target: v.target, statement: v.statement,
      requestedAt: v.requestedAt, resolvedAt, waitedMs: resolvedAt - v.requestedAt, resolution,
    };
    this.settled.set(v.id, { approval, bytesHash: entry.bytesHash, redeemed: false });
    const keep = this.opts.rememberResolved ?? 1000;
    while (this.settled.size > keep) this.settled.delete(this.settled.keys().next().value!);
    this.emit({ type: 'approval_resolved', at: resolvedAt, approval });
    return approval;
  }

  private runEstimate(id: string, estimate: NonNullable<ApprovalQueueOptions['estimate']>, view: PendingApproval, params: readonly (string | null)[] | null): void {
    const apply = (impact: ImpactEstimate) => {
      const entry = this.pending.get(id);
      if (!entry) return;
      entry.view.impact = impact;
      this.emit({ type: 'approval_updated', at: this.now(), approval: snapshot(entry.view) });
    };
    let started: Promise<ImpactEstimate>;
    try {
      started = estimate(snapshot(view), params);
    } catch (err) {
      started = Promise.reject(err as Error);
    }
    started.then(apply, (err: unknown) => apply({ kind: 'unavailable', reason: err instanceof Error ? err.message : String(err) }));
  }

  private emit(event: SluiceEvent): void {
    try {
      this.opts.emit?.(event);
    } catch (err) {
      this.opts.onError?.(`approval event listener failed: ${(err as Error).message}`);
    }
  }

  /** Short enough to type (`sluice approve 3f9c2a1b`), random so one cannot be guessed from another. */
  private newId(): string {
    for (;;) {
      const id = randomBytes(4).toString('hex');
      if (!this.pending.has(id) && !this.settled.has(id)) return id;
    }
  }
}

function decisionFor(entry: Entry, r: ApprovalResolution): ApprovalDecision {
  const approvalId = entry.view.id;
  switch (r.kind) {
    case 'approved_once': return { kind: 'approved', scope: 'once', approvalId, bytesHash: entry.bytesHash, operator: r.operator };
    case 'approved_session': return { kind: 'approved', scope: 'session', approvalId, shapeKey: entry.shapeKey, operator: r.operator };
    case 'denied':
      return {
        kind: 'denied', approvalId, timedOut: false,
        refusal: { code: '42501', message: `statement denied by operator ${r.operator}: ${r.reason}`, hint: 'The statement did not run; your transaction and connection are intact. Change the statement or ask the operator.' },
      };
    case 'timed_out':
      return {
        kind: 'denied', approvalId, timedOut: true,
        refusal: { code: '57014', message: r.reason, hint: 'The statement did not run. Retry when an operator is available to approve it.' },
      };
    case 'voided': return { kind: 'voided', approvalId, reason: r.reason };
  }
}

function describe(r: ApprovalResolution): string {
  switch (r.kind) {
    case 'approved_once': return `approved once by ${r.operator}`;
    case 'approved_session': return `approved for the session by ${r.operator}`;
    case 'denied': return `denied by ${r.operator}: ${r.reason}`;
    case 'timed_out': return r.reason;
    case 'voided': return `voided: ${r.reason}`;
  }
}

function snapshot(v: PendingApproval): PendingApproval {
  return { ...v, impact: { ...v.impact } };
}
