import type { StatementRecord } from '../audit/audit-log.js';
import { Frontend, SqlState } from '../protocol/codes.js';
import type { PgError } from '../protocol/messages.js';
import { ExtendedState, type PreparedEntry, type Undo } from './extended-state.js';
import { refusalExtended, refusalQuery, type Refusal, type ResponseTracker } from './refusal.js';
import { StatementGate, type GateAudit, type GateVerdict } from './statement-gate.js';
import { describePortal, type MaskResults } from './mask-results.js';

/** What the server will answer, in forwarding order; `record` indexes `records` (its id is known after commit). */
export type PendingAnswer = { kind: 'query' | 'execute'; record: number } | { kind: 'cycle' };

export type LoopResult =
  | { kind: 'forward'; out: Buffer[]; records: StatementRecord[]; answers: PendingAnswer[]; terminate: boolean; held: Held | null }
  | { kind: 'fatal'; error: Omit<PgError, 'severity'>; reason: string };

/** Whether and how a `review` statement can wait for an operator. */
export interface HoldPolicy {
  /** False: nobody can be asked (no approval queue), so review is refused at once. */
  canHold: boolean;
  /** An operator approved this statement's shape for the rest of the session. */
  sessionAllows(text: string): boolean;
}

/**
 * A statement policy sent to review, held with everything the client sent after it. Nothing of it was processed:
 * once decided, the frames are fed back through `onClientFrames` with a `Resume`.
 */
export interface Held {
  frames: Buffer[];
  /** A simple Query, or the Bind of a statement whose Parse policy sent to review. */
  protocol: 'simple' | 'bind';
  name: string | null;
  text: string;
  audit: GateAudit;
  /** The held Bind's parameters. */
  params: (string | null)[] | null;
  approvalTimeoutMs: number | null;
  receivedAt: number;
  /** Masked columns the statement reads (shown to the operator). */
  maskedColumns: string[];
}

/** How a held statement's wait ended: it runs (`note` goes into its audit record) or is refused with `refusal`. */
export type Resume = { kind: 'approve'; note: string } | { kind: 'refuse'; refusal: Refusal; note: string };

const NO_HOLD: HoldPolicy = { canHold: false, sessionAllows: () => false };

const INVALID_UTF8: GateVerdict = {
  allowed: false,
  audit: { classes: [], objects: [], decision: 'deny', rule: 'encoding', reason: 'invalid UTF-8', tags: null },
  refusal: { code: '22021', message: 'invalid byte sequence for encoding "UTF8" in the statement', hint: 'Send statements as UTF-8 text.' },
};

/**
 * The client half of the statement loop: every frame from the client is decided here, in order. Allowed messages
 * are forwarded as the same bytes; a refused one is replaced by a refusal the server raises (see refusal.ts). After a
 * refused Parse everything up to Sync is discarded, as PostgreSQL does after an error in the extended protocol.
 */
export class StatementLoop {
  private readonly ext = new ExtendedState();
  private discarding = false;
  /**
   * Forwarded Parse, Bind and Close messages in order, each answered by the server with ParseComplete, BindComplete
   * or CloseComplete, or not at all (refused, or skipped after an error): the tables are updated when a message is
   * forwarded (what follows in a pipeline must see it), confirmed by its answer, and taken back at the ReadyForQuery
   * that ends its cycle unanswered. So the tables hold what the server holds.
   */
  private readonly awaiting: Awaiting[] = [];
  private awaitingHead = 0;
  /** Set in a session masking applies to: results are followed from what is forwarded here (mask-results.ts). */
  masks: MaskResults | null = null;

  constructor(
    private readonly gate: StatementGate,
    private readonly tracker: ResponseTracker,
    private readonly sessionId: number,
    private readonly hold: HoldPolicy = NO_HOLD,
  ) {}

  /**
   * Applies the operator's say to a statement's verdict: an approved one runs (`v` was decided with approval; a
   * deny under the policy in force now still refuses), a refused one is refused with the operator's reason. A fresh
   * review is held when an operator can be asked, or runs when its shape was approved for this session.
   */
  private review(v: GateVerdict, decided: Resume | undefined, approved: () => GateVerdict, text: string): GateVerdict | typeof HOLD {
    // The record says what happened to the statement (allow: it ran, deny: it was refused); its rule and reason say
    // that policy sent it to review and how the operator's part ended (the approval events hold the rest).
    if (decided?.kind === 'refuse') {
      const policy = v.allowed ? null : v.refusal.message;
      const refusal = policy && decided.refusal.code === '42501' ? { ...decided.refusal, message: `${decided.refusal.message} (${policy})` } : decided.refusal;
      // As for every refusal, the recorded reason is what the client was told (the approval events say the rest).
      return { allowed: false, audit: { ...v.audit, decision: 'deny', reason: refusal.message }, refusal };
    }
    if (decided?.kind === 'approve') {
      return v.allowed && v.audit.decision === 'review' ? { ...v, audit: { ...v.audit, decision: 'allow', reason: decided.note } } : v;
    }
    if (v.allowed || v.audit.decision !== 'review') return v;
    if (!this.hold.canHold) return { ...v, audit: { ...v.audit, decision: 'deny' } };
    if (!this.hold.sessionAllows(text)) return HOLD;
    const a = approved();
    return a.allowed ? { ...a, audit: { ...a.audit, decision: 'allow', reason: 'approved for this session by an operator earlier' } } : a;
  }

  /**
   * A prepared statement about to be bound after its search_path or the target's catalog changed: the server
   * resolves its names again now, so Sluice decides it again. Allowed: the entry takes the new decision (its
   * Executes are recorded with it). Review: each Bind waits for an operator from now on. Refused: the refusal for
   * this Bind, whose record says why.
   */
  private redecide(entry: PreparedEntry): { audit: GateAudit; refusal: Refusal } | null {
    const v = this.gate.recheck(entry.text);
    if (v.allowed) {
      if (!entry.review) entry.audit = v.audit;
      entry.scope = v.scope;
      return null;
    }
    if (v.audit.decision === 'review' && this.hold.canHold) {
      const a = this.gate.recheck(entry.text, true);
      if (a.allowed) {
        entry.review ??= { approvalTimeoutMs: v.approvalTimeoutMs ?? null, policyMessage: v.refusal.message, maskedColumns: v.maskedColumns ?? [] };
        entry.audit = { ...a.audit, reason: 'sent to review: each execution waits for an operator' };
        entry.scope = a.scope;
        return null;
      }
    }
    const refusal = { ...v.refusal, message: `${v.refusal.message} (decided again at Bind: the search_path or the tables of the target changed since it was prepared)` };
    return { audit: { ...v.audit, decision: 'deny', reason: refusal.message }, refusal };
  }

  /** A ParseComplete, BindComplete or CloseComplete from the server: the oldest awaiting message took effect. */
  onServerConfirmed(): void {
    const a = this.awaiting[this.awaitingHead];
    // Answers come in order, so a confirmation never belongs past the end of the oldest cycle.
    if (!a || a === CYCLE_END) return;
    this.awaitingHead++;
    a.confirm?.();
    this.compact();
  }

  /**
   * The server's ReadyForQuery: whatever of its cycle is still awaiting an answer did not happen. Only its own
   * cycle: a pipelining client may have sent the next cycles already, and their answers are still to come.
   */
  onServerReady(): void {
    if (this.awaiting.length === this.awaitingHead) return;
    let end = this.awaitingHead;
    while (end < this.awaiting.length && this.awaiting[end] !== CYCLE_END) end++;
    for (let i = end - 1; i >= this.awaitingHead; i--) this.awaiting[i]!.undo();
    // Past the cycle's end marker (when the cycle had one: a Sync or Query was forwarded after these messages).
    this.awaitingHead = Math.min(end + 1, this.awaiting.length);
    this.compact();
  }

  /** Nothing forwarded is waiting for the server's answer (no Parse, Bind or Close unconfirmed, no cycle open). */
  get settled(): boolean {
    return this.awaiting.length === this.awaitingHead;
  }

  private compact(): void {
    if (this.awaitingHead === this.awaiting.length) {
      this.awaiting.length = 0;
      this.awaitingHead = 0;
    } else if (this.awaitingHead > 1024) {
      this.awaiting.splice(0, this.awaitingHead);
      this.awaitingHead = 0;
    }
  }

  /** A Sync or Query (allowed or refused) was forwarded: the server ends that cycle with one ReadyForQuery. */
  private endCycle(): void {
    // One marker per cycle, as one ReadyForQuery per cycle: a Query's cycle too, so a Parse sent after it is not
    // taken for part of it.
    this.awaiting.push(CYCLE_END);
  }

  /**
   * Decides `frames` in order. A statement policy sends to review stops the loop there when it can be held: the
   * result's `held` carries it and what follows. `resume` (with the held frames fed back) says how its wait ended;
   * `receivedAt` keeps the time the held statement arrived.
   */
  onClientFrames(frames: readonly Buffer[], now: number, resume?: Resume, receivedAt = now): LoopResult {
    const out: Buffer[] = [];
    const records: StatementRecord[] = [];
    const answers: PendingAnswer[] = [];
    const done = (terminate: boolean, held: Held | null = null): LoopResult => ({ kind: 'forward', out, records, answers, terminate, held });
    const rec = (protocol: StatementRecord['protocol'], name: string | null, text: string, audit: GateAudit | null, at = now): void => {
      records.push({ sessionId: this.sessionId, protocol, name, text, receivedAt: at, ...(audit ?? {}) });
    };
    for (let i = 0; i < frames.length; i++) {
      const f = frames[i]!;
      const code = f[0]!;
      // The first frame of a resumed batch is the held statement; its decision is the operator's.
      const decided = i === 0 ? resume : undefined;
      const at = decided ? receivedAt : now;
      if (this.discarding) {
        if (code === Frontend.Sync) {
          this.discarding = false;
          this.tracker.expectClient();
          this.masks?.cycle();
          answers.push({ kind: 'cycle' });
          this.endCycle();
          out.push(f);
        } else if (code === Frontend.Terminate) {
          out.push(f);
          return done(true);
        }
        continue;
      }
      switch (code) {
        case Frontend.Query: {
          if (f[f.length - 1] !== 0) return malformed('Query');
          const text = StatementGate.decode(f.subarray(5, f.length - 1));
          const v = text === null ? INVALID_UTF8 : this.review(this.gate.query(text, decided?.kind === 'approve'), decided, () => this.gate.query(text, true), text);
          if (v === HOLD) return done(false, held(frames, i, 'simple', null, text!, this.gate.query(text!), null, now));
          rec('simple', null, text ?? f.toString('utf8', 5, f.length - 1), v.audit, at);
          if (v.allowed) {
            this.tracker.expectClient();
            this.masks?.query(v.mask?.results ?? null);
            answers.push({ kind: 'query', record: records.length - 1 });
            this.endCycle();
            out.push(f);
          } else {
            this.tracker.refusedQuery(v.refusal);
            this.masks?.cycle();
            answers.push({ kind: 'cycle' });
            this.endCycle();
            out.push(refusalQuery(v.refusal));
          }
          break;
        }
        case Frontend.Parse: {
          const p = ExtendedState.readParse(f);
          if (!p) return malformed('Parse');
          const text = StatementGate.decode(p.query);
          let v = text === null ? INVALID_UTF8 : this.gate.parse(p.name, text);
          let review: PreparedEntry['review'];
          if (text !== null && !v.allowed && v.audit.decision === 'review' && this.hold.canHold) {
            // A Parse runs nothing: it goes through, and each Bind of the statement waits for an operator, shown
            // with its parameters, so an approval covers one execution with exactly those values.
            const a = this.gate.parse(p.name, text, true);
            if (a.allowed) {
              review = { approvalTimeoutMs: v.approvalTimeoutMs ?? null, policyMessage: v.refusal.message, maskedColumns: v.maskedColumns ?? [] };
              v = { ...a, audit: { ...a.audit, reason: 'sent to review: each execution waits for an operator' } };
            }
          }
          const shown = text ?? p.query.toString('utf8');
          rec('parse', p.name, shown, v.audit);
          if (v.allowed) {
            const statements = v.statements;
            const entry: PreparedEntry = { text: shown, audit: v.audit, scope: v.scope, ...(review ? { review } : {}) };
            this.awaiting.push({ undo: this.ext.define(p.name, entry), confirm: () => this.gate.confirmParse(p.name, statements) });
            out.push(f);
          } else {
            // Raised in the client's own segment, now (a client may Flush and wait for it); the client's Sync still
            // gets the segment's one ReadyForQuery.
            this.tracker.refusedParse(v.refusal);
            out.push(refusalExtended(v.refusal));
            // The refusal now is the server's unnamed statement: a later Bind of "" runs it (and is refused again).
            // Its Parse and Bind are answered like the client's own.
            this.awaiting.push({ undo: this.ext.define('', { text: shown, audit: v.audit }) }, { undo: NO_UNDO });
            this.discarding = true;
          }
          break;
        }
        case Frontend.Bind: {
          const b = ExtendedState.readBind(f);
          if (!b) return malformed('Bind');
          const entry = this.ext.statement(b.statement);
          let note: string | undefined;
          const stale = entry && entry.scope != null && entry.scope !== this.gate.scopeKey() ? this.redecide(entry) : null;
          if (stale) {
            rec('execute', b.portal, entry!.text, stale.audit, at);
            if (b.params.length > 0) records[records.length - 1]!.params = this.gate.redactParams ? b.params.map(() => '<redacted>') : b.params;
            this.tracker.refusedParse(stale.refusal);
            out.push(refusalExtended(stale.refusal));
            this.awaiting.push({ undo: this.ext.define('', { text: entry!.text, audit: entry!.audit }) }, { undo: NO_UNDO });
            this.discarding = true;
            break;
          }
          if (entry?.review) {
            if (decided?.kind === 'refuse') {
              const refusal = decided.refusal.code === '42501' ? { ...decided.refusal, message: `${decided.refusal.message} (${entry.review.policyMessage})` } : decided.refusal;
              rec('execute', b.portal, entry.text, { ...entry.audit!, decision: 'deny', reason: refusal.message }, at);
              if (b.params.length > 0) records[records.length - 1]!.params = this.gate.redactParams ? b.params.map(() => '<redacted>') : b.params;
              this.tracker.refusedParse(refusal);
              out.push(refusalExtended(refusal));
              this.awaiting.push({ undo: this.ext.define('', { text: entry.text, audit: entry.audit }) }, { undo: NO_UNDO });
              this.discarding = true;
              break;
            }
            if (decided?.kind === 'approve') note = decided.note;
            else if (this.hold.sessionAllows(entry.text)) note = 'approved for this session by an operator earlier';
            else {
              return done(false, {
                frames: frames.slice(i), protocol: 'bind', name: b.statement, text: entry.text, audit: entry.audit!, params: b.params,
                approvalTimeoutMs: entry.review.approvalTimeoutMs, receivedAt: now, maskedColumns: entry.review.maskedColumns,
              });
            }
          }
          this.awaiting.push({ undo: this.ext.bind(b, note) });
          out.push(f);
          break;
        }
        case Frontend.Execute: {
          const e = this.ext.execute(f);
          if (!e) return malformed('Execute');
          rec('execute', e.portal, e.entry.text, e.entry.audit);
          const params = e.entry.params;
          if (params && params.length > 0) records[records.length - 1]!.params = this.gate.redactParams ? params.map(() => '<redacted>') : params;
          answers.push({ kind: 'execute', record: records.length - 1 });
          if (this.masks) {
            // Sluice's own Describe right before the Execute: its reply (swallowed) plans exactly these rows.
            out.push(describePortal(e.portal));
            this.masks.own(this.gate.resultTaint(e.entry.text));
          }
          out.push(f);
          break;
        }
        case Frontend.Close: {
          const c = this.ext.close(f);
          if (!c) return malformed('Close');
          if (c.statement !== null) this.gate.forgetPrepared(c.statement);
          this.awaiting.push({ undo: c.undo });
          out.push(f);
          break;
        }
        case Frontend.Sync:
          this.tracker.expectClient();
          this.masks?.cycle();
          answers.push({ kind: 'cycle' });
          this.endCycle();
          out.push(f);
          break;
        case Frontend.Describe:
          this.masks?.describe();
          out.push(f);
          break;
        case Frontend.Flush:
        case Frontend.CopyData: case Frontend.CopyDone: case Frontend.CopyFail:
          out.push(f);
          break;
        case Frontend.Terminate:
          out.push(f);
          return done(true);
        case Frontend.FunctionCall: {
          // FunctionCall runs a function by OID with no SQL to parse or decide: always refused, and audited.
          const refusal = { code: SqlState.FeatureNotSupported, message: 'the FunctionCall protocol message is refused by Sluice', hint: 'Call the function in a SQL statement (SELECT fn(...)) so it can be parsed, decided and audited.' };
          rec('simple', null, `-- FunctionCall message (function OID ${f.length >= 9 ? f.readInt32BE(5) : '?'})`,
            { classes: [], objects: [], decision: 'deny', rule: 'protocol', reason: refusal.message, tags: null });
          this.tracker.refusedQuery(refusal);
          this.masks?.cycle();
          answers.push({ kind: 'cycle' });
          this.endCycle();
          out.push(refusalQuery(refusal));
          break;
        }
        default:
          return { kind: 'fatal', error: { code: SqlState.ProtocolViolation, message: `invalid frontend message type ${code}` }, reason: `protocol violation from client (type ${code})` };
      }
    }
    return done(false);
  }
}

interface Awaiting {
  undo: Undo;
  confirm?: () => void;
}

const NO_UNDO: Undo = () => {};
/** Marks where a request cycle ends in the awaiting FIFO (its ReadyForQuery settles what comes before). */
const CYCLE_END: Awaiting = { undo: NO_UNDO };

const HOLD = Symbol('hold');

function held(frames: readonly Buffer[], i: number, protocol: Held['protocol'], name: string | null, text: string, v: GateVerdict, params: Held['params'], now: number): Held {
  return {
    frames: frames.slice(i), protocol, name, text, audit: v.audit, params,
    approvalTimeoutMs: v.allowed ? null : (v.approvalTimeoutMs ?? null), receivedAt: now,
    maskedColumns: v.allowed ? v.mask?.maskedColumns ?? [] : v.maskedColumns ?? [],
  };
}

function malformed(what: string): LoopResult {
  return { kind: 'fatal', error: { code: SqlState.ProtocolViolation, message: `malformed ${what} message` }, reason: `protocol violation from client (malformed ${what})` };
}
