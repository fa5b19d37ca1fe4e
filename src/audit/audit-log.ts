import type Database from 'better-sqlite3';

/** One client message that carries SQL, as received (before any decision or forwarding). */
export interface StatementRecord {
  sessionId: number;
  protocol: 'simple' | 'parse' | 'execute';
  /** Prepared statement name (parse) or portal name (execute); null for simple queries. */
  name: string | null;
  text: string;
  receivedAt: number;
}

/**
 * Called once the records of a `record()` call are committed, or with the error that stopped their batch
 * (then nothing of that batch was written). `ids` are the new `statements.id`s, in the order given.
 */
export type RecordDone = (err: Error | null, ids?: readonly number[]) => void;

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
}

interface Pending {
  records: StatementRecord[];
  seqs: number[];
  done: RecordDone;
}

/**
 * The audit writer on the proxy hot path. A statement must be committed before it is forwarded, but a
 * transaction per statement costs a WAL commit each; so everything queued in one event-loop turn is written
 * in one transaction from a single setImmediate, and each caller forwards from its `done` callback.
 *
 * better-sqlite3 is synchronous: the flush blocks the event loop while it runs. Measured on a 2-core CI box
 * (WAL, synchronous=NORMAL): ~4 us per record at 16 records per flush, ~20 us for a flush of one record.
 * A flush waits up to busy_timeout (5 s) if another process holds the write lock; keep other writers short.
 * Only one AuditLog should write a given database (seq counters live in memory).
 */
export class AuditLog {
  /** Last seq handed out per session opened by this instance and not yet ended. */
  private readonly lastSeq = new Map<number, number>();
  private queue: Pending[] = [];
  private flushTimer: NodeJS.Immediate | null = null;
  private closed = false;

  private readonly insertSession: Database.Statement<[string, string, string, string | null, number]>;
  private readonly endSessionStmt: Database.Statement<[number, string, number]>;
  private readonly insertStatement: Database.Statement<[number, number, number, string, string | null, string]>;
  private readonly setFirstStatement: Database.Statement<[number, number]>;
  private readonly writeBatch: (batch: Pending[]) => number[];

  constructor(private readonly db: Database.Database) {
    this.insertSession = db.prepare(
      `INSERT INTO sessions (identity, target, client_addr, application_name, started_at) VALUES (?, ?, ?, ?, ?)`,
    );
    this.endSessionStmt = db.prepare(
      `UPDATE sessions SET ended_at = ?, end_reason = ?, last_statement_id = (SELECT MAX(id) FROM statements)
        WHERE id = ? AND ended_at IS NULL`,
    );
    this.setFirstStatement = db.prepare('UPDATE sessions SET first_statement_id = ? WHERE id = ? AND first_statement_id IS NULL');
    this.insertStatement = db.prepare(
      `INSERT INTO statements (session_id, seq, received_at, protocol, name, text) VALUES (?, ?, ?, ?, ?, ?)`,
    );
    this.writeBatch = db.transaction((batch: Pending[]) => {
      const ids: number[] = [];
      for (const p of batch) {
        p.records.forEach((r, i) => {
          const seq = p.seqs[i]!;
          const id = Number(this.insertStatement.run(r.sessionId, seq, r.receivedAt, r.protocol, r.name, r.text).lastInsertRowid);
          if (seq === 1) this.setFirstStatement.run(id, r.sessionId);
          ids.push(id);
        });
      }
      return ids;
    });
  }

  openSession(s: { identity: string; target: string; clientAddr: string; applicationName: string | null }): number {
    this.assertOpen();
    const info = this.insertSession.run(s.identity, s.target, s.clientAddr, s.applicationName, Date.now());
    const id = Number(info.lastInsertRowid);
    this.lastSeq.set(id, 0);
    return id;
  }

  /**
   * Mark a session ended. Idempotent: the first reason and time win. Records already queued for it are still
   * written (with their earlier receivedAt); records queued after this are refused.
   */
  endSession(id: number, reason: string): void {
    this.lastSeq.delete(id);
    this.endSessionStmt.run(Date.now(), reason, id);
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
    this.queue.push({ records, seqs, done });
    this.flushTimer ??= setImmediate(() => this.flush());
  }

  /** Write everything queued now, in one transaction. */
  private flush(): void {
    if (this.flushTimer) clearImmediate(this.flushTimer);
    this.flushTimer = null;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;

    let ids: number[];
    try {
      ids = this.writeBatch(batch);
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      // Every seq handed out since the last flush is in this batch, so rewinding keeps seq gap-free.
      for (const p of batch) {
        p.records.forEach((r, i) => {
          const last = this.lastSeq.get(r.sessionId);
          if (last !== undefined && last >= p.seqs[i]!) this.lastSeq.set(r.sessionId, p.seqs[i]! - 1);
        });
      }
      for (const p of batch) callSafely(p.done, err);
      return;
    }
    let offset = 0;
    for (const p of batch) {
      callSafely(p.done, null, ids.slice(offset, offset + p.records.length));
      offset += p.records.length;
    }
  }

  /**
   * Crash recovery, at startup: end every session left open by a previous run (not those opened by this
   * instance). ended_at is the last thing known about the session (its last statement, else its start),
   * not the restart time. Returns how many sessions were ended.
   */
  markOpenSessionsAborted(reason: string): number {
    return this.db
      .prepare(
        `UPDATE sessions
            SET ended_at = COALESCE((SELECT MAX(received_at) FROM statements WHERE session_id = sessions.id), started_at),
                end_reason = ?
          WHERE ended_at IS NULL AND id NOT IN (SELECT value FROM json_each(?))`,
      )
      .run(reason, JSON.stringify([...this.lastSeq.keys()])).changes;
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
        `SELECT st.id, st.session_id AS sessionId, st.seq, st.received_at AS receivedAt, st.protocol, st.name, st.text
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
    this.closed = true;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('audit log is closed');
  }
}

function callSafely(done: RecordDone, err: Error | null, ids?: readonly number[]): void {
  try {
    done(err, ids);
  } catch (e) {
    // One throwing callback must not keep the others of the batch from hearing about their records.
    process.nextTick(() => {
      throw e;
    });
  }
}
