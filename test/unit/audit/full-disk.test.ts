import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { verifyAudit } from '../../../src/audit/verify.js';
import { chainOrder, completeP, makeStore, openSession, rec, recordP, type Store } from './fixture.js';

let s: Store;
beforeEach(() => {
  s = makeStore();
});
afterEach(() => s.cleanup());

/** Freeze the file at its current size: the next write that needs a new page fails with SQLITE_FULL. */
function fillDisk(): number {
  const pages = s.db.pragma('page_count', { simple: true }) as number;
  s.db.pragma(`max_page_count = ${pages}`);
  return pages;
}
const liftLimit = () => s.db.pragma('max_page_count = 1073741823');
const count = (table: string) => s.db.prepare(`SELECT COUNT(*) FROM ${table}`).pluck().get() as number;
const big = (i: number) => `SELECT '${String(i).repeat(6000)}'`; // larger than a page: every record needs new pages

describe('a full store fails closed', () => {
  it('reports the error to every record of the batch, writes none of it, and recovers when space returns', async () => {
    const a = openSession(s.log);
    const first = await recordP(s.log, [rec(a, 'SELECT 1')]);
    expect(first.err).toBeNull();

    fillDisk();
    const failing = await Promise.all([
      recordP(s.log, [rec(a, big(1)), rec(a, big(2))]),
      recordP(s.log, [rec(a, big(3))]),
      completeP(s.log, first.ids![0]!, { completedAt: Date.now(), durationMs: 2 }).then((err) => ({ err, ids: undefined })),
    ]);
    for (const r of failing) {
      expect(r.err?.message).toMatch(/full/i);
      expect(r.ids).toBeUndefined();
    }
    expect(count('statements')).toBe(1);
    expect(count('statement_results')).toBe(0);
    expect(s.db.inTransaction).toBe(false);

    liftLimit();
    const after = await recordP(s.log, [rec(a, big(4))]);
    expect(after.err).toBeNull();
    expect(await completeP(s.log, first.ids![0]!, { completedAt: Date.now(), durationMs: 2 })).toBeNull();
    // seq numbers handed out to the failed batch were given back
    expect(s.db.prepare('SELECT seq FROM statements ORDER BY id').pluck().all()).toEqual([1, 2]);
    expect(chainOrder(s.db).map((o) => o.seq)).toEqual([1, 2, 3, 4]);
    expect(verifyAudit(s.db)).toMatchObject({ ok: true, rows: 4 });
  });

  it('a session end that cannot be written is reported, not thrown, and recorded at the next start', () => {
    const errors: string[] = [];
    s.log.close();
    s.log = new (s.log.constructor as new (...a: unknown[]) => typeof s.log)(s.db, { onError: (m: string) => errors.push(m) });
    const a = openSession(s.log);
    s.db.pragma('query_only = ON'); // any write failure will do here
    expect(() => s.log.endSession(a, 'client closed')).not.toThrow();
    expect(errors.join('\n')).toMatch(new RegExp(`end of session ${a}.*readonly`, 'i'));
    // neither the sessions row nor the event was written, and the chain head did not move
    expect(s.db.prepare('SELECT ended_at FROM sessions WHERE id = ?').pluck().get(a)).toBeNull();
    s.db.pragma('query_only = OFF');
    expect(s.log.markOpenSessionsAborted('restart')).toBe(1);
    expect(verifyAudit(s.db)).toMatchObject({ ok: true, rows: 2 });
  });
});
