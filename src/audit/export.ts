import type Database from 'better-sqlite3';

export interface ExportOptions {
  /** Only records received (statements) or written (events) at or after this time; null for everything. */
  since: Date | null;
  format: 'jsonl';
}

/**
 * Stream the audit trail as JSON Lines, in chain order, one record per line, never holding more than a row per
 * table in memory. Two line types:
 *
 *   {"type":"statement","chainSeq","hash","id","seq","receivedAt","session":{...},"protocol","name","text","classes",
 *    "objects","decision","rule","reason","params","tags","result":{...}|null}
 *   {"type":"event","chainSeq","hash","id","kind","at","session":{...}|null,"detail"}
 *
 * `session` is {id, identity, target, clientAddr, applicationName, startedAt, endedAt, endReason}; times are ISO 8601;
 * `result` is the statement's latest completion record. `hash` (hex) lets a reader match lines against
 * `sluice audit verify` and an anchored head. Returns the number of lines written.
 *
 * Synchronous and single-connection (better-sqlite3): run it in the CLI or a worker, not on the proxy's thread.
 */
export function exportAudit(db: Database.Database, opts: ExportOptions, write: (line: string) => void): number {
  if (opts.format !== 'jsonl') throw new Error(`unsupported export format "${String(opts.format)}"`);
  const since = opts.since ? opts.since.getTime() : Number.MIN_SAFE_INTEGER;
  const statements = db
    .prepare(
      `SELECT st.chain_seq AS chainSeq, st.hash, st.id, st.seq, st.received_at AS receivedAt, ${SESSION_COLUMNS},
              st.protocol, st.name, st.text, st.classes, st.objects, st.decision, st.rule, st.reason, st.params, st.tags,
              r.completed_at AS completedAt, r.duration_ms AS durationMs, r.rows, r.bytes,
              r.error_code AS errorCode, r.error_message AS errorMessage
         FROM statements st
         LEFT JOIN sessions s ON s.id = st.session_id
         LEFT JOIN statement_results r ON r.id = (SELECT MAX(id) FROM statement_results WHERE statement_id = st.id)
        WHERE st.received_at >= ?
        ORDER BY st.id`,
    )
    .iterate(since) as IterableIterator<Row>;
  const events = db
    .prepare(
      `SELECT e.chain_seq AS chainSeq, e.hash, e.id, e.kind, e.at, e.detail, ${SESSION_COLUMNS}
         FROM audit_events e LEFT JOIN sessions s ON s.id = e.session_id
        WHERE e.at >= ?
        ORDER BY e.id`,
    )
    .iterate(since) as IterableIterator<Row>;

  let n = 0;
  let st = statements.next();
  let ev = events.next();
  try {
    // Merge on chain_seq: within each table id order is chain order (see chain-walk.ts).
    while (!st.done || !ev.done) {
      if (!st.done && (ev.done || (st.value.chainSeq as number) < (ev.value.chainSeq as number))) {
        write(JSON.stringify(statementLine(st.value)));
        st = statements.next();
      } else if (!ev.done) {
        write(JSON.stringify(eventLine(ev.value)));
        ev = events.next();
      }
      n++;
    }
  } finally {
    statements.return?.();
    events.return?.();
  }
  return n;
}

type Row = Record<string, unknown>;

const SESSION_COLUMNS = `s.id AS sId, s.identity AS sIdentity, s.target AS sTarget, s.client_addr AS sClientAddr,
  s.application_name AS sApplicationName, s.started_at AS sStartedAt, s.ended_at AS sEndedAt, s.end_reason AS sEndReason`;

function statementLine(r: Row): Row {
  return {
    type: 'statement',
    chainSeq: r.chainSeq,
    hash: hex(r.hash),
    id: r.id,
    seq: r.seq,
    receivedAt: iso(r.receivedAt),
    session: session(r),
    protocol: r.protocol,
    name: r.name,
    text: r.text,
    classes: json(r.classes),
    objects: json(r.objects),
    decision: r.decision,
    rule: r.rule,
    reason: r.reason,
    params: json(r.params),
    tags: json(r.tags),
    result:
      r.completedAt === null
        ? null
        : { completedAt: iso(r.completedAt), durationMs: r.durationMs, rows: r.rows, bytes: r.bytes, errorCode: r.errorCode, errorMessage: r.errorMessage },
  };
}

function eventLine(r: Row): Row {
  return { type: 'event', chainSeq: r.chainSeq, hash: hex(r.hash), id: r.id, kind: r.kind, at: iso(r.at), session: session(r), detail: json(r.detail) };
}

function session(r: Row): Row | null {
  if (r.sId === null) return null;
  return {
    id: r.sId, identity: r.sIdentity, target: r.sTarget, clientAddr: r.sClientAddr, applicationName: r.sApplicationName,
    startedAt: iso(r.sStartedAt), endedAt: iso(r.sEndedAt), endReason: r.sEndReason,
  };
}

const iso = (ms: unknown): string | null => (typeof ms === 'number' ? new Date(ms).toISOString() : null);
const hex = (b: unknown): string | null => (Buffer.isBuffer(b) ? b.toString('hex') : null);

/** JSON columns are embedded as JSON; a value that does not parse (a damaged row) is passed on as its text. */
function json(v: unknown): unknown {
  if (typeof v !== 'string') return v ?? null;
  try {
    return JSON.parse(v);
  } catch {
    return v;
  }
}
