import type Database from 'better-sqlite3';
import { CHAIN_TABLES, chainHash, HASH_BYTES, readHead, sha256Hex, type ChainTable } from './chain.js';
import { ChainWalk, type ChainedRow } from './chain-walk.js';
import { POLICY_APPLIED, SESSION_ENDED, SESSION_OPENED, type PolicyAppliedDetail, type SessionEndedDetail, type SessionOpenedDetail } from './events.js';

/**
 * `sluice audit verify`: walk the hash chain (chain.ts) in order and name the first record that is not what
 * was written.
 *
 * What it detects: any edit of a chained row (its hash no longer matches), a row deleted from the middle (the
 * next row links to a hash nobody has), rows moved (the linked predecessor sits elsewhere), rows slipped in (the
 * chain skips them, or they claim a predecessor that already has its successor), a truncated tail (the chain
 * is shorter than the chain_head checkpoint, or its record there has another hash), and sessions/policy_versions
 * rows that disagree with the chained events that opened/ended/applied them.
 *
 * What it does NOT detect: the hash is unkeyed and the encoding is public, so someone who can write the file can
 * rewrite a suffix of the chain (or all of it) with fresh hashes and update chain_head, truncate the tail and
 * chain_head together, or append well-formed rows; the result verifies. Records written after the last
 * checkpoint (at most HEAD_CHECKPOINT_MS before a crash; none after a clean stop) can be cut off unnoticed.
 * Only a head kept somewhere the attacker cannot write catches these: verify prints the head (seq and hash);
 * store it elsewhere (ticket, another machine, a signed log) and pass it back as `anchor` later. Keying the chain
 * (HMAC with a key outside the data directory) would also do. Not covered either: sessions.first/last_statement_id
 * (a lookup aid, not evidence) and agent_keys.
 */
export type VerifyProblem = 'changed' | 'deleted' | 'reordered' | 'inserted';
export type AuditTable = ChainTable | 'sessions' | 'policy_versions' | 'chain_head';

export interface BadRecord {
  /**
   * The record where the chain breaks. For 'deleted' it is the record right after the missing ones (their
   * position is in `detail`), or, for a truncated tail, the last record chain_head says was written.
   */
  table: AuditTable;
  id: number;
  /** Its chain_seq; null for a row that has none (not written by Sluice, or a sessions/policy row). */
  seq: number | null;
  problem: VerifyProblem;
  detail: string;
}

export type VerifyResult =
  | { ok: true; rows: number; head: { seq: number; hash: string } }
  | { ok: false; rows: number; firstBad: BadRecord };

export interface VerifyOptions {
  /** A head printed by an earlier verify: the record at `seq` must still have this hash (hex). */
  anchor?: { seq: number; hash: string };
}

export function verifyAudit(db: Database.Database, opts: VerifyOptions = {}): VerifyResult {
  // One read transaction: chain_head, the walk and the cross-checks see the same snapshot while a broker writes.
  return db.transaction(() => verifySnapshot(db, opts))();
}

function verifySnapshot(db: Database.Database, opts: VerifyOptions): VerifyResult {
  const storedHead = db.prepare('SELECT 1 FROM chain_head WHERE id = 1').get() ? readHead(db) : null;
  const walk = new ChainWalk(db);
  const checkEvent = eventChecker(db);
  let count = 0;
  let prev: Buffer = Buffer.alloc(HASH_BYTES);
  let last: ChainedRow | null = null;
  const bad = (r: { table: AuditTable; id: number; seq: number | null }, problem: VerifyProblem, detail: string): VerifyResult => ({
    ok: false, rows: count, firstBad: { table: r.table, id: r.id, seq: r.seq, problem, detail },
  });
  try {
    for (let r = walk.next(); r; r = walk.next()) {
      if (selfOk(r) && (r.prev as Buffer).equals(prev)) {
        if (r.table === 'audit_events') {
          const problem = checkEvent(r);
          if (problem) return bad(problem.at, problem.problem, problem.detail);
        }
        count++;
        prev = r.hash as Buffer;
        last = r;
        if (opts.anchor && opts.anchor.seq === count && prev.toString('hex') !== opts.anchor.hash.toLowerCase()) {
          return bad(r, 'changed', `record ${count} does not have the anchored hash: the chain was rewritten at or before it`);
        }
        if (storedHead && storedHead.seq === count && !prev.equals(storedHead.hash)) {
          return bad(r, 'changed', `record ${count} does not have the hash chain_head checkpointed for it: the chain was rewritten at or before it`);
        }
        continue;
      }
      const why = classify(db, walk, r, prev, last);
      return bad(why.at, why.problem, why.detail);
    }
    if (!storedHead) {
      return count === 0 ? okResult(count, prev) : bad({ table: 'chain_head', id: 1, seq: null }, 'deleted', 'the chain_head row is missing');
    }
    if (count < storedHead.seq) {
      return bad(
        { table: storedHead.table ?? 'chain_head', id: storedHead.rowId ?? 1, seq: storedHead.seq },
        'deleted',
        `the chain ends at record ${count} but chain_head records ${storedHead.seq}: the last ${storedHead.seq - count} record(s) are missing`,
      );
    }
    if (opts.anchor && opts.anchor.seq > count) {
      return bad({ table: 'chain_head', id: 1, seq: storedHead.seq }, 'deleted', `the anchor is record ${opts.anchor.seq} but the chain has only ${count}`);
    }
    const orphan = unchainedRows(db);
    if (orphan) return bad(orphan.at, orphan.problem, orphan.detail);
    return okResult(count, prev);
  } finally {
    walk.close();
  }
}

const okResult = (rows: number, hash: Buffer): VerifyResult => ({ ok: true, rows, head: { seq: rows, hash: hash.toString('hex') } });

const isHash = (v: unknown): v is Buffer => Buffer.isBuffer(v) && v.length === HASH_BYTES;

function selfOk(r: ChainedRow): boolean {
  if (!isHash(r.prev) || !isHash(r.hash)) return false;
  return chainHash(r.prev, r.table, r.values).equals(r.hash);
}

interface Finding {
  at: { table: AuditTable; id: number; seq: number | null };
  problem: VerifyProblem;
  detail: string;
}

/** `r` does not verify, or does not link to `prev`: say why, as precisely as the rows allow. */
function classify(db: Database.Database, walk: ChainWalk, r: ChainedRow, prev: Buffer, last: ChainedRow | null): Finding {
  const at = { table: r.table, id: r.id, seq: r.seq };
  const next = walk.peek();
  const chainSkipsIt = next !== null && selfOk(next) && (next.prev as Buffer).equals(prev);
  if (r.seq === null) return { at, problem: 'inserted', detail: 'it has no chain_seq: Sluice did not write it' };
  if (!selfOk(r)) {
    const inPlace = (isHash(r.prev) && r.prev.equals(prev)) || (next !== null && isHash(r.hash) && isHash(next.prev) && next.prev.equals(r.hash));
    if (!inPlace) {
      if (chainSkipsIt) return { at, problem: 'inserted', detail: 'its hash is wrong and the chain continues without it' };
      const pred = isHash(r.prev) ? locate(db, r.prev) : null;
      if (pred && walk.passed(pred.table, pred.id)) return { at, problem: 'inserted', detail: `its hash is wrong and it links to ${pred.table} ${pred.id}, which already has its successor` };
    }
    return { at, problem: 'changed', detail: 'its contents no longer match its hash' };
  }
  // Well-formed on its own, but it does not follow the previous record.
  const pred = locate(db, r.prev as Buffer);
  if (pred && !walk.passed(pred.table, pred.id)) {
    return { at, problem: 'reordered', detail: `it links to ${pred.table} ${pred.id}, which comes later in the chain` };
  }
  if (pred || chainSkipsIt) {
    return { at, problem: 'inserted', detail: pred ? `it links to ${pred.table} ${pred.id}, which already has its successor` : 'the chain continues without it' };
  }
  const expected = (last?.seq ?? 0) + 1;
  if (last && r.seq === expected) {
    return { at: { table: last.table, id: last.id, seq: last.seq }, problem: 'changed', detail: `its hash is not the one the next record (${r.table} ${r.id}) links to (rehashed?)` };
  }
  const gap = r.seq > expected ? `chain seq ${expected}${r.seq - 1 > expected ? `..${r.seq - 1}` : ''}` : 'its predecessor';
  return { at, problem: 'deleted', detail: `${gap} missing before it: it links to a record that no longer exists` };
}

function locate(db: Database.Database, hash: Buffer): { table: ChainTable; id: number } | null {
  for (const table of CHAIN_TABLES) {
    const id = db.prepare(`SELECT id FROM ${table} WHERE hash = ? ORDER BY id LIMIT 1`).pluck().get(hash) as number | undefined;
    if (id !== undefined) return { table, id };
  }
  return null;
}

/** Checks sessions and policy_versions rows against the chained events that vouch for them. */
function eventChecker(db: Database.Database): (r: ChainedRow) => Finding | null {
  const session = db.prepare(
    `SELECT identity, target, client_addr AS clientAddr, application_name AS applicationName, started_at AS startedAt,
            ended_at AS endedAt, end_reason AS endReason FROM sessions WHERE id = ?`,
  );
  const policy = db.prepare('SELECT text, sha256 FROM policy_versions WHERE id = ?');
  return (r) => {
    const [, kind, sessionId, at, detailText] = r.values as [number, string, number | null, number, string | null];
    if (kind !== SESSION_OPENED && kind !== SESSION_ENDED && kind !== POLICY_APPLIED) return null;
    const seq = r.seq;
    let detail: unknown;
    try {
      detail = JSON.parse(detailText ?? 'null');
    } catch {
      detail = null;
    }
    // Cannot happen unless the writer is broken: the event's hash verified, so this is what was written.
    if (typeof detail !== 'object' || detail === null) return { at: { table: 'audit_events', id: r.id, seq }, problem: 'changed', detail: 'its detail is not a JSON object' };
    if (kind === POLICY_APPLIED) {
      const d = detail as unknown as PolicyAppliedDetail;
      const row = policy.get(d.policyVersionId) as { text: string; sha256: string } | undefined;
      const where = { table: 'policy_versions' as const, id: d.policyVersionId, seq };
      if (!row) return { at: where, problem: 'deleted', detail: `the policy version applied by audit_events ${r.id} is missing` };
      if (row.sha256 !== d.sha256 || sha256Hex(row.text) !== d.sha256) return { at: where, problem: 'changed', detail: 'its text does not match the SHA-256 its policy_applied event recorded' };
      return null;
    }
    const s = session.get(sessionId) as { identity: string; target: string; clientAddr: string; applicationName: string | null; startedAt: number; endedAt: number | null; endReason: string | null } | undefined;
    const where = { table: 'sessions' as const, id: sessionId ?? 0, seq };
    if (!s) return { at: where, problem: 'deleted', detail: `the session of ${kind} event ${r.id} is missing` };
    if (kind === SESSION_OPENED) {
      const d = detail as unknown as SessionOpenedDetail;
      const same = s.identity === d.identity && s.target === d.target && s.clientAddr === d.clientAddr && s.applicationName === d.applicationName && s.startedAt === at;
      return same ? null : { at: where, problem: 'changed', detail: 'it differs from its session_opened event (identity, target, client, application_name or start)' };
    }
    const d = detail as unknown as SessionEndedDetail;
    return s.endedAt === at && s.endReason === d.reason ? null : { at: where, problem: 'changed', detail: 'its end differs from its session_ended event' };
  };
}

/** Rows that claim to be audited but no chained event vouches for (checked after a clean walk). */
function unchainedRows(db: Database.Database): Finding | null {
  const noOpen = db
    .prepare(`SELECT id FROM sessions s WHERE NOT EXISTS (SELECT 1 FROM audit_events e WHERE e.kind = ? AND e.session_id = s.id) ORDER BY id LIMIT 1`)
    .pluck().get(SESSION_OPENED) as number | undefined;
  if (noOpen !== undefined) return { at: { table: 'sessions', id: noOpen, seq: null }, problem: 'inserted', detail: 'no session_opened event in the chain' };
  const noEnd = db
    .prepare(`SELECT id FROM sessions s WHERE ended_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM audit_events e WHERE e.kind = ? AND e.session_id = s.id) ORDER BY id LIMIT 1`)
    .pluck().get(SESSION_ENDED) as number | undefined;
  if (noEnd !== undefined) return { at: { table: 'sessions', id: noEnd, seq: null }, problem: 'changed', detail: 'it is marked ended but no session_ended event is in the chain' };
  const noPolicyEvent = db
    .prepare(`SELECT id FROM policy_versions p WHERE NOT EXISTS (SELECT 1 FROM audit_events e WHERE e.kind = ? AND json_extract(e.detail, '$.policyVersionId') = p.id) ORDER BY id LIMIT 1`)
    .pluck().get(POLICY_APPLIED) as number | undefined;
  if (noPolicyEvent !== undefined) return { at: { table: 'policy_versions', id: noPolicyEvent, seq: null }, problem: 'inserted', detail: 'no policy_applied event in the chain' };
  return null;
}
