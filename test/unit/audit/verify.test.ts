import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chainHash, hashedColumns, type ChainValue } from '../../../src/audit/chain.js';
import { HEAD_CHECKPOINT_MS } from '../../../src/audit/chain-writer.js';
import { openDataStore } from '../../../src/audit/db.js';
import { AuditLog } from '../../../src/audit/audit-log.js';
import { verifyAudit } from '../../../src/audit/verify.js';
import { chainOrder, makeStore, openSession, populate, rec, recordP, type Store } from './fixture.js';

let s: Store;
beforeEach(() => {
  s = makeStore();
});
afterEach(() => s.cleanup());

const verify = () => verifyAudit(s.db);

describe('the audit hash chain', () => {
  it('links every row of every chained table, in commit order, and verifies', async () => {
    const { ids } = await populate(s.log);
    const order = chainOrder(s.db);
    expect(order.map((o) => o.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(order.map((o) => o.table)).toEqual([
      'audit_events', 'audit_events', 'statements', 'statements', 'statements', 'statements', 'statement_results',
      'audit_events', 'audit_events', 'audit_events',
    ]);
    expect(order.filter((o) => o.table === 'statements').map((o) => o.id)).toEqual(ids);
    const r = verify();
    expect(r).toMatchObject({ ok: true, rows: 10, head: { seq: 10 } });
    s.log.checkpoint();
    const head = s.db.prepare('SELECT seq, tbl, row_id AS rowId, hex(hash) AS hash FROM chain_head').get();
    expect(head).toMatchObject({ seq: 10, tbl: 'audit_events' });
    if (r.ok) expect(r.head.hash).toBe((head as { hash: string }).hash.toLowerCase());
  });

  it('continues across a reopen: the first new row links to the last old one', async () => {
    await populate(s.log);
    const before = verify();
    s.reopen();
    const b = openSession(s.log, 'after-restart');
    expect((await recordP(s.log, [rec(b, 'SELECT 2')])).err).toBeNull();
    expect(verify()).toMatchObject({ ok: true, rows: 12 });
    const first = s.db.prepare('SELECT prev_hash FROM audit_events WHERE chain_seq = 11').pluck().get() as Buffer;
    if (before.ok) expect(first.toString('hex')).toBe(before.head.hash);
  });

  it('checkpoints the head shortly after writes, outside the hot transaction; rows after the checkpoint verify', async () => {
    await populate(s.log);
    const checkpointed = () => s.db.prepare('SELECT seq FROM chain_head').pluck().get();
    expect(checkpointed()).toBe(0);
    expect(verify()).toMatchObject({ ok: true, rows: 10 });
    await new Promise((r) => setTimeout(r, HEAD_CHECKPOINT_MS + 100));
    expect(checkpointed()).toBe(10);
  });

  it('continues after a crash that lost the checkpoint: the head is found from the rows', async () => {
    await populate(s.log);
    s.db.close(); // no close(): the checkpoint timer finds the database closed
    s.db = openDataStore(s.dir);
    s.log = new AuditLog(s.db);
    expect(s.db.prepare('SELECT seq FROM chain_head').pluck().get()).toBe(0);
    const b = openSession(s.log, 'after-crash');
    expect((await recordP(s.log, [rec(b, 'SELECT 2')])).err).toBeNull();
    expect(verify()).toMatchObject({ ok: true, rows: 12 });
  });

  it('a failed batch leaves no gap and the chain continues', async () => {
    const a = openSession(s.log);
    const results = await Promise.all([
      recordP(s.log, [rec(a, 'SELECT 1')]),
      recordP(s.log, [rec(a, 'bad', { protocol: 'bogus' as never })]), // CHECK constraint fails the whole batch
    ]);
    for (const r of results) expect(r.err?.message).toMatch(/CHECK constraint/);
    expect((await recordP(s.log, [rec(a, 'SELECT 2')])).err).toBeNull();
    expect(chainOrder(s.db).map((o) => [o.table, o.seq])).toEqual([['audit_events', 1], ['statements', 2]]);
    expect(verify()).toMatchObject({ ok: true, rows: 2 });
  });

  it('stays one chain when another connection appends (e.g. a CLI recording a policy version)', async () => {
    const a = openSession(s.log);
    const other = new (s.log.constructor as typeof import('../../../src/audit/audit-log.js').AuditLog)(s.raw());
    other.recordPolicyVersion(null, 'v2');
    expect((await recordP(s.log, [rec(a, 'SELECT 1')])).err).toBeNull();
    other.event('note', null, { by: 'cli' });
    other.close();
    expect((await recordP(s.log, [rec(a, 'SELECT 2')])).err).toBeNull();
    s.log.close();
    expect(verify()).toMatchObject({ ok: true, rows: 5 });
  });
});

describe('verify names the first record that was tampered with', () => {
  beforeEach(async () => {
    await populate(s.log);
    s.log.close(); // writes the chain_head checkpoint
  });

  it("UPDATE of a statement's text: changed", () => {
    s.raw().prepare("UPDATE statements SET text = 'SELECT 2' WHERE seq = 1 AND session_id = 1").run();
    expect(verify()).toMatchObject({ ok: false, rows: 2, firstBad: { table: 'statements', id: 1, seq: 3, problem: 'changed' } });
  });

  it('an edit of a decision column: changed', () => {
    s.raw().prepare("UPDATE statements SET decision = 'allow', reason = NULL WHERE decision = 'deny'").run();
    expect(verify()).toMatchObject({ ok: false, firstBad: { table: 'statements', id: 2, seq: 4, problem: 'changed' } });
  });

  it('DELETE in the middle: deleted, named at the record after the gap', () => {
    s.raw().prepare('DELETE FROM statements WHERE id = 2').run(); // chain seq 4
    const r = verify();
    expect(r).toMatchObject({ ok: false, rows: 3, firstBad: { table: 'statements', id: 3, seq: 5, problem: 'deleted' } });
    if (!r.ok) expect(r.firstBad.detail).toMatch(/chain seq 4 missing/);
  });

  it('DELETE of the last row (tail truncation): deleted, naming the record chain_head remembers', () => {
    s.raw().prepare('DELETE FROM audit_events WHERE chain_seq = 10').run();
    const r = verify();
    expect(r).toMatchObject({ ok: false, rows: 9, firstBad: { table: 'audit_events', seq: 10, problem: 'deleted' } });
    if (!r.ok) expect(r.firstBad.detail).toMatch(/last 1 record/);
  });

  it('swapping the contents of two rows: changed (the id is hashed, so a row cannot move to another id)', () => {
    const raw = s.raw();
    const cols = 'session_id, seq, received_at, protocol, name, text, classes, objects, decision, rule, reason, params, tags, chain_seq, prev_hash, hash';
    const [r1, r2] = raw.prepare(`SELECT ${cols} FROM statements WHERE id IN (1, 2) ORDER BY id`).raw().all() as unknown[][];
    const set = raw.prepare(`UPDATE statements SET (${cols}) = (${cols.split(',').map(() => '?').join(',')}) WHERE id = ?`);
    raw.transaction(() => {
      set.run(...r2!, 1);
      set.run(...r1!, 2);
    })();
    expect(verify()).toMatchObject({ ok: false, firstBad: { table: 'statements', id: 1, problem: 'changed' } });
  });

  it('moving a record to another place in the chain: reordered', () => {
    // statements 4 (seq 6) and the result (seq 7) exchange places: both rows are intact, their order is not.
    s.raw().exec(`UPDATE statements SET chain_seq = 7 WHERE id = 4; UPDATE statement_results SET chain_seq = 6 WHERE id = 1`);
    expect(verify()).toMatchObject({ ok: false, rows: 5, firstBad: { table: 'statement_results', id: 1, seq: 6, problem: 'reordered' } });
  });

  it('a naive forged row (no chain columns): inserted', () => {
    const raw = s.raw();
    const id = Number(raw.prepare("INSERT INTO statements (session_id, seq, received_at, protocol, text) VALUES (1, 99, 0, 'simple', 'SELECT forged')").run().lastInsertRowid);
    expect(verify()).toMatchObject({ ok: false, firstBad: { table: 'statements', id, seq: null, problem: 'inserted' } });
  });

  it('a forged row with a correctly computed hash, slipped in the middle: inserted', () => {
    const raw = s.raw();
    const prev = raw.prepare('SELECT hash FROM statements WHERE chain_seq = 4').pluck().get() as Buffer;
    const values: ChainValue[] = [100, 1, 50, 0, 'simple', null, 'SELECT forged', null, null, 'allow', null, null, null, null];
    const hash = chainHash(prev, 'statements', values);
    raw.prepare(`INSERT INTO statements (${hashedColumns('statements')}, chain_seq, prev_hash, hash) VALUES (${'?,'.repeat(16)}?)`).run(...values, 4, prev, hash);
    const r = verify();
    expect(r).toMatchObject({ ok: false, firstBad: { table: 'statements', id: 100, problem: 'inserted' } });
  });

  it('a row appended with a valid hash after the head is NOT detected (documented: appending needs an external witness)', () => {
    const raw = s.raw();
    const prev = raw.prepare('SELECT hash FROM chain_head').pluck().get() as Buffer;
    const values: ChainValue[] = [50, 'note', null, 0, null];
    raw.prepare(`INSERT INTO audit_events (${hashedColumns('audit_events')}, chain_seq, prev_hash, hash) VALUES (?, ?, ?, ?, ?, 11, ?, ?)`)
      .run(...values, prev, chainHash(prev, 'audit_events', values));
    expect(verify()).toMatchObject({ ok: true, rows: 11 });
  });

  it('an edited row whose hash was recomputed: changed, named by its successor no longer linking to it', () => {
    const raw = s.raw();
    const row = raw.prepare(`SELECT ${hashedColumns('statements')}, prev_hash FROM statements WHERE id = 2`).raw().get() as unknown[];
    const values = row.slice(0, -1) as ChainValue[];
    values[6] = 'SELECT harmless';
    raw.prepare('UPDATE statements SET text = ?, hash = ? WHERE id = 2').run(values[6], chainHash(row.at(-1) as Buffer, 'statements', values));
    expect(verify()).toMatchObject({ ok: false, firstBad: { table: 'statements', id: 2, seq: 4, problem: 'changed' } });
  });

  it("a sessions row edited to blame someone else: changed (checked against its chained session_opened)", () => {
    s.raw().prepare("UPDATE sessions SET identity = 'intern' WHERE id = 2").run();
    expect(verify()).toMatchObject({ ok: false, firstBad: { table: 'sessions', id: 2, seq: 2, problem: 'changed' } });
  });

  it('a session end rewritten, or a session made up: changed / inserted', () => {
    const raw = s.raw();
    raw.prepare("UPDATE sessions SET end_reason = 'nothing to see' WHERE id = 1").run();
    expect(verify()).toMatchObject({ ok: false, firstBad: { table: 'sessions', id: 1, seq: 10, problem: 'changed' } });
    raw.prepare("UPDATE sessions SET end_reason = 'client closed' WHERE id = 1").run();
    raw.prepare("UPDATE sessions SET ended_at = 1, end_reason = 'x' WHERE id = 2").run();
    expect(verify()).toMatchObject({ ok: false, firstBad: { table: 'sessions', id: 2, problem: 'changed' } });
    raw.prepare('UPDATE sessions SET ended_at = NULL, end_reason = NULL WHERE id = 2').run();
    expect(verify().ok).toBe(true);
    raw.prepare("INSERT INTO sessions (identity, target, client_addr, started_at) VALUES ('ghost', 'prod', 'x', 1)").run();
    expect(verify()).toMatchObject({ ok: false, firstBad: { table: 'sessions', id: 3, seq: null, problem: 'inserted' } });
  });

  it('an applied policy text edited: changed', () => {
    s.raw().prepare("UPDATE policy_versions SET text = 'policy: { default: allow }'").run();
    expect(verify()).toMatchObject({ ok: false, firstBad: { table: 'policy_versions', id: 1, seq: 8, problem: 'changed' } });
  });

  it('does not detect a consistent rewrite of the tail (documented), unless an anchor from before is given', () => {
    const anchor = verify();
    if (!anchor.ok) throw new Error('expected ok');
    // Rewrite statements 4 and everything after it with fresh hashes, and chain_head: an attacker who read chain.ts.
    const raw = s.raw();
    raw.prepare("UPDATE statements SET text = 'SELECT innocent' WHERE id = 4").run();
    const rows = chainOrder(raw).filter((o) => o.seq >= 6);
    let prev = raw.prepare('SELECT hash FROM statements WHERE chain_seq = 5').pluck().get() as Buffer;
    for (const o of rows) {
      const table = o.table as 'statements' | 'statement_results' | 'audit_events';
      const values = raw.prepare(`SELECT ${hashedColumns(table)} FROM ${table} WHERE id = ?`).raw().get(o.id) as ChainValue[];
      const hash = chainHash(prev, table, values);
      raw.prepare(`UPDATE ${table} SET prev_hash = ?, hash = ? WHERE id = ?`).run(prev, hash, o.id);
      prev = hash;
    }
    raw.prepare('UPDATE chain_head SET hash = ?').run(prev);
    expect(verify()).toMatchObject({ ok: true, rows: 10 });
    const r = verifyAudit(s.db, { anchor: anchor.head });
    expect(r).toMatchObject({ ok: false, firstBad: { seq: 10, problem: 'changed' } });
    // An anchor taken before the rewritten part still verifies.
    const early = raw.prepare('SELECT hex(hash) FROM statements WHERE chain_seq = 5').pluck().get() as string;
    expect(verifyAudit(s.db, { anchor: { seq: 5, hash: early } }).ok).toBe(true);
  });
});
