import type Database from 'better-sqlite3';
import { sha256Hex } from './chain.js';
import { ChainWriter } from './chain-writer.js';
import { POLICY_APPLIED, RESERVED_EVENT_KINDS, SESSION_ENDED, SESSION_OPENED, sessionEndedDetail, sessionOpenedDetail, type PolicyAppliedDetail } from './events.js';

export type AuditDecision = 'allow' | 'deny' | 'review';

/** One client message that carries SQL, as received, with the decision taken on it (before any forwarding). */
export interface StatementRecord {
  sessionId: number;
  protocol: 'simple' | 'parse' | 'execute';
  /** Prepared statement name (parse) or portal name (execute); null for simple queries. */
  name: string | null;
  text: string;
  receivedAt: number;
  /** One class per statement in the message, in order (StatementClass values from src/sql/types.ts). */
  classes?: readonly string[];
  /** Objects touched: 'r:public.users' (read), 'w:public.orders' (written), 'f:pg_sleep' (function called). */
  objects?: readonly string[];
  decision?: AuditDecision;
  /** The policy rule that decided. */
  rule?: string | null;
  /** The refusal message sent to the client. */
  reason?: string | null;
  /** Bind parameters as text (binary ones as the caller renders them); null or absent when none or redacted. */
  params?: readonly (string | null)[] | null;
  /** sqlcommenter tags from the statement's comments (`/*tool='x',run='y'*\/`). */
  tags?: Readonly<Record<string, string>> | null;
}

/** How a forwarded statement ended; written by `complete()`. */
export interface StatementResult {
  completedAt: number;
  durationMs: number;
  rows?: number | null;
  bytes?: number | null;
  /** SQLSTATE when it failed. */
  errorCode?: string | null;
  errorMessage?: string | null;
  /** Result columns Sluice masked (absent or null: none). */
  maskedFields?: number | null;
}

/**
 * Called once the records of a `record()` call are committed, or with the error that stopped their batch
 * (then nothing of that batch was written). `ids` are the new `statements.id`s, in the order given.
 */
export type RecordDone = (err: Error | null, ids?: readonly number[]) => void;
export type CompleteDone = (err: Error | null) => void;

export interface SessionRow {
  id: number;
  identity: string;
  target: string;
  clientAddr: string;
  applicationName: string | null;
  startedAt: number;
  endedAt: number | null;
  endReason: string | null;
}

export interface StatementRow {
  id: number;
  sessionId: number;
  seq: number;
  receivedAt: number;
  protocol: StatementRecord['protocol'];
  name: string | null;
  text: string;
  decision: AuditDecision | null;
  rule: string | null;
  reason: string | null;
}

type Pending =
  | { kind: 'records'; records: StatementRecord[]; seqs: number[]; done: RecordDone }
  | { kind: 'result'; statementId: number; result: StatementResult; done: CompleteDone | undefined };

export interface AuditLogOptions {
  /** Where write failures nobody waits for go (a session end that could not be recorded). Default: console.error. */
  onError?: (message: string) => void;
}

/**
 * The audit writer on the proxy hot path. A statement must be committed before it is forwarded, but a
 * transaction per statement costs a WAL commit each; so everything queued in one event-loop turn (records and
 * completions) is written in one transaction from a single setImmediate, and each caller forwards from its
 * `done` callback. Every row is appended to the hash chain (chain.ts) in that same transaction; the chain head
 * checkpoint follows in its own small transaction (chain-writer.ts).
 *
 * better-sqlite3 is synchronous: the flush blocks the event loop while it runs. Measured with bench/audit.ts on
 * a 2-core box (WAL, synchronous=NORMAL): ~23 µs for a flush of one record, ~9.5 µs per record at 16 per flush;
 * the hash chain is ~3-5 µs of that per record (SHA-256 ~2 µs). A flush waits up to busy_timeout (5 s) if another process holds the write lock; keep other
 * writers short. Only one AuditLog should write a given database (seq counters live in memory).
 */
/** How long a statement's completion may wait for the next batch before it is written on its own. */
const RESULTS_DELAY_MS = 100;

export class AuditLog {
  /** Last seq handed out per session opened by this instance and not yet ended. */
  private readonly lastSeq = new Map<number, number>();
  private queue: Pending[] = [];
  private flushTimer: NodeJS.Immediate | null = null;
  /** Completions ride along with the next batch of records; this writes them when no records come. */
  private resultsTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly chain: ChainWriter;
  private readonly onError: (message: string) => void;

  private readonly insertSession: Database.Statement<[string, string, string, string | null, number]>;
  private readonly endSessionStmt: Database.Statement<[number, string, number]>;
  private readonly setFirstStatement: Database.Statement<[number, number]>;
  private readonly setLastStatement: Database.Statement<[number, number]>;
  private readonly insertPolicy: Database.Statement<[number, string | null, string, string]>;

  constructor(private readonly db: Database.Database, opts: AuditLogOptions = {}) {
    this.chain = new ChainWriter(db);
    this.onError = opts.onError ?? ((m) => console.error(`[sluice] audit: ${m}`));
    this.insertSession = db.prepare(
      `INSERT INTO sessions (identity, target, client_addr, application_name, started_at) VALUES (?, ?, ?, ?, ?)`,
    );
    this.endSessionStmt = db.prepare(
      `UPDATE sessions SET ended_at = ?, end_reason = ?, last_statement_id = (SELECT MAX(id) FROM statements)
        WHERE id = ? AND ended_at IS NULL`,
    );
    this.setFirstStatement = db.prepare('UPDATE sessions SET first_statement_id = ? WHERE id = ? AND first_statement_id IS NULL');
    // A record queued before its session ended is committed after the end: extend the session's id range to it.
    this.setLastStatement = db.prepare('UPDATE sessions SET last_statement_id = ? WHERE id = ? AND ended_at IS NOT NULL');
    this.insertPolicy = db.prepare('INSERT INTO policy_versions (applied_at, source_path, text, sha256) VALUES (?, ?, ?, ?)');
  }

  openSession(s: { identity: string; target: string; clientAddr: string; applicationName: string | null }): number {
    this.assertOpen();
    const startedAt = Date.now();
    const id = this.chain.transact(() => {
      const id = Number(this.insertSession.run(s.identity, s.target, s.clientAddr, s.applicationName, startedAt).lastInsertRowid);
      this.chain.append('audit_events', [SESSION_OPENED, id, startedAt, sessionOpenedDetail(s)]);
      return id;
    });
    this.lastSeq.set(id, 0);
    return id;
  }

  /**
   * Mark a session ended. Idempotent: the first reason and time win. Records already queued for it are still
   * written (with their earlier receivedAt; in the chain they follow the end event); records queued after this
   * are refused. Never throws: a failed write is reported to `onError`, and the next start's
   * markOpenSessionsAborted ends the session.
   */
  endSession(id: number, reason: string): void {
    this.lastSeq.delete(id);
    const endedAt = Date.now();
    try {
      this.chain.transact(() => {
        if (this.endSessionStmt.run(endedAt, reason, id).changes === 1) {
          this.chain.append('audit_events', [SESSION_ENDED, id, endedAt, sessionEndedDetail(reason)]);
        }
      });
    } catch (e) {
      this.onError(`could not record the end of session ${id} (${reason}): ${(e as Error).message}`);
    }
  }

  /**
   * Queue records; `done` runs after they are committed, or with the error if their batch failed (then nothing
   * of that batch is in the store, and the caller must refuse the statements). `done` is always asynchronous.
   */
  record(records: StatementRecord[], done: RecordDone): void {
    if (this.closed) return void process.nextTick(done, new Error('audit log is closed'));
    const unknown = records.find((r) => !this.lastSeq.has(r.sessionId));
    if (unknown) {
      return void process.nextTick(done, new Error(`audit session ${unknown.sessionId} is not open`));
    }
    // seq is assigned now, in call order; a failed batch hands its numbers back (see flush).
    const seqs = records.map((r) => {
      const seq = this.lastSeq.get(r.sessionId)! + 1;
      this.lastSeq.set(r.sessionId, seq);
      return seq;
    });
    this.queue.push({ kind: 'records', records, seqs, done });
    this.flushTimer ??= setImmediate(() => this.flush());
  }

  /**
   * Queue the completion of a statement (by its `statements.id`), written with the next batch. Nothing waits
   * on it; a completion that cannot be written (unknown statement) never fails the records it is batched with.
   */
  complete(statementId: number, result: StatementResult, done?: CompleteDone): void {
    if (this.closed) {
      if (done) process.nextTick(done, new Error('audit log is closed'));
      return;
    }
    this.queue.push({ kind: 'result', statementId, result, done });
    // Nothing waits for a completion, so it does not get a commit of its own: it joins the next batch of statement
    // records (one transaction instead of two per statement on a busy session), or is written within 100 ms.
    this.resultsTimer ??= setTimeout(() => this.flush(), RESULTS_DELAY_MS);
  }

  /** Record another auditable event now (committed on return; throws if it cannot be). Returns its id. */
  event(kind: string, sessionId: number | null, detail: Readonly<Record<string, unknown>> | null): number {
    this.assertOpen();
    if (RESERVED_EVENT_KINDS.has(kind)) throw new Error(`audit event kind "${kind}" is written by the audit log itself`);
    const at = Date.now();
    return this.chain.transact(() => this.chain.append('audit_events', [kind, sessionId, at, detail ? JSON.stringify(detail) : null]));
  }

  /** Store a policy text that was just applied, with a chained 'policy_applied' event. Throws if it cannot. */
  recordPolicyVersion(sourcePath: string | null, text: string): { id: number; sha256: string } {
    this.assertOpen();
    const sha256 = sha256Hex(text);
    const at = Date.now();
    const id = this.chain.transact(() => {
      const id = Number(this.insertPolicy.run(at, sourcePath, text, sha256).lastInsertRowid);
      const detail: PolicyAppliedDetail = { policyVersionId: id, sha256, sourcePath };
      this.chain.append('audit_events', [POLICY_APPLIED, null, at, JSON.stringify(detail)]);
      return id;
    });
    return { id, sha256 };
  }

  /** Write everything queued now, in one transaction. */
  private flush(): void {
    if (this.flushTimer) clearImmediate(this.flushTimer);
    this.flushTimer = null;
    if (this.resultsTimer) clearTimeout(this.resultsTimer);
    this.resultsTimer = null;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;

    let out: { ids: number[][]; resultsError: Error | null };
    try {
      out = this.chain.transact(() => this.writeBatch(batch));
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      // Every seq handed out since the last flush is in this batch, so rewinding keeps seq gap-free.
      for (const p of batch) {
        if (p.kind !== 'records') continue;
        p.records.forEach((r, i) => {
          const last = this.lastSeq.get(r.sessionId);
          if (last !== undefined && last >= p.seqs[i]!) this.lastSeq.set(r.sessionId, p.seqs[i]! - 1);
        });
      }
      for (const p of batch) callSafely(() => p.done?.(err));
      return;
    }
    let n = 0;
    for (const p of batch) {
      if (p.kind === 'records') {
        const ids = out.ids[n++]!;
        callSafely(() => p.done(null, ids));
      } else if (p.done) {
        const done = p.done;
        callSafely(() => done(out.resultsError));
      }
    }
  }

  private writeBatch(batch: Pending[]): { ids: number[][]; resultsError: Error | null } {
    const ids: number[][] = [];
    for (const p of batch) {
      if (p.kind !== 'records') continue;
      ids.push(p.records.map((r, i) => this.writeRecord(r, p.seqs[i]!)));
    }
    let resultsError: Error | null = null;
    if (batch.some((p) => p.kind === 'result')) {
      try {
        // A savepoint: a bad completion rolls back the completions only, never the statements.
        this.chain.transact(() => {
          for (const p of batch) if (p.kind === 'result') this.writeResult(p.statementId, p.result);
        });
      } catch (e) {
        // SQLITE_FULL and friends can roll back the whole transaction: then the batch has failed.
        if (!this.db.inTransaction) throw e;
        resultsError = e instanceof Error ? e : new Error(String(e));
      }
    }
    return { ids, resultsError };
  }

  private writeRecord(r: StatementRecord, seq: number): number {
    const json = (v: unknown) => (v === undefined || v === null ? null : JSON.stringify(v));
    const tags = r.tags && Object.keys(r.tags).length > 0 ? JSON.stringify(r.tags) : null;
    const id = this.chain.append('statements', [
      r.sessionId, seq, r.receivedAt, r.protocol, r.name, r.text, json(r.classes), json(r.objects),
      r.decision ?? null, r.rule ?? null, r.reason ?? null, json(r.params), tags,
    ]);
    if (seq === 1) this.setFirstStatement.run(id, r.sessionId);
    if (!this.lastSeq.has(r.sessionId)) this.setLastStatement.run(id, r.sessionId);
    return id;
  }

  private writeResult(statementId: number, r: StatementResult): void {
    this.chain.append('statement_results', [
      statementId, r.completedAt, r.durationMs, r.rows ?? null, r.bytes ?? null, r.errorCode ?? null, r.errorMessage ?? null,
      r.maskedFields ? r.maskedFields : null,
    ]);
  }

  /**
   * Crash recovery, at startup: end every session left open by a previous run (not those opened by this
   * instance). ended_at is the last thing known about the session (its last statement, else its start),
   * not the restart time. Returns how many sessions were ended.
   */
  markOpenSessionsAborted(reason: string): number {
    const open = this.db
      .prepare(
        // The id range (from first_statement_id) keeps this from scanning all statements once per session.
        `SELECT id, COALESCE((SELECT MAX(received_at) FROM statements
                               WHERE id >= sessions.first_statement_id AND session_id = sessions.id), started_at) AS endedAt
           FROM sessions WHERE ended_at IS NULL AND id NOT IN (SELECT value FROM json_each(?))`,
      )
      .all(JSON.stringify([...this.lastSeq.keys()])) as { id: number; endedAt: number }[];
    return this.chain.transact(() => {
      let n = 0;
      for (const s of open) {
        if (this.endSessionStmt.run(s.endedAt, reason, s.id).changes !== 1) continue;
        this.chain.append('audit_events', [SESSION_ENDED, s.id, s.endedAt, sessionEndedDetail(reason)]);
        n++;
      }
      return n;
    });
  }

  /** Most recent sessions first. */
  listSessions(limit = 100): SessionRow[] {
    return this.db
      .prepare(
        `SELECT id, identity, target, client_addr AS clientAddr, application_name AS applicationName,
                started_at AS startedAt, ended_at AS endedAt, end_reason AS endReason
           FROM sessions ORDER BY id DESC LIMIT ?`,
      )
      .all(limit) as SessionRow[];
  }

  listStatements(sessionId: number): StatementRow[] {
    return this.db
      .prepare(
        `SELECT st.id, st.session_id AS sessionId, st.seq, st.received_at AS receivedAt, st.protocol, st.name, st.text,
                st.decision, st.rule, st.reason
           FROM sessions s JOIN statements st
             ON st.id BETWEEN s.first_statement_id AND COALESCE(s.last_statement_id, 9223372036854775807)
            AND st.session_id = s.id
          WHERE s.id = ? ORDER BY st.id`,
      )
      .all(sessionId) as StatementRow[];
  }

  /**
   * Write what is queued (callbacks run now) and refuse further records. Does not close the Database:
   * whoever called openDataStore owns it (the key store shares it).
   */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.chain.close();
    this.closed = true;
  }

  /**
   * Write the chain head checkpoint (chain_head) now. Done anyway shortly after every write and at close();
   * call it before verifying from the same process if the last writes must be covered by tail detection.
   */
  checkpoint(): void {
    this.chain.checkpoint();
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('audit log is closed');
  }
}

function callSafely(fn: () => void): void {
  try {
    fn();
  } catch (e) {
    // One throwing callback must not keep the others of the batch from hearing about their records.
    process.nextTick(() => {
      throw e;
    });
  }
}
