import type { ClassifiedStatement, ClassifyResult } from '../sql/types.js';
import type { Refusal } from './refusal.js';
import type { RowLimits } from './row-limits.js';
import type { SessionInfo } from './context.js';
import type { MaskDecision, MaskSession } from './mask-session.js';
import { mentionsUnqualified, type SessionNames } from './names.js';
import type { StatementTaint } from '../masking/index.js';

export type DecisionKind = 'allow' | 'deny' | 'review';

/** What policy said about a whole message, with the rule that decided. */
export interface GateDecision {
  decision: DecisionKind;
  rule: string;
  message: string;
  hint: string;
  /** For a review: how long it may wait for an operator (null: the default). */
  approvalTimeoutMs?: number | null;
}

/** The audit fields of a decided message (see StatementRecord). */
export interface GateAudit {
  classes: string[];
  objects: string[];
  decision: DecisionKind;
  rule: string | null;
  reason: string | null;
  tags: Record<string, string> | null;
}

export type GateVerdict =
  | {
    allowed: true; audit: GateAudit; statements: readonly ClassifiedStatement[]; mask?: MaskDecision;
    /**
     * What the decision depended on that may change before a prepared statement runs (search_path, the catalog):
     * compared with `scopeKey()` at each Bind, which decides it again when they differ. Null: nothing of the kind.
     */
    scope: string | null;
  }
  | { allowed: false; audit: GateAudit; refusal: Refusal; approvalTimeoutMs?: number | null; maskedColumns?: string[] };

export interface GateDeps {
  classify(text: string): ClassifyResult;
  /** Policy for this session (identity, target, application, address are bound in by the caller). */
  decide(statements: readonly ClassifiedStatement[]): GateDecision;
  onInternalError?(err: Error, text: string): void;
  /**
   * Settings the session must start with (policy limits such as read-only or a statement_timeout ceiling), sent
   * upstream as startup parameters so that RESET ALL / DISCARD ALL return to them rather than to the server default.
   */
  sessionDefaults?: Readonly<Record<string, string>>;
  /** Whether bind parameter values must stay out of the audit log (policy may change while the session runs). */
  redactParams?(): boolean;
  /** Who is connected (shown to an operator asked to approve a statement). */
  session?: SessionInfo;
  /** The row limits in force now (policy may change while the session runs). */
  rowLimits?(): RowLimits;
  /** Column masking of this session (absent: nothing is masked). */
  masking?: MaskSession;
  /** How unqualified relation names resolve in this session (absent: policy matches them conservatively). */
  names?: SessionNames;
}

const NO_ROW_LIMITS: RowLimits = { maxRowsPerStatement: null, maxRowsPerSession: null, from: {} };

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Decides each statement-carrying message of one session: decode (strict UTF-8), classify with PostgreSQL's parser,
 * resolve SQL-level EXECUTE/FETCH to what they run, ask policy. Keeps the session's prepared statements (SQL PREPARE
 * and protocol Parse share one namespace in PostgreSQL) and cursors so EXECUTE and FETCH are decided on the
 * statement they run; one that Sluice never saw created is refused (it cannot be attributed).
 */
export class StatementGate {
  private readonly prepared = new Map<string, readonly ClassifiedStatement[]>();
  private readonly cursors = new Map<string, readonly ClassifiedStatement[]>();
  /** Cursors declared WITH HOLD: they outlive their transaction; every other cursor ends with it. */
  private readonly holdable = new Set<string>();
  /** Cursors declared since the last ReadyForQuery; forgotten if the server reported an error meanwhile. */
  private unconfirmed: string[] = [];
  /** SQL PREPAREs since the last ReadyForQuery; forgotten if the server reported an error meanwhile. */
  private unconfirmedPrepared: string[] = [];
  private errorSinceReady = false;

  constructor(private readonly deps: GateDeps) {}

  get redactParams(): boolean {
    return this.deps.redactParams?.() ?? false;
  }

  get session(): SessionInfo | undefined {
    return this.deps.session;
  }

  get masking(): MaskSession | undefined {
    return this.deps.masking;
  }

  rowLimits(): RowLimits {
    return this.deps.rowLimits?.() ?? NO_ROW_LIMITS;
  }

  get sessionDefaults(): Readonly<Record<string, string>> {
    return this.deps.sessionDefaults ?? {};
  }

  /** Decodes statement text from the wire; null when it is not valid UTF-8 (the server would refuse it too). */
  static decode(bytes: Buffer): string | null {
    try {
      return utf8.decode(bytes);
    } catch {
      return null;
    }
  }

  /**
   * The server's ReadyForQuery: a cursor that the server refused to create, or whose transaction ended, must not stay
   * known, or a later FETCH of the same name (a cursor opened by a function, say) would be decided as the old query.
   * After an error every cursor declared since the last ReadyForQuery is forgotten (with pipelining that may include
   * one that succeeded: its FETCH is then refused, which is the safe side).
   */
  onReady(status: number, quiet = true): void {
    this.deps.names?.onReady(status, quiet);
    if (this.errorSinceReady) {
      for (const c of this.unconfirmed) this.forgetCursor(c);
      for (const p of this.unconfirmedPrepared) this.prepared.delete(p);
    }
    if (this.unconfirmed.length > 0) this.unconfirmed = [];
    if (this.unconfirmedPrepared.length > 0) this.unconfirmedPrepared = [];
    this.errorSinceReady = false;
    // Called for every ReadyForQuery: costs nothing while the session has no cursor.
    if (status === 0x49 /* I: no transaction */ && this.cursors.size > 0) {
      for (const c of [...this.cursors.keys()]) if (!this.holdable.has(c)) this.forgetCursor(c);
    }
  }

  onServerError(): void {
    this.errorSinceReady = true;
    this.deps.names?.onServerError();
  }

  private forgetCursor(name: string): void {
    this.cursors.delete(name);
    this.holdable.delete(name);
  }

  /**
   * The server's ParseComplete for a named protocol statement: from now on SQL EXECUTE of that name runs it.
   * Not before: the server refuses a Parse of a name that exists, and skips one after an earlier error.
   */
  confirmParse(name: string, statements: readonly ClassifiedStatement[]): void {
    if (name !== '') this.prepared.set(name, statements);
  }

  /** A protocol Close of a prepared statement: forgotten at once (unknown is refused, the safe side). */
  forgetPrepared(name: string): void {
    this.prepared.delete(name);
  }

  /** A simple Query: every statement in it must be allowed, else the whole message is refused. */
  query(text: string, approved = false): GateVerdict {
    return this.decideText(text, null, approved, false);
  }

  /** A protocol Parse of `name` (one statement at most, as the server requires). */
  parse(name: string, text: string, approved = false): GateVerdict {
    return this.decideText(text, name, approved, false);
  }

  /**
   * A prepared statement decided again before it runs (its verdict's `scope` is no longer `scopeKey()`): the
   * session's tables and search_path are left as they are.
   */
  recheck(text: string, approved = false): GateVerdict {
    return this.decideText(text, '', approved, true);
  }

  /** See GateVerdict `scope`. */
  scopeKey(): string {
    return this.deps.names?.scopeKey() ?? '';
  }

  /**
   * The session is connected upstream: loads what deciding needs (the target's catalog, for names). Null when
   * nothing needs waiting for; else the first statement waits until the promise settles (it never rejects).
   */
  start(waitMs: number): Promise<void> | null {
    return this.deps.names?.start(waitMs) ?? null;
  }

  /** The session ended. */
  close(): void {
    this.deps.names?.close();
  }

  /**
   * `approved`: an operator approved this statement, so a review verdict lets it through (a deny still refuses).
   * `dryRun`: decide only, change nothing the session keeps.
   */
  private decideText(text: string, parseName: string | null, approved: boolean, dryRun: boolean): GateVerdict {
    try {
      return this.decideTextUnguarded(text, parseName, approved, dryRun);
    } catch (err) {
      // A fault in classification or policy refuses this statement and only this statement (fail closed).
      this.deps.onInternalError?.(err as Error, text);
      return refuse({
        code: 'XX000',
        message: 'Sluice could not decide this statement (internal error), so it was not executed',
        hint: 'Report this to the Sluice operator; the statement text is in the audit log.',
      }, [], [], null, 'deny', 'internal-error');
    }
  }

  private decideTextUnguarded(text: string, parseName: string | null, approved: boolean, dryRun: boolean): GateVerdict {
    const c = this.deps.classify(text);
    if (!c.ok) return refuse(c, [], [], null, 'deny', 'parser');
    const tags = Object.keys(c.tags).length > 0 ? c.tags : null;
    if (parseName !== null && c.statements.length > 1) {
      return refuse({ code: '42601', message: 'cannot insert multiple commands into a prepared statement', hint: 'Send one statement per Parse.' }, c.statements, [], tags, 'deny', 'protocol');
    }
    // Changes to the session's tables are staged and applied only if the whole message is allowed.
    const prepared = new Map<string, readonly ClassifiedStatement[] | null>();
    const cursors = new Map<string, readonly ClassifiedStatement[] | null>();
    const lookup = (staged: Map<string, readonly ClassifiedStatement[] | null>, kept: Map<string, readonly ClassifiedStatement[]>, name: string) =>
      staged.has(name) ? staged.get(name) ?? undefined : kept.get(name);
    const effective: ClassifiedStatement[] = [];
    const holds: string[] = [];
    /** The text of what each EXECUTE / FETCH runs, for masking. */
    const innerText = new Map<ClassifiedStatement, string>();
    for (const s of c.statements) {
      // EXECUTE and FETCH are decided both as themselves (their arguments may call functions) and as what they run;
      // marked resolved (wrapper field removed) so policy does not treat them as unresolved.
      effective.push(s.execute || s.fetch ? resolvedWrapper(s) : s);
      if (s.execute) {
        const inner = lookup(prepared, this.prepared, s.execute.name);
        if (!inner) return refuse(unknown('26000', `prepared statement "${s.execute.name}"`), c.statements, [], tags, 'deny', 'unattributable');
        innerText.set(s, inner[0]!.text);
        effective.push(...inner);
      }
      if (s.fetch) {
        const inner = lookup(cursors, this.cursors, s.fetch.cursor);
        if (!inner) return refuse(unknown('34000', `cursor "${s.fetch.cursor}"`), c.statements, [], tags, 'deny', 'unattributable');
        innerText.set(s, inner[0]!.text);
        effective.push(...inner);
      }
      // The server refuses PREPARE of a name that exists: what it then holds is no longer certain, so forget it.
      if (s.prepare) prepared.set(s.prepare.name, lookup(prepared, this.prepared, s.prepare.name) ? null : [s.prepare.statement]);
      if (s.declare) cursors.set(s.declare.cursor, [s.declare.statement]);
      if (s.declare?.hold) holds.push(s.declare.cursor);
      if (s.deallocate) forget(prepared, this.prepared, s.deallocate.name);
      if (s.close) forget(cursors, this.cursors, s.close.cursor);
    }
    // Unqualified relations qualified where Sluice is sure how the server resolves them (names.ts).
    const names = this.deps.names;
    const resolved = names ? names.qualify(effective) : effective;
    const objects = objectsOf(resolved);
    let d = this.deps.decide(resolved);
    let code = '42501';
    let mask: MaskDecision | undefined;
    const m = this.deps.masking;
    if (m?.engaged) {
      mask = m.decide(text, c.statements, (s) => innerText.get(s) ?? null);
      // The most restrictive of policy and masking decides; a masking refusal names its rule.
      if (RANK[mask.verdict] > RANK[d.decision]) {
        d = { decision: mask.verdict, rule: mask.refusal!.rule, message: mask.refusal!.message, hint: mask.refusal!.hint, approvalTimeoutMs: null };
        code = mask.refusal!.code;
      }
    } else if (m?.active) {
      // Rules that now apply to a session that started without them: its results are not followed, so nothing runs.
      d = {
        decision: 'deny', rule: 'sluice:masking', message: 'statement refused: masking rules now apply to this session, which started without them',
        hint: 'Reconnect: a new session applies the masking rules.',
      };
    }
    const audit: GateAudit = {
      classes: effective.map((s) => s.class), objects, decision: d.decision, rule: d.rule,
      reason: d.decision === 'allow' ? null : d.message, tags,
    };
    if (d.decision !== 'allow' && !(approved && d.decision === 'review')) {
      const review = d.decision === 'review';
      return {
        allowed: false,
        audit,
        refusal: {
          code,
          message: review ? `${d.message}: it needs an operator's approval` : d.message,
          hint: d.hint,
        },
        approvalTimeoutMs: d.approvalTimeoutMs ?? null,
        ...(mask && mask.maskedColumns.length > 0 ? { maskedColumns: mask.maskedColumns } : {}),
      };
    }
    // Whether the decision may differ later: unqualified names (path, catalog), or masking's analysis (the path).
    const scoped = m?.engaged === true || effective.some(mentionsUnqualified);
    if (dryRun) return { allowed: true, audit, statements: effective, scope: scoped ? this.scopeKey() : null, ...(mask ? { mask } : {}) };
    names?.onAllowed(effective, c.statements, parseName === null);
    // After onAllowed: a statement that changes the path or the catalog is not decided again for its own change.
    const scope = scoped ? this.scopeKey() : null;
    apply(prepared, this.prepared);
    apply(cursors, this.cursors);
    for (const [name, stmts] of prepared) if (stmts) this.unconfirmedPrepared.push(name);
    for (const [name, stmts] of cursors) {
      if (stmts) this.unconfirmed.push(name);
      else this.holdable.delete(name);
    }
    for (const h of holds) this.holdable.add(h);
    return mask ? { allowed: true, audit, statements: effective, mask, scope } : { allowed: true, audit, statements: effective, scope };
  }

  /**
   * The taint the result of one protocol statement is planned with, analysed now (search_path may have changed
   * since its Parse, and the server re-resolves names when it does). Null: unknown, plan conservatively.
   */
  resultTaint(text: string): StatementTaint | null {
    const m = this.deps.masking;
    if (!m?.engaged) return null;
    const c = this.deps.classify(text);
    if (!c.ok || c.statements.length !== 1) return null;
    return m.resultTaint(text, c.statements[0], (s) => {
      const inner = s.execute ? this.prepared.get(s.execute.name) : s.fetch ? this.cursors.get(s.fetch.cursor) : undefined;
      return inner?.[0]?.text ?? null;
    });
  }
}

const RANK = { allow: 0, review: 1, deny: 2 } as const;

function resolvedWrapper(s: ClassifiedStatement): ClassifiedStatement {
  const { execute: _e, fetch: _f, ...rest } = s;
  return rest;
}

/** Stages forgetting `name` ('*': all, as DEALLOCATE ALL / CLOSE ALL / DISCARD ALL). */
function forget(staged: Map<string, readonly ClassifiedStatement[] | null>, kept: Map<string, readonly ClassifiedStatement[]>, name: string): void {
  if (name !== '*') return void staged.set(name, null);
  for (const k of [...kept.keys(), ...staged.keys()]) staged.set(k, null);
}

function apply(staged: Map<string, readonly ClassifiedStatement[] | null>, kept: Map<string, readonly ClassifiedStatement[]>): void {
  for (const [k, v] of staged) {
    if (v) kept.set(k, v);
    else kept.delete(k);
  }
}

function unknown(code: string, what: string): { code: string; message: string; hint: string } {
  return {
    code,
    message: `${what} was not created through Sluice, so what it runs cannot be decided`,
    hint: 'Create it in this session through Sluice (PREPARE / DECLARE / a protocol Parse) before using it.',
  };
}

function refuse(
  e: { code: string; message: string; hint: string; position?: number },
  stmts: readonly ClassifiedStatement[],
  objects: string[],
  tags: Record<string, string> | null,
  decision: DecisionKind,
  rule: string,
): GateVerdict {
  return {
    allowed: false,
    audit: { classes: stmts.map((s) => s.class), objects, decision, rule, reason: e.message, tags },
    refusal: { code: e.code, message: e.message, hint: e.hint, ...(e.position !== undefined ? { position: e.position } : {}) },
  };
}

/** 'r:schema.table' / 'w:schema.table' / 'f:function' strings for the audit record (unqualified: '?.name'). */
export function objectsOf(stmts: readonly ClassifiedStatement[]): string[] {
  const out = new Set<string>();
  for (const s of stmts) {
    for (const r of s.reads) out.add(`r:${r.schema ?? '?'}.${r.name}`);
    for (const r of s.writes) out.add(`w:${r.schema ?? '?'}.${r.name}`);
    for (const f of s.functions) out.add(`f:${f}`);
  }
  return [...out];
}
