/**
 * The policy evaluator: a pure function from (policy, connection context, classified statements) to one decision.
 *
 * Semantics
 * - Matching. A rule matches a session when every key of its `match` matches: `identities` / `groups` together
 *   (the identity is named in `identities` OR belongs to one of `groups`), `targets`, `applications`
 *   (application_name; a client without one matches no `applications` list) and `addresses` (CIDR). Omitted keys
 *   match anything. Globs: `*` any run, `?` one character, case-sensitive.
 *   When the client address cannot be read for sure (unparseable, or `::1:5555` which is both an address and an
 *   address with a port), a rule whose `addresses` match only some readings matches *uncertainly*: its deny and
 *   review verdicts and its limits apply, its allows do not.
 * - Wrappers. SQL-level PREPARE and DECLARE are decided on the statement they wrap. EXECUTE and FETCH must be
 *   resolved by the caller, which passes the statement they run; an unresolved one is refused (`builtin:unresolved`).
 * - Verdict of one rule for one statement. The statement's objects are its relations (read or written) and its
 *   function calls. An object with `tables` / `functions` entries gets the most restrictive of their verdicts for
 *   the statement's class: object entries override the class lists for that object. The class verdict (allow /
 *   review / deny lists) also counts when a relation has no entry, or when no object has one (`SELECT 1`, `BEGIN`,
 *   `SELECT now()`); a function without an entry does not bring it in by itself. The rule's verdict is the most
 *   restrictive of these; a rule may have none for a statement.
 * - Unqualified relations. The caller qualifies those it can resolve for sure as the server does (proxy/names.ts:
 *   search_path and the target's catalog); the rest reach this function unqualified. Such an `orders` is matched
 *   as `public.orders` (every entry) and as `<any schema>.orders`, the latter only for deny and review entries: an
 *   entry that could match under some schema restricts, while an allow needs the default schema. Consequence:
 *   `audit.*: deny` also refuses an unresolved `orders`. Function entries without a schema match the function in
 *   any schema; entries with a schema follow the same rule as tables.
 * - Classes. A statement is decided for its class and for each of the classifier's `secondary` classes (SELECT
 *   INTO: write and ddl; SELECT set_config(...): read and session); every one must be allowed.
 * - Across rules and builtins: deny beats review beats allow (as IAM's explicit deny). No verdict at all: deny
 *   (`default-deny`). The deciding rule on a tie is the first: builtins, then limits, then rules in file order. Builtins (builtins.ts) refuse regardless of rules. Hidden SQL (DO, function bodies, dynamic
 *   SQL, COPY PROGRAM, server files) is refused (`builtin:hidden-sql`) unless a matching rule lists the construct in
 *   `allowHidden`. Limits act too: under `readOnly`, write/ddl/admin/copy_in statements and turning
 *   transaction_read_only off are refused; `statementTimeoutMs` refuses SET statement_timeout above the ceiling,
 *   to 0, to DEFAULT, or to a value given only at run time. A setting named only at run time (set_config($1, ...))
 *   is refused under either limit; RESET ALL / DISCARD ALL pass, since the proxy pins these as session defaults.
 * - A message with several statements: the decision is deny if any statement is denied, naming the first denied
 *   one; else review naming the first reviewed one; else allow (rule: the rule that allowed the first statement).
 *   Limits are the most restrictive across all matching rules (min of maxima, readOnly if any says so).
 */
import { clientAddressCandidates } from './address.js';
import { activeBuiltins, builtinFindings, type Builtin } from './builtins.js';
import { describeDecision, type Finding, type Why } from './messages.js';
import type { HiddenSqlKind, Policy, PolicyRule, Verdict } from './model.js';
import { compileRule, matchRule, nameMatch, type Certainty, type CompiledEntry, type CompiledRule } from './rules.js';
import type { ClassifiedStatement, RelationRef, StatementClass } from '../sql/types.js';

export interface PolicyContext {
  identity: { name: string; groups: readonly string[] };
  target: string;
  applicationName: string | null;
  /** Best: the bare `socket.remoteAddress`. Also accepted: `v4:port`, `[v6]:port` (see address.ts). */
  clientAddr: string;
}

export interface ResolvedLimits {
  maxRowsPerStatement: number | null;
  maxRowsPerSession: number | null;
  readOnly: boolean;
  statementTimeoutMs: number | null;
  /** The rule each limit comes from, for error messages ("row limit of rule ci"). */
  from: { maxRowsPerStatement?: string; maxRowsPerSession?: string; readOnly?: string; statementTimeoutMs?: string };
}

export interface StatementVerdict {
  decision: Verdict;
  rule: string;
  class: StatementClass;
  object: string | null;
}

export interface PolicyDecision {
  decision: Verdict;
  /** The deciding rule's name, `builtin:<name>` or `default-deny`. */
  rule: string;
  /** The first refused statement (deny, else review); null when allowed. */
  statementIndex: number | null;
  class: StatementClass | null;
  object: string | null;
  message: string;
  hint: string;
  limits: ResolvedLimits;
  /** For a review: how long the statement may wait for an operator (the deciding rule's approvalTimeoutSeconds). */
  approvalTimeoutMs: number | null;
  /** One verdict per statement, in order, for the audit record. */
  statements: StatementVerdict[];
}

interface MatchedRule extends CompiledRule {
  certainty: Certainty;
}

/** A policy bound to one session: rules matched and limits resolved once, then `decide` per message. */
export interface BoundPolicy {
  readonly context: PolicyContext;
  readonly matchedRules: readonly { name: string; certain: boolean }[];
  readonly limits: ResolvedLimits;
  /** Bind parameter values stay out of the audit log (any matching rule asks, even an uncertain match). */
  readonly redactParams: boolean;
  decide(stmts: readonly ClassifiedStatement[]): PolicyDecision;
}

const RANK: Record<Verdict, number> = { allow: 0, review: 1, deny: 2 };
const READ_ONLY_REFUSED: ReadonlySet<StatementClass> = new Set(['write', 'ddl', 'admin', 'copy_in']);
const TRUTHY = new Set(['on', 'true', 'yes', '1', 't', 'y']);
const READ_ONLY_SETTINGS = new Set(['transaction_read_only', 'default_transaction_read_only']);

/** Decides one message's statements (already resolved: see the semantics above). Pure; no I/O. */
export function evaluate(policy: Policy, ctx: PolicyContext, stmts: readonly ClassifiedStatement[]): PolicyDecision {
  return bindPolicy(policy, ctx).decide(stmts);
}

/**
 * Matches the rules and resolves the limits for one session once; `decide` then costs only the statement checks.
 * Bind at session start (after authentication) and again when a new policy version is applied.
 */
export function bindPolicy(policy: Policy, ctx: PolicyContext): BoundPolicy {
  const candidates = clientAddressCandidates(ctx.clientAddr);
  const matched: MatchedRule[] = [];
  for (const rule of policy.rules) {
    const compiled = compileRule(rule);
    const certainty = matchRule(compiled, ctx, candidates);
    if (certainty !== null) matched.push({ ...compiled, certainty });
  }
  const limits = resolveLimits(matched.map((m) => m.rule));
  const builtins = activeBuiltins(policy.disableBuiltins);
  const allowHidden = new Set<HiddenSqlKind>(matched.filter((m) => m.certainty === 'sure').flatMap((m) => m.rule.allowHidden));
  return {
    context: ctx,
    matchedRules: matched.map((m) => ({ name: m.rule.name, certain: m.certainty === 'sure' })),
    limits,
    redactParams: matched.some((m) => m.rule.redactParams),
    decide(stmts) {
      const findings = stmts.map((s) => decideStatement(unwrap(s), matched, builtins, allowHidden, limits));
      const verdicts = findings.map((f): StatementVerdict => ({ decision: f.verdict, rule: f.rule, class: f.class, object: f.object }));
      let index: number | null = null;
      for (let i = 0; i < findings.length; i++) {
        const v = findings[i]!.verdict;
        if (v === 'deny') {
          index = i;
          break;
        }
        if (v === 'review' && index === null) index = i;
      }
      const finding = index === null ? findings[0] : findings[index];
      const cls = index === null ? null : (finding?.class ?? null);
      const text = describeDecision(finding ?? null, cls, ctx, stmts.length, matched.length);
      return {
        decision: finding?.verdict ?? 'allow',
        rule: finding?.rule ?? 'builtin:empty',
        statementIndex: index,
        class: cls,
        object: index === null ? null : (finding?.object ?? null),
        message: text.message,
        hint: text.hint,
        limits,
        approvalTimeoutMs: approvalTimeout(matched, finding?.rule),
        statements: verdicts,
      };
    },
  };
}

function approvalTimeout(rules: readonly MatchedRule[], name: string | undefined): number | null {
  const s = rules.find((m) => m.rule.name === name)?.rule.approvalTimeoutSeconds;
  return s === undefined ? null : s * 1000;
}

/** PREPARE and DECLARE are decided on what they wrap. */
function unwrap(stmt: ClassifiedStatement): ClassifiedStatement {
  let s = stmt;
  while (s.prepare !== undefined || s.declare !== undefined) s = s.prepare?.statement ?? s.declare!.statement;
  return s;
}

/**
 * A statement is decided once per class it falls into (its class and the classifier's `secondary` classes, e.g.
 * SELECT INTO is write and ddl, SELECT set_config(...) is read and session); every one must be allowed, so the
 * most restrictive outcome wins and names the class it was reached for.
 */
function decideStatement(
  stmt: ClassifiedStatement,
  rules: readonly MatchedRule[],
  builtins: readonly Builtin[],
  allowHidden: ReadonlySet<HiddenSqlKind>,
  limits: ResolvedLimits,
): Finding & { class: StatementClass } {
  const common: Finding[] = [];
  if (stmt.execute !== undefined || stmt.fetch !== undefined) {
    const what = stmt.execute ? `EXECUTE ${stmt.execute.name}` : `FETCH from ${stmt.fetch!.cursor}`;
    common.push({ verdict: 'deny', rule: 'builtin:unresolved', object: what, why: { kind: 'unresolved' } });
  }
  for (const { builtin: b, object } of builtinFindings(stmt, builtins)) {
    common.push({ verdict: 'deny', rule: `builtin:${b.name}`, object, why: { kind: 'builtin', name: b.name, summary: b.summary } });
  }
  for (const construct of stmt.hidden) {
    if (!allowHidden.has(construct)) common.push({ verdict: 'deny', rule: 'builtin:hidden-sql', object: HIDDEN_LABEL[construct], why: { kind: 'hidden', construct } });
  }
  if (stmt.settings.length > 0) common.push(...settingLimitFindings(stmt, limits));
  // Sources are ranked in this order on ties: the statement-wide findings above, then the limits, then the rules.
  const commonWorst = mostRestrictive(common);
  const rels = relationsOf(stmt);
  const ro = limits.from.readOnly;
  let worst: (Finding & { class: StatementClass }) | null = null;
  for (const cls of classesOf(stmt)) {
    let f = commonWorst;
    if (ro !== undefined && READ_ONLY_REFUSED.has(cls) && (f === null || f.verdict !== 'deny')) {
      f = { verdict: 'deny', rule: ro, object: firstObject(stmt, rels), why: WHY_READ_ONLY };
    }
    for (let i = 0; i < rules.length && (f === null || f.verdict !== 'deny'); i++) {
      const r = ruleFinding(rules[i]!, stmt, cls, rels);
      if (r !== null && (f === null || RANK[r.verdict] > RANK[f.verdict])) f = r;
    }
    f ??= { verdict: 'deny', rule: 'default-deny', object: firstObject(stmt, rels), why: WHY_DEFAULT };
    if (worst === null || RANK[f.verdict] > RANK[worst.verdict]) worst = { verdict: f.verdict, rule: f.rule, object: f.object, why: f.why, class: cls };
  }
  return worst!;
}

const WHY_CLASS: Why = { kind: 'class' };
const WHY_DEFAULT: Why = { kind: 'default' };
const WHY_READ_ONLY: Why = { kind: 'read-only' };

function classesOf(stmt: ClassifiedStatement): readonly StatementClass[] {
  return stmt.secondary === undefined || stmt.secondary.length === 0 ? [stmt.class] : [...new Set([stmt.class, ...stmt.secondary])];
}

const HIDDEN_LABEL: Record<HiddenSqlKind, string> = {
  do_block: 'DO block',
  function_body: 'function body',
  dynamic_sql: 'dynamic SQL',
  copy_program: 'COPY PROGRAM',
  server_file: 'server file',
};

/**
 * Settings that would undo a limit. A setting named only at run time (`set_config($1, ...)`: name '*', dynamic)
 * could be any of them. RESET ALL / DISCARD ALL (name '*', not dynamic) return to the session defaults, which is
 * where the proxy pins these limits, so they pass.
 */
function settingLimitFindings(stmt: ClassifiedStatement, limits: ResolvedLimits): Finding[] {
  const out: Finding[] = [];
  const ro = limits.from.readOnly;
  const cap = limits.from.statementTimeoutMs;
  const ceiling = limits.statementTimeoutMs;
  for (const s of stmt.settings) {
    const name = s.name.toLowerCase();
    const unknownName = name === '*' && s.dynamic === true;
    const value = s.dynamic === true || s.value === null ? null : unquote(s.value);
    if (ro !== undefined && (unknownName || (READ_ONLY_SETTINGS.has(name) && !TRUTHY.has((value ?? '').toLowerCase())))) {
      out.push({ verdict: 'deny', rule: ro, object: settingLabel(s.name), why: WHY_READ_ONLY });
    }
    if (cap !== undefined && ceiling !== null && (unknownName || name === 'statement_timeout')) {
      const ms = value === null ? null : parseTimeoutMs(value);
      if (unknownName || ms === null || ms === 0 || ms > ceiling) out.push({ verdict: 'deny', rule: cap, object: settingLabel(s.name), why: { kind: 'timeout', ceiling } });
    }
  }
  return out;
}

function settingLabel(name: string): string {
  return name === '*' ? 'set_config() of a setting named at run time' : `SET ${name}`;
}

/** statement_timeout as PostgreSQL reads it: a number in ms, or with a unit (us, ms, s, min, h, d). */
export function parseTimeoutMs(value: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|min|h|d)?\s*$/.exec(unquote(value));
  if (!m) return null;
  const factor = { us: 0.001, ms: 1, s: 1000, min: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 'ms') as 'ms'];
  return Number(m[1]) * factor;
}

function unquote(value: string): string {
  return value.replace(/^'(.*)'$/s, '$1');
}

function ruleFinding(rule: MatchedRule, stmt: ClassifiedStatement, cls: StatementClass, rels: readonly RelationRef[]): Finding | null {
  let best: Finding | null = null;
  let uncovered: RelationRef | null = null;
  let covered = false;
  for (const ref of rels) {
    const f = rule.tables.length === 0 ? null : entryFinding(rule, 'tables', cls, ref.schema, ref.name, relationLabel(ref));
    if (f === null) uncovered ??= ref;
    else {
      covered = true;
      if (best === null || RANK[f.verdict] > RANK[best.verdict]) best = f;
    }
  }
  if (rule.functions.length > 0) {
    for (const fn of stmt.functions) {
      const dot = fn.lastIndexOf('.');
      const f = entryFinding(rule, 'functions', cls, dot < 0 ? null : fn.slice(0, dot), dot < 0 ? fn : fn.slice(dot + 1), `${fn}()`);
      if (f === null) continue;
      covered = true;
      if (best === null || RANK[f.verdict] > RANK[best.verdict]) best = f;
    }
  }
  if (uncovered !== null || !covered) {
    const v = rule.classVerdict.get(cls);
    if (v !== undefined && (best === null || RANK[v] > RANK[best.verdict])) {
      best = { verdict: v, rule: rule.rule.name, object: uncovered ? relationLabel(uncovered) : firstObject(stmt, rels), why: WHY_CLASS };
    }
  }
  return best !== null && rule.certainty === 'maybe' && best.verdict === 'allow' ? null : best;
}

/** The most restrictive verdict the rule's `kind` entries give the object `schema.name` for `cls`. */
function entryFinding(
  rule: MatchedRule,
  kind: 'tables' | 'functions',
  cls: StatementClass,
  schema: string | null,
  name: string,
  object: string,
): Finding | null {
  let verdict: Verdict | null = null;
  let chosen: CompiledEntry | null = null;
  let maybe = false;
  for (const entry of rule[kind]) {
    const m = nameMatch(entry, schema, name);
    if (m === null) continue;
    const v = entry.verdictFor(cls);
    if (v === undefined || (m === 'maybe' && v === 'allow')) continue;
    if (verdict === null || RANK[v] > RANK[verdict]) {
      verdict = v;
      chosen = entry;
      maybe = m === 'maybe';
    }
  }
  if (verdict === null || chosen === null) return null;
  return { verdict, rule: rule.rule.name, object, why: { kind: 'entry', entryKind: kind, pattern: chosen.pattern, unqualified: maybe ? name : null } };
}

/** Written relations first (they are what a refusal is usually about), each once. */
function relationsOf(stmt: ClassifiedStatement): readonly RelationRef[] {
  // Each list is deduplicated by the classifier; only a relation both read and written repeats.
  if (stmt.reads.length === 0) return stmt.writes;
  if (stmt.writes.length === 0) return stmt.reads;
  const seen = new Set<string>();
  return [...stmt.writes, ...stmt.reads].filter((r) => {
    const key = `${r.schema ?? ''}\u0000${r.name}`;
    return seen.has(key) ? false : (seen.add(key), true);
  });
}

function relationLabel(ref: RelationRef): string {
  return ref.schema === null ? ref.name : `${ref.schema}.${ref.name}`;
}

/** What a class-level verdict is about: the first relation, else the first setting changed. */
function firstObject(stmt: ClassifiedStatement, rels: readonly RelationRef[] = relationsOf(stmt)): string | null {
  const ref = rels[0];
  if (ref) return relationLabel(ref);
  const setting = stmt.settings[0];
  return setting ? settingLabel(setting.name) : null;
}

function mostRestrictive(findings: readonly Finding[]): Finding | null {
  let best: Finding | null = null;
  for (const f of findings) if (best === null || RANK[f.verdict] > RANK[best.verdict]) best = f;
  return best;
}

/** The most restrictive limits across `rules` (the rules matching a session). */
export function resolveLimits(rules: readonly PolicyRule[]): ResolvedLimits {
  const out: ResolvedLimits = { maxRowsPerStatement: null, maxRowsPerSession: null, readOnly: false, statementTimeoutMs: null, from: {} };
  for (const rule of rules) {
    const l = rule.limits;
    if (!l) continue;
    for (const key of ['maxRowsPerStatement', 'maxRowsPerSession', 'statementTimeoutMs'] as const) {
      const v = l[key];
      const current = out[key];
      if (v !== undefined && (current === null || v < current)) {
        out[key] = v;
        out.from[key] = rule.name;
      }
    }
    if (l.readOnly === true && !out.readOnly) {
      out.readOnly = true;
      out.from.readOnly = rule.name;
    }
  }
  return out;
}
