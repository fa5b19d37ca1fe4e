import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { reviewCommand } from '../../../src/audit/cli-review.js';
import { openDataStore } from '../../../src/audit/db.js';
import { accessReview, NEVER_MATCHED_NOTE, type AccessReview } from '../../../src/audit/review.js';
import { AgentKeyStore } from '../../../src/identity/agent-keys.js';
import { PolicySchema, type Policy } from '../../../src/policy/model.js';
import { makeStore, openSession, rec, recordP, type Store } from './fixture.js';

const DAY = 86_400_000;
const policy: Policy = PolicySchema.parse({
  rules: [
    { name: 'read-all', allow: ['read'] },
    { name: 'no-writes', deny: ['write'] },
    { name: 'review-ddl', review: ['ddl'] },
    { name: 'never-used', allow: ['utility'] },
  ],
});

let s: Store;
let keys: AgentKeyStore;
let t0: number;

beforeEach(() => {
  s = makeStore();
  keys = new AgentKeyStore(s.db);
  t0 = Date.now();
});
afterEach(() => s.cleanup());

/** ci-bot (key, used), stale (key created 40 days ago, never used), gone (revoked), old (expired), anon (no key). */
async function populate(): Promise<void> {
  const { secret } = keys.add('ci-bot', { groups: ['ci', 'readers'] });
  expect((await keys.verify('ci-bot', secret)).ok).toBe(true);
  keys.add('stale', { groups: [] }, t0 - 40 * DAY);
  keys.add('gone', { groups: ['ops'] });
  keys.revoke('gone');
  keys.add('old', { groups: [], expiresAt: t0 - 9 * DAY }, t0 - 10 * DAY);

  const a = openSession(s.log, 'ci-bot');
  const b = openSession(s.log, 'ci-bot');
  const anon = openSession(s.log, 'anon');
  const allow = { decision: 'allow', rule: 'read-all' } as const;
  const results = await Promise.all([
    recordP(s.log, [rec(a, 'SELECT 1', { classes: ['read'], ...allow })]),
    recordP(s.log, [rec(a, 'SELECT 2', { classes: ['read'], ...allow })]),
    // one message of two statements, refused as a whole
    recordP(s.log, [rec(a, 'SELECT 3; DELETE FROM t', { classes: ['read', 'write'], decision: 'deny', rule: 'no-writes' })]),
    recordP(s.log, [rec(b, 'DELETE FROM u', { classes: ['write'], decision: 'deny', rule: 'no-writes' })]),
    recordP(s.log, [rec(b, 'CREATE TABLE x ()', { classes: ['ddl'], decision: 'review', rule: 'review-ddl' })]),
    recordP(s.log, [rec(b, "SELECT pg_read_file('/etc/passwd')", { classes: ['read'], decision: 'deny', rule: 'builtin:file-access' })]),
    recordP(s.log, [rec(b, 'SELEC oops', { decision: 'deny', rule: 'default-deny' })]),
    // an old statement, outside a --since window
    recordP(s.log, [rec(anon, 'SELECT 4', { classes: ['read'], ...allow, receivedAt: t0 - 20 * DAY })]),
    recordP(s.log, [rec(anon, 'VACUUM', { classes: ['admin'], decision: 'deny', rule: 'default-deny' })]),
  ]);
  for (const r of results) expect(r.err).toBeNull();
}

const byName = (r: AccessReview, name: string) => r.identities.find((i) => i.identity === name)!;

describe('accessReview', () => {
  it('lists every key and every identity seen in sessions, with key details', async () => {
    await populate();
    const r = accessReview(s.db, { unusedDays: 30, policy });
    expect(r.identities.map((i) => i.identity)).toEqual(['anon', 'ci-bot', 'gone', 'old', 'stale']);
    expect(byName(r, 'ci-bot')).toMatchObject({ hasKey: true, groups: ['ci', 'readers'], status: 'active', sessions: 2, statements: 7 });
    expect(byName(r, 'ci-bot').lastUsedAt).toBeGreaterThanOrEqual(t0);
    expect(byName(r, 'gone')).toMatchObject({ status: 'revoked', sessions: 0, statements: 0, lastUsedAt: null });
    expect(byName(r, 'gone').revokedAt).not.toBeNull();
    expect(byName(r, 'old')).toMatchObject({ status: 'expired', expiresAt: t0 - 9 * DAY, createdAt: t0 - 10 * DAY });
    expect(byName(r, 'anon')).toMatchObject({ hasKey: false, status: 'no-key', groups: [], createdAt: null, sessions: 1, statements: 2 });
    expect(byName(r, 'anon').lastUsedAt).toBeGreaterThanOrEqual(t0);
  });

  it('counts statements per class from the class lists, unclassified ones apart', async () => {
    await populate();
    const r = accessReview(s.db, { unusedDays: 30, policy });
    expect(byName(r, 'ci-bot').classes).toEqual({ read: 4, write: 2, ddl: 1, unclassified: 1 });
    expect(byName(r, 'anon').classes).toEqual({ read: 1, admin: 1 });
    expect(byName(r, 'stale').classes).toEqual({});
  });

  it('counts refusals and names the rules that refused most', async () => {
    await populate();
    const r = accessReview(s.db, { unusedDays: 30, policy });
    expect(byName(r, 'ci-bot').refusals).toEqual({
      deny: 4,
      review: 1,
      topRules: [
        { rule: 'no-writes', count: 2 },
        { rule: 'builtin:file-access', count: 1 },
        { rule: 'default-deny', count: 1 },
        { rule: 'review-ddl', count: 1 },
      ],
    });
    expect(byName(r, 'anon').refusals).toEqual({ deny: 1, review: 0, topRules: [{ rule: 'default-deny', count: 1 }] });
  });

  it('keeps only the top 5 refusal rules', async () => {
    const a = openSession(s.log, 'noisy');
    for (let i = 1; i <= 7; i++) {
      const recs = Array.from({ length: i }, () => rec(a, 'DELETE FROM t', { classes: ['write'], decision: 'deny' as const, rule: `r${i}` }));
      expect((await recordP(s.log, recs)).err).toBeNull();
    }
    const top = byName(accessReview(s.db, { unusedDays: 30, policy: null }), 'noisy').refusals.topRules;
    expect(top.map((t) => t.rule)).toEqual(['r7', 'r6', 'r5', 'r4', 'r3']);
  });

  it('flags active keys unused for N days, or never used and older than N days', async () => {
    await populate();
    const now = accessReview(s.db, { unusedDays: 30, policy });
    expect(now.unusedKeys).toEqual([{ identity: 'stale', createdAt: t0 - 40 * DAY, lastUsedAt: null, idleDays: 40 }]);
    expect(byName(now, 'stale').unused).toBe(true);
    expect(byName(now, 'ci-bot').unused).toBe(false);

    const later = accessReview(s.db, { unusedDays: 30, policy, now: t0 + 100 * DAY });
    // revoked and expired keys are not "unused keys": they cannot be used at all
    expect(later.unusedKeys.map((k) => k.identity)).toEqual(['stale', 'ci-bot']);
    expect(later.unusedKeys[1]!.lastUsedAt).toBe(byName(later, 'ci-bot').lastUsedAt);
    expect(later.unusedKeys[1]!.idleDays).toBe(99);
    expect(accessReview(s.db, { unusedDays: 200, policy, now: t0 + 100 * DAY }).unusedKeys).toEqual([]);
  });

  it('does not count sessions of an earlier key of the same name as use of a re-added key', async () => {
    keys.add('reborn', { groups: [] }, t0 - 100 * DAY);
    openSession(s.log, 'reborn');
    keys.revoke('reborn');
    keys.add('reborn', { groups: [] }, Date.now() + 1);
    const r = accessReview(s.db, { unusedDays: 30, policy: null, now: t0 + 50 * DAY });
    expect(r.unusedKeys.map((k) => k.identity)).toEqual(['reborn']);
    expect(r.unusedKeys[0]!.lastUsedAt).toBeNull();
  });

  it('reports policy rules that never decided a statement, builtin refusals and default deny', async () => {
    await populate();
    const r = accessReview(s.db, { unusedDays: 30, policy });
    expect(r.rules).toEqual({
      neverMatched: ['never-used'],
      note: NEVER_MATCHED_NOTE,
      builtinRefusals: [{ rule: 'builtin:file-access', count: 1 }],
      defaultDeny: 2,
    });
    expect(accessReview(s.db, { unusedDays: 30, policy: null }).rules.neverMatched).toBeNull();
  });

  it('limits activity to --since but not last use', async () => {
    await populate();
    const r = accessReview(s.db, { unusedDays: 30, policy, since: t0 - DAY });
    expect(byName(r, 'anon').statements).toBe(1);
    expect(byName(r, 'anon').classes).toEqual({ admin: 1 });
    const future = accessReview(s.db, { unusedDays: 30, policy, since: t0 + DAY });
    expect(byName(future, 'ci-bot')).toMatchObject({ sessions: 0, statements: 0 });
    expect(byName(future, 'ci-bot').classes).toEqual({});
    expect(byName(future, 'ci-bot').lastUsedAt).toBeGreaterThanOrEqual(t0);
    expect(future.rules.neverMatched).toEqual(['read-all', 'no-writes', 'review-ddl', 'never-used']);
  });

  it('works on an empty store', () => {
    const r = accessReview(s.db, { unusedDays: 30, policy });
    expect(r).toMatchObject({ identities: [], unusedKeys: [], since: null, unusedDays: 30 });
    expect(r.rules.neverMatched).toEqual(policy.rules.map((x) => x.name));
  });
});

describe('sluice review', () => {
  function run(argv: string[], pol: Policy | null = policy) {
    const logs: string[] = [];
    const errors: string[] = [];
    const opened: string[] = [];
    const code = reviewCommand(argv, { log: (x) => logs.push(x), error: (x) => errors.push(x) }, (cfg) => {
      opened.push(cfg ?? '(none)');
      return { db: openDataStore(s.dir), policy: pol };
    });
    return code.then((c) => ({ code: c, out: logs.join('\n'), err: errors.join('\n'), opened }));
  }

  it('prints one block per identity and the policy-wide findings', async () => {
    await populate();
    const r = await run(['--config', '/etc/sluice.yaml']);
    expect(r.code).toBe(0);
    expect(r.opened).toEqual(['/etc/sluice.yaml']);
    expect(r.out).toContain('ci-bot  [active]  groups: ci, readers');
    expect(r.out).toContain('by class: read 4, write 2, ddl 1, unclassified 1');
    expect(r.out).toContain('refusals: 4 denied, 1 sent to review; top rules: no-writes 2');
    expect(r.out).toContain('anon  [no agent key]');
    expect(r.out).toContain('stale: never used');
    expect(r.out).toMatch(/Policy rules that never decided a statement:\n {2}never-used\n {2}Note: Counts deciding rules only/);
    expect(r.out).toContain('builtin:file-access 1');
  });

  it('--json prints the review as one JSON object', async () => {
    await populate();
    const r = await run(['--json', '--unused-days', '7', '--since', '30d']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as AccessReview;
    expect(Object.keys(j).sort()).toEqual(['generatedAt', 'identities', 'rules', 'since', 'unusedDays', 'unusedKeys']);
    expect(j.unusedDays).toBe(7);
    expect(j.since).toBeGreaterThan(t0 - 31 * DAY);
    expect(j.since).toBeLessThan(t0 - 29 * DAY);
    expect(Object.keys(j.identities[0]!).sort()).toEqual(
      ['classes', 'createdAt', 'expiresAt', 'groups', 'hasKey', 'identity', 'lastUsedAt', 'refusals', 'revokedAt', 'sessions', 'statements', 'status', 'unused'],
    );
    expect(byName(j, 'ci-bot').classes).toEqual({ read: 4, write: 2, ddl: 1, unclassified: 1 });
    expect(j.rules.neverMatched).toEqual(['never-used']);
    expect(j.unusedKeys.map((k) => k.identity)).toEqual(['stale']);
  });

  it('accepts an ISO --since and says when no policy is known', async () => {
    const r = await run(['--since', '2026-01-01'], null);
    expect(r.code).toBe(0);
    expect(r.out).toContain('since 2026-01-01T00:00:00.000Z');
    expect(r.out).toContain('(no policy given; skipped)');
  });

  it.each([
    [['--unused-days', 'soon']],
    [['--unused-days', '-3']],
    [['--since', 'yesterday']],
    [['--bogus']],
    [['extra']],
  ])('exits 2 on a usage error: %j', async (argv) => {
    const r = await run(argv);
    expect(r.code).toBe(2);
    expect(r.err).toContain('sluice review [--unused-days 30]');
    expect(r.opened).toEqual([]);
  });

  it('--help prints help and exits 0', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('--unused-days N');
  });
});
