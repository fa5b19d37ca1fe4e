import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { SluiceEvent } from '../../../src/contract/api.js';
import { bytesHash, shapeKey } from '../../../src/approvals/keys.js';
import { ApprovalAuditError, ApprovalQueue, ApprovalRequestError, type ApprovalRequestInfo } from '../../../src/approvals/queue.js';
import { verifyAudit } from '../../../src/audit/verify.js';
import { makeStore, type Store } from '../audit/fixture.js';

let store: Store;
let events: SluiceEvent[];
let queue: ApprovalQueue;
let sessionId: number;

function info(over: Partial<ApprovalRequestInfo> = {}): ApprovalRequestInfo {
  const statement = over.statement ?? 'UPDATE orders SET status = $1 WHERE id = $2';
  const params = over.params === undefined ? ['shipped', '7'] : over.params;
  return {
    sessionId, identity: 'agent', groups: ['test'], target: 'app', applicationName: 'psql', statement,
    classes: ['write'], tables: ['w:public.orders'], params, shapeKey: shapeKey(statement),
    bytesHash: bytesHash(statement, params), deadlineMs: 60_000, rule: 'review-writes', ...over,
  };
}

function auditEvents(kind: string): Record<string, unknown>[] {
  return (store.db.prepare('SELECT detail FROM audit_events WHERE kind = ? ORDER BY id').all(kind) as { detail: string }[])
    .map((r) => JSON.parse(r.detail) as Record<string, unknown>);
}

beforeEach(() => {
  store = makeStore();
  sessionId = store.log.openSession({ identity: 'agent', target: 'app', clientAddr: '127.0.0.1', applicationName: 'psql' });
  events = [];
  queue = new ApprovalQueue({ audit: store.log, emit: (e) => events.push(e) });
});

afterEach(() => {
  queue.close();
  vi.useRealTimers();
  store.cleanup();
});

describe('ApprovalQueue', () => {
  it('approve once settles the wait with the exact bytes, audited with operator and time waited', async () => {
    const { id, decision } = queue.request(info());
    expect(queue.list().map((a) => a.id)).toEqual([id]);
    expect(events.map((e) => e.type)).toEqual(['approval_requested']);
    const r = queue.decide(id, { decision: 'approve_once', reason: 'looks fine' }, 'alice via cli');
    expect(r.outcome).toBe('applied');
    const d = await decision;
    expect(d).toMatchObject({ kind: 'approved', scope: 'once', approvalId: id, bytesHash: bytesHash('UPDATE orders SET status = $1 WHERE id = $2', ['shipped', '7']), operator: 'alice via cli' });
    expect(queue.list()).toEqual([]);
    expect(queue.sessionAllows(sessionId, info().shapeKey)).toBe(false);
    const [requested] = auditEvents('approval_requested');
    expect(requested).toMatchObject({ approvalId: id, statement: info().statement, rule: 'review-writes' });
    expect(requested).not.toHaveProperty('params');
    const [resolved] = auditEvents('approval_resolved');
    expect(resolved).toMatchObject({ approvalId: id, resolution: 'approved_once', operator: 'alice via cli', reason: 'looks fine' });
    expect(typeof resolved!.waitedMs).toBe('number');
    expect(events.at(-1)).toMatchObject({ type: 'approval_resolved', approval: { id, resolution: { kind: 'approved_once' } } });
    store.log.checkpoint();
    expect(verifyAudit(store.db).ok).toBe(true);
  });

  it('approve once cannot be replayed: the same statement waits again, and the grant redeems once for its bytes only', async () => {
    const first = queue.request(info());
    queue.decide(first.id, { decision: 'approve_once' }, 'alice');
    await first.decision;
    expect(queue.redeem(first.id, bytesHash('UPDATE orders SET status = $1 WHERE id = $2', ['shipped', '8']))).toBe(false);
    expect(queue.redeem(first.id, info().bytesHash)).toBe(true);
    expect(queue.redeem(first.id, info().bytesHash)).toBe(false);
    const again = queue.request(info());
    expect(again.id).not.toBe(first.id);
    expect(queue.size).toBe(1);
    expect(queue.sessionAllows(sessionId, info().shapeKey)).toBe(false);
    queue.decide(again.id, { decision: 'deny', reason: 'no' }, 'alice');
    expect((await again.decision).kind).toBe('denied');
    expect(queue.redeem(again.id, info().bytesHash)).toBe(false);
  });

  it('approve for session allows the same shape for that session only, until it ends', async () => {
    const { id, decision } = queue.request(info());
    queue.decide(id, { decision: 'approve_session' }, 'bob');
    expect(await decision).toMatchObject({ kind: 'approved', scope: 'session', shapeKey: info().shapeKey });
    expect(queue.sessionAllows(sessionId, shapeKey('UPDATE orders SET status = $1 WHERE id = $2'))).toBe(true);
    expect(queue.sessionAllows(sessionId, shapeKey('DELETE FROM orders'))).toBe(false);
    expect(queue.sessionAllows(sessionId + 1, info().shapeKey)).toBe(false);
    expect(queue.redeem(id, info().bytesHash)).toBe(false); // a session grant is not an approve-once grant
    queue.endSession(sessionId, 'client disconnected');
    expect(queue.sessionAllows(sessionId, info().shapeKey)).toBe(false);
  });

  it('deny carries the reason as a 42501 refusal, not FATAL', async () => {
    const { id, decision } = queue.request(info());
    queue.decide(id, { decision: 'deny', reason: 'not during business hours' }, 'carol');
    const d = await decision;
    expect(d).toMatchObject({ kind: 'denied', timedOut: false, refusal: { code: '42501' } });
    if (d.kind !== 'denied') throw new Error('unreachable');
    expect(d.refusal.message).toContain('not during business hours');
    expect(d.refusal.message).toContain('carol');
    expect(auditEvents('approval_resolved')[0]).toMatchObject({ resolution: 'denied', operator: 'carol', reason: 'not during business hours' });
  });

  it('the deadline denies with "approval timed out" and a late decision changes nothing', async () => {
    vi.useFakeTimers();
    const { id, decision } = queue.request(info({ deadlineMs: 5_000 }));
    vi.advanceTimersByTime(4_999);
    expect(queue.size).toBe(1);
    vi.advanceTimersByTime(1);
    const d = await decision;
    expect(d).toMatchObject({ kind: 'denied', timedOut: true, refusal: { code: '57014' } });
    if (d.kind !== 'denied') throw new Error('unreachable');
    expect(d.refusal.message).toMatch(/^approval timed out/);
    const late = queue.decide(id, { decision: 'approve_once' }, 'alice');
    expect(late).toMatchObject({ outcome: 'not_applied', why: 'already_resolved', approval: { resolution: { kind: 'timed_out' } } });
    if (late.outcome !== 'not_applied') throw new Error('unreachable');
    expect(late.message).toMatch(/already settled.*timed out.*nothing changed/);
    expect(queue.redeem(id, info().bytesHash)).toBe(false);
    expect(auditEvents('approval_late_decision')[0]).toMatchObject({ approvalId: id, decision: 'approve_once', settledAs: 'timed_out' });
  });

  it('void ends the wait at once; a decision afterwards is refused and says so', async () => {
    const { id, decision } = queue.request(info());
    expect(queue.void(id, 'client cancelled the statement')).toBe(true);
    expect(await decision).toEqual({ kind: 'voided', approvalId: id, reason: 'client cancelled the statement' });
    expect(queue.void(id, 'again')).toBe(false);
    const late = queue.decide(id, { decision: 'approve_session' }, 'alice');
    expect(late).toMatchObject({ outcome: 'not_applied', why: 'already_resolved', approval: { resolution: { kind: 'voided' } } });
    expect(queue.sessionAllows(sessionId, info().shapeKey)).toBe(false);
  });

  it('a second decision on a decided approval changes nothing', async () => {
    const { id, decision } = queue.request(info());
    queue.decide(id, { decision: 'deny', reason: 'no' }, 'alice');
    const second = queue.decide(id, { decision: 'approve_once' }, 'bob');
    expect(second).toMatchObject({ outcome: 'not_applied', why: 'already_resolved' });
    expect((await decision).kind).toBe('denied');
    expect(queue.decide('ffffffff', { decision: 'approve_once' }, 'bob')).toMatchObject({ outcome: 'not_applied', why: 'unknown', approval: null });
  });

  it('ending a session voids its pending approvals only', async () => {
    const other = store.log.openSession({ identity: 'other', target: 'app', clientAddr: '127.0.0.1', applicationName: null });
    const mine = queue.request(info());
    const theirs = queue.request(info({ sessionId: other }));
    queue.endSession(sessionId, 'client disconnected');
    expect(await mine.decision).toMatchObject({ kind: 'voided', reason: 'client disconnected' });
    expect(queue.list().map((a) => a.id)).toEqual([theirs.id]);
  });

  it('20 pending decided in random order each get their own outcome', async () => {
    const reqs = Array.from({ length: 20 }, (_, i) => {
      const statement = `UPDATE orders SET n = ${i} WHERE id = $1`;
      const r = queue.request(info({ statement, params: [String(i)], shapeKey: shapeKey(statement), bytesHash: bytesHash(statement, [String(i)]) }));
      return { ...r, i, statement };
    });
    const kinds = ['approve_once', 'approve_session', 'deny'] as const;
    const order = [...reqs].sort(() => Math.random() - 0.5);
    for (const r of order) {
      const kind = kinds[r.i % 3]!;
      queue.decide(r.id, kind === 'deny' ? { decision: 'deny', reason: `no ${r.i}` } : { decision: kind }, `op${r.i}`);
    }
    const outcomes = await Promise.all(reqs.map((r) => r.decision));
    outcomes.forEach((d, i) => {
      const kind = kinds[i % 3]!;
      expect(d.approvalId).toBe(reqs[i]!.id);
      if (kind === 'deny') {
        expect(d.kind).toBe('denied');
        if (d.kind === 'denied') expect(d.refusal.message).toContain(`no ${i}`);
      } else {
        expect(d).toMatchObject({ kind: 'approved', scope: kind === 'approve_once' ? 'once' : 'session', operator: `op${i}` });
        if (d.kind === 'approved' && d.scope === 'once') expect(d.bytesHash).toBe(bytesHash(reqs[i]!.statement, [String(i)]));
      }
    });
    expect(new Set(reqs.map((r) => r.id)).size).toBe(20);
  });

  it('fails closed: a request that cannot be audited is refused, a grant that cannot be audited is not given', async () => {
    const { id, decision } = queue.request(info());
    store.log.close();
    expect(() => queue.request(info())).toThrow(ApprovalRequestError);
    expect(() => queue.decide(id, { decision: 'approve_once' }, 'alice')).toThrow(ApprovalAuditError);
    expect(queue.size).toBe(1);
    // A denial stands even when it cannot be recorded.
    expect(queue.decide(id, { decision: 'deny', reason: 'store is down' }, 'alice').outcome).toBe('applied');
    expect((await decision).kind).toBe('denied');
  });

  it('refuses new requests beyond maxPending and after close', () => {
    const small = new ApprovalQueue({ audit: store.log, maxPending: 2 });
    small.request(info());
    small.request(info());
    expect(() => small.request(info())).toThrow(/too many statements/);
    small.close();
    expect(small.size).toBe(0);
    expect(() => small.request(info())).toThrow(/shutting down/);
  });

  it('shows the estimate when it arrives, and an estimator failure as unavailable', async () => {
    let finish!: (rows: number) => void;
    const q = new ApprovalQueue({
      audit: store.log, emit: (e) => events.push(e),
      estimate: (a, params) => new Promise((resolve) => (finish = (rows) => resolve({ kind: 'estimate', rows: rows + Number(params?.[1] ?? 0), operation: 'update', relation: a.target, source: 'EXPLAIN (FORMAT JSON)' }))),
    });
    const { id } = q.request(info({ params: ['<redacted>', '<redacted>'], explainParams: ['shipped', '7'] }));
    expect(q.list()[0]!.impact).toEqual({ kind: 'pending' });
    expect(q.list()[0]!.params).toEqual(['<redacted>', '<redacted>']);
    finish(100);
    await new Promise((r) => setImmediate(r));
    expect(q.list()[0]!.impact).toMatchObject({ kind: 'estimate', rows: 107 });
    expect(events.filter((e) => e.type === 'approval_updated').map((e) => e.type === 'approval_updated' && e.approval.id)).toEqual([id]);
    const failing = new ApprovalQueue({ audit: store.log, estimate: () => Promise.reject(new Error('side connection refused')) });
    failing.request(info());
    await new Promise((r) => setImmediate(r));
    expect(failing.list()[0]!.impact).toEqual({ kind: 'unavailable', reason: 'side connection refused' });
    q.close();
    failing.close();
  });

  it('formats the statement for the operator', () => {
    queue.request(info({ statement: 'DELETE FROM orders WHERE note = \'\u202Eok\'' }));
    const [a] = queue.list();
    expect(a!.formatted.text).toContain('⟦U+202E RIGHT-TO-LEFT OVERRIDE⟧');
    expect(a!.formatted.warnings.join(' ')).toMatch(/bidirectional/);
  });
});

describe('approval keys', () => {
  it('bytesHash tells NULL, empty, "NULL" and text/param boundaries apart', () => {
    const hashes = [
      bytesHash('SELECT $1', [null]), bytesHash('SELECT $1', ['']), bytesHash('SELECT $1', ['NULL']),
      bytesHash('SELECT $1', []), bytesHash('SELECT $', ['1']),
      bytesHash('SELECT $1', ['a', 'b']), bytesHash('SELECT $1', ['ab']),
    ];
    expect(new Set(hashes).size).toBe(hashes.length);
    expect(bytesHash('SELECT 1', null)).toBe(bytesHash(Buffer.from('SELECT 1'), []));
  });

  it('shapeKey is the text: other constants are another shape', () => {
    expect(shapeKey('DELETE FROM t WHERE id = $1')).toBe(shapeKey('DELETE FROM t WHERE id = $1'));
    expect(shapeKey('DELETE FROM t WHERE id = 1')).not.toBe(shapeKey('DELETE FROM t WHERE id = 2'));
  });
});
