import type { StatementRecord } from '../audit/audit-log.js';
import { Frontend, SqlState } from '../protocol/codes.js';
import type { PgError } from '../protocol/messages.js';
import { ExtendedState, type Undo } from './extended-state.js';
import { refusalExtended, refusalQuery, type ResponseTracker } from './refusal.js';
import { StatementGate, type GateAudit, type GateVerdict } from './statement-gate.js';

/** What the server will answer, in forwarding order; `record` indexes `records` (its id is known after commit). */
export type PendingAnswer = { kind: 'query' | 'execute'; record: number } | { kind: 'cycle' };

export type LoopResult =
  | { kind: 'forward'; out: Buffer[]; records: StatementRecord[]; answers: PendingAnswer[]; terminate: boolean }
  | { kind: 'fatal'; error: Omit<PgError, 'severity'>; reason: string };

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

  constructor(
    private readonly gate: StatementGate,
    private readonly tracker: ResponseTracker,
    private readonly sessionId: number,
  ) {}

  /** A ParseComplete, BindComplete or CloseComplete from the server: the oldest awaiting message took effect. */
  onServerConfirmed(): void {
    const a = this.awaiting[this.awaitingHead];
    if (!a) return;
    this.awaitingHead++;
    a.confirm?.();
    if (this.awaitingHead === this.awaiting.length) {
      this.awaiting.length = 0;
      this.awaitingHead = 0;
    }
  }

  /** The server's ReadyForQuery: whatever of its cycle is still awaiting an answer did not happen. */
  onServerReady(): void {
    if (this.awaiting.length === 0) return;
    for (let i = this.awaiting.length - 1; i >= this.awaitingHead; i--) this.awaiting[i]!.undo();
    this.awaiting.length = 0;
    this.awaitingHead = 0;
  }

  onClientFrames(frames: readonly Buffer[], now: number): LoopResult {
    const out: Buffer[] = [];
    const records: StatementRecord[] = [];
    const answers: PendingAnswer[] = [];
    const done = (terminate: boolean): LoopResult => ({ kind: 'forward', out, records, answers, terminate });
    const rec = (protocol: StatementRecord['protocol'], name: string | null, text: string, audit: GateAudit | null): void => {
      records.push({ sessionId: this.sessionId, protocol, name, text, receivedAt: now, ...(audit ?? {}) });
    };
    for (const f of frames) {
      const code = f[0]!;
      if (this.discarding) {
        if (code === Frontend.Sync) {
          this.discarding = false;
          this.tracker.expectClient();
          answers.push({ kind: 'cycle' });
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
          const v = text === null ? INVALID_UTF8 : this.gate.query(text);
          rec('simple', null, text ?? f.toString('utf8', 5, f.length - 1), v.audit);
          if (v.allowed) {
            this.tracker.expectClient();
            answers.push({ kind: 'query', record: records.length - 1 });
            out.push(f);
          } else {
            this.tracker.refusedQuery(v.refusal);
            answers.push({ kind: 'cycle' });
            out.push(refusalQuery(v.refusal));
          }
          break;
        }
        case Frontend.Parse: {
          const p = ExtendedState.readParse(f);
          if (!p) return malformed('Parse');
          const text = StatementGate.decode(p.query);
          const v = text === null ? INVALID_UTF8 : this.gate.parse(p.name, text);
          const shown = text ?? p.query.toString('utf8');
          rec('parse', p.name, shown, v.audit);
          if (v.allowed) {
            const statements = v.statements;
            this.awaiting.push({ undo: this.ext.define(p.name, { text: shown, audit: v.audit }), confirm: () => this.gate.confirmParse(p.name, statements) });
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
          const undo = this.ext.bind(f);
          if (!undo) return malformed('Bind');
          this.awaiting.push({ undo });
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
          answers.push({ kind: 'cycle' });
          out.push(f);
          break;
        case Frontend.Describe: case Frontend.Flush:
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
          answers.push({ kind: 'cycle' });
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

function malformed(what: string): LoopResult {
  return { kind: 'fatal', error: { code: SqlState.ProtocolViolation, message: `malformed ${what} message` }, reason: `protocol violation from client (malformed ${what})` };
}
