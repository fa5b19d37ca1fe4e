import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditLog, type StatementRecord, type StatementResult } from '../../../src/audit/audit-log.js';
import { openDataStore, type DataStore } from '../../../src/audit/db.js';

let dir: string;
let db: DataStore;
let reader: DataStore; // a second connection, as another process would see the file
let log: AuditLog;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-audit-'));
  db = openDataStore(dir);
  reader = openDataStore(dir);
  log = new AuditLog(db, { onError: () => {} });
});
afterEach(() => {
  log.close();
  for (const d of [db, reader]) if (d.open) d.close();
  rmSync(dir, { recursive: true, force: true });
});

const session = (identity = 'agent') =>
  log.openSession({ identity, target: 'prod', clientAddr: '127.0.0.1:5555', applicationName: 'psql' });
const rec = (sessionId: number, text: string, extra: Partial<StatementRecord> = {}): StatementRecord => ({
  sessionId,
  protocol: 'simple',
  name: null,
  text,
  receivedAt: Date.now(),
  ...extra,
});
const visibleCount = () => reader.prepare('SELECT COUNT(*) FROM statements').pluck().get() as number;

/** record() as a promise: resolves with the error (or null) and ids. */
function recordP(records: StatementRecord[]): Promise<{ err: Error | null; ids: readonly number[] | undefined }> {
  return new Promise((resolve) => log.record(records, (err, ids) => resolve({ err, ids })));
}

describe('AuditLog', () => {
  it('opens a session and lists it', () => {
    const id = session('ci-bot');
    const [s] = log.listSessions(10);
    expect(s).toMatchObject({ id, identity: 'ci-bot', target: 'prod', clientAddr: '127.0.0.1:5555', applicationName: 'psql', endedAt: null, endReason: null });
  });

  it('writes records queued in one turn together, and calls back only once all are visible to other connections', async () => {
    const a = session();
    const b = session();
    const seenAtCallback: number[] = [];
    const done = new Promise<void>((resolve) => {
      let left = 20;
      for (let i = 0; i < 20; i++) {
        log.record([rec(i % 2 ? b : a, `select ${i}`)], (err) => {
          expect(err).toBeNull();
          seenAtCallback.push(visibleCount());
          if (--left === 0) resolve();
        });
      }
    });
    expect(visibleCount()).toBe(0); // nothing is written synchronously
    await done;
    // Even the first callback saw all 20 rows: they were committed together before any callback ran.
    expect(seenAtCallback).toEqual(Array(20).fill(20));
    expect(log.listStatements(a).map((s) => [s.seq, s.text])).toEqual(
      [0, 2, 4, 6, 8, 10, 12, 14, 16, 18].map((n, i) => [i + 1, `select ${n}`]),
    );
    expect(log.listStatements(b).map((s) => s.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('commits one turn as one transaction: one bad record fails the whole turn, not the next one', async () => {
    const s = session();
    const good = Array.from({ length: 10 }, (_, i) => recordP([rec(s, `select ${i}`)]));
    // bypasses the type to violate the CHECK constraint inside the same batch
    const bad = recordP([rec(s, 'select bad', { protocol: 'bogus' as never })]);
    const results = await Promise.all([...good, bad]);
    for (const r of results) expect(r.err?.message).toMatch(/CHECK constraint/);
    expect(visibleCount()).toBe(0);

    const next = await recordP([rec(s, 'select after')]);
    expect(next.err).toBeNull();
    // the failed batch handed its seq numbers back, so committed seqs have no gap
    expect(log.listStatements(s).map((r) => [r.seq, r.text])).toEqual([[1, 'select after']]);
  });

  it('gives every callback of a batch the error when the store cannot be written, and writes nothing', async () => {
    const s = session();
    const first = await recordP([rec(s, 'select 1')]);
    expect(first.err).toBeNull();

    db.pragma('query_only = ON');
    const failing = await Promise.all([
      recordP([rec(s, 'select 2'), rec(s, 'select 3')]),
      recordP([rec(s, 'select 4', { protocol: 'parse', name: 'stmt1' })]),
      recordP([rec(s, 'select 5', { protocol: 'execute', name: '' })]),
    ]);
    for (const r of failing) {
      expect(r.err).toBeInstanceOf(Error);
      expect(r.err?.message).toMatch(/readonly|read-only/i);
      expect(r.ids).toBeUndefined();
    }
    expect(visibleCount()).toBe(1);

    db.pragma('query_only = OFF');
    const again = await recordP([rec(s, 'select 6', { protocol: 'parse', name: 'stmt1' })]);
    expect(again.err).toBeNull();
    expect(again.ids).toHaveLength(1);
    const rows = log.listStatements(s);
    expect(rows.map((r) => [r.seq, r.text, r.protocol, r.name])).toEqual([
      [1, 'select 1', 'simple', null],
      [2, 'select 6', 'parse', 'stmt1'],
    ]);
    expect(rows[1]?.id).toBe(again.ids?.[0]);
  });

  it('fails the batch when the statements table is gone', async () => {
    const s = session();
    reader.exec('DROP TABLE statements');
    const results = await Promise.all([recordP([rec(s, 'a')]), recordP([rec(s, 'b')])]);
    for (const r of results) expect(r.err?.message).toMatch(/statements/);
  });

  it('refuses records for sessions that are not open, asynchronously', async () => {
    const s = session();
    log.endSession(s, 'client closed');
    let sync = true;
    const result = recordP([rec(s, 'select 1')]).then((r) => ({ ...r, sync }));
    sync = false;
    const r = await result;
    expect(r.sync).toBe(false);
    expect(r.err?.message).toMatch(/not open/);
    expect((await recordP([rec(12345, 'x')])).err?.message).toMatch(/not open/);
  });

  it('ends a session once: the first reason and time win', async () => {
    const s = session();
    log.endSession(s, 'client closed');
    const first = log.listSessions(1)[0];
    await new Promise((r) => setTimeout(r, 5));
    log.endSession(s, 'server shutdown');
    const second = log.listSessions(1)[0];
    expect(first?.endReason).toBe('client closed');
    expect(second).toEqual(first);
  });

  it('still writes records queued just before the session ended', async () => {
    const s = session();
    const p = recordP([rec(s, 'select 1')]);
    log.endSession(s, 'client closed');
    expect((await p).err).toBeNull();
    expect(log.listStatements(s)).toHaveLength(1);
  });

  it('marks sessions left open by a previous run as aborted, at their last known activity', async () => {
    const a = session();
    const b = session();
    const c = session();
    expect((await recordP([rec(b, 'select 1', { receivedAt: 4242 })])).err).toBeNull();
    log.endSession(c, 'client closed');
    log.close();
    db.close();

    db = openDataStore(dir);
    log = new AuditLog(db);
    const mine = session(); // opened by this run: must not be touched
    expect(log.markOpenSessionsAborted('sluice restarted')).toBe(2);
    const byId = new Map(log.listSessions(10).map((s) => [s.id, s]));
    expect(byId.get(a)).toMatchObject({ endReason: 'sluice restarted' });
    expect(byId.get(a)?.endedAt).toBe(byId.get(a)?.startedAt);
    expect(byId.get(b)).toMatchObject({ endReason: 'sluice restarted', endedAt: 4242 });
    expect(byId.get(c)).toMatchObject({ endReason: 'client closed' });
    expect(byId.get(mine)).toMatchObject({ endedAt: null });
    expect(log.markOpenSessionsAborted('again')).toBe(0);
  });

  it('close() writes what is queued and refuses later records', async () => {
    const s = session();
    let called: Error | null | undefined;
    log.record([rec(s, 'select 1')], (err) => (called = err));
    log.close();
    expect(called).toBeNull();
    expect(visibleCount()).toBe(1);
    expect((await recordP([rec(s, 'select 2')])).err?.message).toMatch(/closed/);
  });

  it('stores the decision columns: classes, objects, decision, rule, reason, params and tags', async () => {
    const s = session();
    const r = await recordP([
      rec(s, 'SELECT $1 /*tool=\'q\'*/', {
        protocol: 'parse', name: '', classes: ['read', 'write'], objects: ['r:public.users', 'w:public.orders', 'f:pg_sleep'],
        decision: 'deny', rule: 'no-writes', reason: 'writes to public.orders are refused', params: ['1', null], tags: { tool: 'q' },
      }),
      rec(s, 'SELECT 2', { params: null, tags: {} }),
    ]);
    expect(r.err).toBeNull();
    const rows = reader.prepare('SELECT classes, objects, decision, rule, reason, params, tags FROM statements ORDER BY id').all();
    expect(rows).toEqual([
      {
        classes: '["read","write"]', objects: '["r:public.users","w:public.orders","f:pg_sleep"]', decision: 'deny', rule: 'no-writes',
        reason: 'writes to public.orders are refused', params: '["1",null]', tags: '{"tool":"q"}',
      },
      { classes: null, objects: null, decision: null, rule: null, reason: null, params: null, tags: null },
    ]);
    expect(log.listStatements(s)[0]).toMatchObject({ decision: 'deny', rule: 'no-writes', reason: 'writes to public.orders are refused' });
  });

  it('writes completions with the next batch, in the same transaction as the records queued with them', async () => {
    const s = session();
    const [id] = (await recordP([rec(s, 'SELECT 1')])).ids!;
    const result: StatementResult = { completedAt: 1234, durationMs: 0.75, rows: 1, bytes: 42 };
    const completed = new Promise<Error | null>((resolve) => log.complete(id!, result, resolve));
    const next = recordP([rec(s, 'SELECT 2')]);
    expect(await completed).toBeNull();
    expect((await next).err).toBeNull();
    expect(reader.prepare('SELECT statement_id AS statementId, completed_at AS completedAt, duration_ms AS durationMs, rows, bytes, error_code AS errorCode FROM statement_results').all())
      .toEqual([{ statementId: id, completedAt: 1234, durationMs: 0.75, rows: 1, bytes: 42, errorCode: null }]);
    const seqs = reader.prepare("SELECT chain_seq FROM statements UNION ALL SELECT chain_seq FROM statement_results ORDER BY 1").pluck().all();
    expect(seqs).toEqual([2, 3, 4]); // record, then (one transaction) the second record and the completion
  });

  it('a completion that cannot be written fails alone, never the records batched with it', async () => {
    const s = session();
    const bad = new Promise<Error | null>((resolve) => log.complete(999, { completedAt: 1, durationMs: 1, errorCode: '57014', errorMessage: 'canceled' }, resolve));
    const good = recordP([rec(s, 'SELECT 1')]);
    log.complete(998, { completedAt: 1, durationMs: 1 }); // no callback: nothing to report to
    expect((await bad)?.message).toMatch(/FOREIGN KEY/);
    expect((await good).err).toBeNull();
    expect(visibleCount()).toBe(1);
    expect(reader.prepare('SELECT COUNT(*) FROM statement_results').pluck().get()).toBe(0);
    log.close();
    const late = await new Promise<Error | null>((resolve) => log.complete(1, { completedAt: 1, durationMs: 1 }, resolve));
    expect(late?.message).toMatch(/closed/);
  });

  it('records events and policy versions at once; reserved event kinds are refused', () => {
    const s = session();
    const id = log.event('approval_decided', s, { operator: 'alice', decision: 'allow' });
    expect(reader.prepare('SELECT kind, session_id AS sessionId, detail FROM audit_events WHERE id = ?').get(id))
      .toEqual({ kind: 'approval_decided', sessionId: s, detail: '{"operator":"alice","decision":"allow"}' });
    expect(() => log.event('session_ended', s, null)).toThrow(/written by the audit log itself/);
    const v = log.recordPolicyVersion('/etc/sluice.yaml', 'rules: []\n');
    expect(v.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(reader.prepare('SELECT source_path AS sourcePath, text, sha256 FROM policy_versions WHERE id = ?').get(v.id))
      .toEqual({ sourcePath: '/etc/sluice.yaml', text: 'rules: []\n', sha256: v.sha256 });
    const applied = reader.prepare("SELECT detail FROM audit_events WHERE kind = 'policy_applied'").pluck().get() as string;
    expect(JSON.parse(applied)).toEqual({ policyVersionId: v.id, sha256: v.sha256, sourcePath: '/etc/sluice.yaml' });
  });

  it('lists statements that were queued before their session ended and committed after it', async () => {
    const s = session();
    expect((await recordP([rec(s, 'select 1')])).err).toBeNull();
    const p = recordP([rec(s, 'select 2')]);
    log.endSession(s, 'client closed');
    expect((await p).err).toBeNull();
    expect(log.listStatements(s).map((r) => r.text)).toEqual(['select 1', 'select 2']);
  });

  it('refuses to open a session it cannot record, and the chain does not move', () => {
    session();
    const head = () => db.prepare('SELECT COUNT(*) FROM audit_events').pluck().get();
    const before = head();
    db.pragma('query_only = ON');
    expect(() => session()).toThrow(/readonly/);
    db.pragma('query_only = OFF');
    expect(head()).toEqual(before);
    session();
    expect(db.prepare('SELECT chain_seq FROM audit_events ORDER BY id').pluck().all()).toEqual([1, 2]);
  });
});
