import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { auditCommand, parseSince } from '../../../src/audit/cli-audit.js';
import { openDataStore } from '../../../src/audit/db.js';
import { exportAudit } from '../../../src/audit/export.js';
import { makeStore, populate, type Store } from './fixture.js';

let s: Store;
beforeEach(() => {
  s = makeStore();
});
afterEach(() => s.cleanup());

const lines = (since: Date | null = null) => {
  const out: string[] = [];
  const n = exportAudit(s.db, { since, format: 'jsonl' }, (l) => out.push(l));
  expect(n).toBe(out.length);
  return out.map((l) => JSON.parse(l) as Record<string, unknown>);
};

describe('exportAudit', () => {
  it('streams statements and events as JSON Lines in chain order, with the session joined', async () => {
    const { a, b, ids } = await populate(s.log);
    const out = lines();
    expect(out.map((l) => [l.type, l.chainSeq])).toEqual([
      ['event', 1], ['event', 2], ['statement', 3], ['statement', 4], ['statement', 5], ['statement', 6], ['event', 8], ['event', 9], ['event', 10],
    ]);
    const first = out[2]!;
    expect(first).toMatchObject({
      type: 'statement', id: ids[0], seq: 1, protocol: 'simple', name: null, text: 'SELECT 1', classes: ['read'], decision: 'allow', rule: 'read-all',
      session: { id: a, identity: 'ci-bot', target: 'prod', clientAddr: '127.0.0.1:5555', applicationName: 'psql', endReason: 'client closed' },
      result: { durationMs: 1.5, rows: 1, bytes: 20, errorCode: null, errorMessage: null },
    });
    expect(first.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(first.receivedAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(out[3]).toMatchObject({ decision: 'deny', reason: 'writes are refused', objects: ['w:public.users'], session: { id: b, identity: 'agent-7', endedAt: null }, result: null });
    expect(out[4]).toMatchObject({ protocol: 'parse', name: 's1', params: ['42'], tags: { tool: 'psql', run: 'r1' } });
    expect(out[6]).toMatchObject({ type: 'event', kind: 'policy_applied', session: null, detail: { sourcePath: '/etc/sluice.yaml' } });
    expect(out[7]).toMatchObject({ type: 'event', kind: 'approval_decided', session: { id: b }, detail: { operator: 'alice' } });
  });

  it('filters by time', async () => {
    await populate(s.log);
    expect(lines(new Date(Date.now() + 60_000))).toEqual([]);
    expect(lines(new Date(0))).toHaveLength(9);
  });

  it('iterates instead of loading everything: lines are written while the query is still reading', async () => {
    const { a } = await populate(s.log);
    // 2000 more statements; the writer callback sees a row before the statement iterator is exhausted
    s.db.prepare(
      `WITH RECURSIVE n(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM n WHERE v < 2000)
       INSERT INTO statements (session_id, seq, received_at, protocol, text, chain_seq, prev_hash, hash)
       SELECT ?, 100 + v, 0, 'simple', 'x', 1000 + v, zeroblob(32), zeroblob(32) FROM n`,
    ).run(a);
    let busy = false;
    exportAudit(s.db, { since: null, format: 'jsonl' }, () => {
      if (busy) return;
      try {
        s.db.prepare('INSERT INTO agent_keys (name, groups, created_at) VALUES (?, ?, 0)').run('k', '[]');
      } catch (e) {
        busy = /busy executing a query/.test((e as Error).message);
      }
    });
    expect(busy).toBe(true);
  });
});

describe('sluice audit', () => {
  const run = async (argv: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await auditCommand(argv, { log: (l) => out.push(l), error: (l) => err.push(l) }, () => openDataStore(s.dir));
    return { code, out, err };
  };

  it('verify: exit 0 with the count and head; 1 naming the first bad record', async () => {
    await populate(s.log);
    const ok = await run(['verify']);
    expect(ok.code).toBe(0);
    expect(ok.out[0]).toBe('audit chain ok: 10 record(s) verified');
    const head = /^head: (10:[0-9a-f]{64})$/.exec(ok.out[1]!)?.[1];
    expect(head).toBeDefined();
    expect((await run(['verify', '--anchor', head!])).code).toBe(0);

    s.raw().prepare("UPDATE statements SET text = 'SELECT 2' WHERE id = 1").run();
    const bad = await run(['verify']);
    expect(bad.code).toBe(1);
    expect(bad.err[0]).toBe('audit chain BROKEN at statements 1 (chain seq 3): changed: its contents no longer match its hash');
    expect(bad.err[1]).toBe('2 record(s) before it verified.');
  });

  it('export writes JSON Lines to stdout; usage errors exit 2', async () => {
    await populate(s.log);
    const r = await run(['export', '--since', '7d', '--format', 'jsonl']);
    expect(r.code).toBe(0);
    expect(r.out.map((l) => (JSON.parse(l) as { type: string }).type)).toHaveLength(9);
    expect((await run(['export', '--format', 'csv'])).code).toBe(2);
    expect((await run(['export', '--since', 'yesterday'])).code).toBe(2);
    expect((await run(['verify', '--anchor', 'nope'])).code).toBe(2);
    expect((await run(['frobnicate'])).code).toBe(2);
    expect((await run([])).code).toBe(2);
    expect((await run(['--help'])).code).toBe(0);
  });

  it('parses --since as an ISO time or a duration back from now', () => {
    const now = Date.parse('2026-03-10T12:00:00Z');
    expect(parseSince('2026-01-01T00:00:00Z', now).toISOString()).toBe('2026-01-01T00:00:00.000Z');
    expect(parseSince('2026-01-01', now).toISOString()).toBe('2026-01-01T00:00:00.000Z');
    expect(parseSince('7d', now).toISOString()).toBe('2026-03-03T12:00:00.000Z');
    expect(() => parseSince('2026-13-45', now)).toThrow(/invalid --since/);
  });
});
