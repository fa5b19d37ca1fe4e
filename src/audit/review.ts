/**
 * Access review (`sluice review`): per identity, what it may do (key, groups, status) next to what it did
 * (sessions, statements by class, refusals), plus keys nobody uses and policy rules that never decided anything.
 *
 * Everything is aggregated by SQLite with GROUP BY over one pass per question; only grouped rows (bounded by
 * identities x classes or identities x rules) come back to JavaScript, never statements. The joins put
 * `statements` on the outside and look sessions up by primary key (statements has no session_id index on purpose,
 * see migrations.ts), so each pass is a single scan of statements.
 */
import type Database from 'better-sqlite3';
import { AgentKeyStore, type AgentKeyStatus } from '../identity/agent-keys.js';
import type { Policy } from '../policy/model.js';

const DAY_MS = 86_400_000;
const TOP_REFUSAL_RULES = 5;
/** Label for statements recorded without a class (unparseable messages, or records written before decisions). */
export const UNCLASSIFIED = 'unclassified';

export interface AccessReviewOptions {
  /** Reference time (ms); default Date.now(). */
  now?: number;
  /** An active key whose last use (or creation, if never used) is older than this is reported as unused. */
  unusedDays: number;
  /** The policy in force, for rules that never matched; null when none is known (then that part is skipped). */
  policy: Policy | null;
  /** Count activity (sessions, statements, refusals, rule matches) from this time (ms) on; default all time. */
  since?: number;
}

export interface RuleCount {
  rule: string;
  count: number;
}

export interface IdentityReview {
  identity: string;
  /** False for identities seen in sessions but without an agent key row. */
  hasKey: boolean;
  groups: string[];
  createdAt: number | null;
  expiresAt: number | null;
  revokedAt: number | null;
  status: AgentKeyStatus | 'no-key';
  /** Latest of the key's last_used_at and the identity's last session start (all time, whatever `since` is). */
  lastUsedAt: number | null;
  /** Sessions started in the window. */
  sessions: number;
  /** Messages recorded in the window (one message may hold several statements). */
  statements: number;
  /** Statements per class in the window, from each message's class list; `unclassified` when it has none. */
  classes: Record<string, number>;
  refusals: { deny: number; review: number; topRules: RuleCount[] };
  /** The key is active and has not been used for `unusedDays` (see `unusedKeys`). */
  unused: boolean;
}

export interface UnusedKey {
  identity: string;
  createdAt: number;
  /** Last use of this key (since it was created), or null if never used. */
  lastUsedAt: number | null;
  /** Whole days since last use, or since creation when never used. */
  idleDays: number;
}

export interface AccessReview {
  generatedAt: number;
  since: number | null;
  unusedDays: number;
  identities: IdentityReview[];
  unusedKeys: UnusedKey[];
  rules: {
    /** Rule names of the given policy that decided no statement in the window; null when no policy was given. */
    neverMatched: string[] | null;
    note: string;
    /** Builtin safeguards that refused (deny or review) statements in the window, most first. */
    builtinRefusals: RuleCount[];
    /** Statements refused because no rule gave a verdict. */
    defaultDeny: number;
  };
}

export const NEVER_MATCHED_NOTE =
  'Counts deciding rules only: the audit records the one rule that decided each statement, so a rule that matched ' +
  'but was overruled (deny beats review beats allow, earlier rules win ties) counts as never matched.';

interface SessionAgg { identity: string; sessions: number; lastStart: number | null; lastKeyStart: number | null }
interface ClassAgg { identity: string; cls: string; n: number }
interface DecisionAgg { identity: string; decision: string | null; rule: string | null; n: number }

export function accessReview(db: Database.Database, opts: AccessReviewOptions): AccessReview {
  const now = opts.now ?? Date.now();
  const since = opts.since ?? null;
  const from = since ?? Number.MIN_SAFE_INTEGER;
  const unusedMs = opts.unusedDays * DAY_MS;

  // All reads in one transaction: one consistent snapshot even while the broker writes (WAL).
  const read = db.transaction(() => {
    const keys = new AgentKeyStore(db).list(now);
    // agent_keys.name is UNIQUE (indexed): one scan of sessions. lastKeyStart only counts sessions since the key's
    // creation, because a revoked name that was added again is a new key.
    const sessions = db
      .prepare(
        `SELECT s.identity, SUM(s.started_at >= @from) AS sessions, MAX(s.started_at) AS lastStart,
                MAX(CASE WHEN s.started_at >= k.created_at THEN s.started_at END) AS lastKeyStart
           FROM sessions s LEFT JOIN agent_keys k ON k.name = s.identity
          GROUP BY s.identity`,
      )
      .all({ from }) as SessionAgg[];
    const classes = db
      .prepare(
        `SELECT s.identity, COALESCE(c.value, '${UNCLASSIFIED}') AS cls, COUNT(*) AS n
           FROM statements st CROSS JOIN sessions s
           LEFT JOIN json_each(CASE WHEN json_valid(st.classes) THEN st.classes END) c
          WHERE s.id = st.session_id AND st.received_at >= @from
          GROUP BY s.identity, cls`,
      )
      .all({ from }) as ClassAgg[];
    const decisions = db
      .prepare(
        `SELECT s.identity, st.decision, st.rule, COUNT(*) AS n
           FROM statements st CROSS JOIN sessions s
          WHERE s.id = st.session_id AND st.received_at >= @from
          GROUP BY s.identity, st.decision, st.rule`,
      )
      .all({ from }) as DecisionAgg[];
    return { keys, sessions, classes, decisions };
  });
  const { keys, sessions, classes, decisions } = read();

  const byIdentity = new Map<string, IdentityReview>();
  const entry = (identity: string): IdentityReview => {
    let r = byIdentity.get(identity);
    if (!r) {
      r = {
        identity, hasKey: false, groups: [], createdAt: null, expiresAt: null, revokedAt: null, status: 'no-key',
        lastUsedAt: null, sessions: 0, statements: 0, classes: {}, refusals: { deny: 0, review: 0, topRules: [] }, unused: false,
      };
      byIdentity.set(identity, r);
    }
    return r;
  };

  for (const k of keys) {
    Object.assign(entry(k.name), {
      hasKey: true, groups: k.groups, createdAt: k.createdAt, expiresAt: k.expiresAt, revokedAt: k.revokedAt,
      status: k.status, lastUsedAt: k.lastUsedAt,
    });
  }
  for (const s of sessions) {
    const r = entry(s.identity);
    r.sessions = s.sessions;
    r.lastUsedAt = maxOf(r.lastUsedAt, s.lastStart);
  }
  for (const c of classes) {
    const r = entry(c.identity);
    r.classes[c.cls] = (r.classes[c.cls] ?? 0) + c.n;
  }

  const refusalRules = new Map<string, Map<string, number>>();
  const decided = new Map<string, number>(); // rule -> statements it decided (any verdict)
  const refusedBy = new Map<string, number>(); // rule -> statements it refused (deny or review)
  for (const d of decisions) {
    const r = entry(d.identity);
    r.statements += d.n;
    if (d.rule !== null) decided.set(d.rule, (decided.get(d.rule) ?? 0) + d.n);
    if (d.decision !== 'deny' && d.decision !== 'review') continue;
    r.refusals[d.decision] += d.n;
    const rule = d.rule ?? '(no rule)';
    refusedBy.set(rule, (refusedBy.get(rule) ?? 0) + d.n);
    let perRule = refusalRules.get(d.identity);
    if (!perRule) refusalRules.set(d.identity, (perRule = new Map()));
    perRule.set(rule, (perRule.get(rule) ?? 0) + d.n);
  }
  for (const [identity, perRule] of refusalRules) entry(identity).refusals.topRules = top(perRule, TOP_REFUSAL_RULES);

  const lastKeyUse = new Map(sessions.map((s) => [s.identity, s.lastKeyStart]));
  const unusedKeys: UnusedKey[] = [];
  for (const k of keys) {
    if (k.status !== 'active') continue;
    const last = maxOf(k.lastUsedAt, lastKeyUse.get(k.name) ?? null);
    const idleSince = last ?? k.createdAt;
    if (now - idleSince < unusedMs) continue;
    entry(k.name).unused = true;
    unusedKeys.push({ identity: k.name, createdAt: k.createdAt, lastUsedAt: last, idleDays: Math.floor((now - idleSince) / DAY_MS) });
  }
  unusedKeys.sort((a, b) => b.idleDays - a.idleDays || a.identity.localeCompare(b.identity));

  const identities = [...byIdentity.values()].sort((a, b) => (a.identity < b.identity ? -1 : a.identity > b.identity ? 1 : 0));
  const builtins = new Map([...refusedBy].filter(([rule]) => rule.startsWith('builtin:')));
  return {
    generatedAt: now,
    since,
    unusedDays: opts.unusedDays,
    identities,
    unusedKeys,
    rules: {
      neverMatched: opts.policy ? opts.policy.rules.map((r) => r.name).filter((name) => !decided.has(name)) : null,
      note: NEVER_MATCHED_NOTE,
      builtinRefusals: top(builtins, Infinity),
      defaultDeny: refusedBy.get('default-deny') ?? 0,
    },
  };
}

function maxOf(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.max(a, b);
}

/** Most first, then by name; at most `n`. */
function top(counts: Map<string, number>, n: number): RuleCount[] {
  return [...counts]
    .map(([rule, count]) => ({ rule, count }))
    .sort((a, b) => b.count - a.count || (a.rule < b.rule ? -1 : a.rule > b.rule ? 1 : 0))
    .slice(0, n);
}
