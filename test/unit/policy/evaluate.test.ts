import { describe, expect, it } from 'vitest';
import { evaluate } from '../../../src/policy/evaluate.js';
import { DEFAULT_POLICY, type PolicyInput } from '../../../src/policy/model.js';
import { ctx, policy, read, stmt, write } from './helpers.js';
import type { ClassifiedStatement } from '../../../src/sql/types.js';

const decide = (input: PolicyInput, ...stmts: ClassifiedStatement[]) => evaluate(policy(input), ctx(), stmts);

describe('precedence across rules', () => {
  it('deny beats review beats allow, whatever the rule order', () => {
    const allow = { name: 'a', allow: ['write' as const] };
    const review = { name: 'r', review: ['write' as const] };
    const deny = { name: 'd', deny: ['write' as const] };
    expect(decide({ rules: [allow, review] }, write('public.orders'))).toMatchObject({ decision: 'review', rule: 'r' });
    expect(decide({ rules: [review, allow] }, write('public.orders'))).toMatchObject({ decision: 'review', rule: 'r' });
    expect(decide({ rules: [allow, deny, review] }, write('public.orders'))).toMatchObject({ decision: 'deny', rule: 'd' });
    expect(decide({ rules: [deny, allow] }, write('public.orders'))).toMatchObject({ decision: 'deny', rule: 'd' });
    expect(decide({ rules: [allow] }, write('public.orders'))).toMatchObject({ decision: 'allow', rule: 'a' });
  });

  it('no verdict at all is a deny by default-deny; no policy at all denies everything', () => {
    expect(decide({ rules: [{ name: 'reads', allow: ['read'] }] }, write('public.orders'))).toMatchObject({ decision: 'deny', rule: 'default-deny' });
    const d = evaluate(DEFAULT_POLICY, ctx(), [read('public.orders')]);
    expect(d).toMatchObject({ decision: 'deny', rule: 'default-deny', statementIndex: 0, class: 'read', object: 'public.orders' });
    expect(d.hint).toMatch(/No policy rule matches identity "ci-bot" \(groups: ci\) on target "shop"/);
  });

  it('an empty message has nothing to refuse', () => {
    expect(evaluate(DEFAULT_POLICY, ctx(), [])).toMatchObject({ decision: 'allow', rule: 'builtin:empty', statementIndex: null, statements: [] });
  });
});

describe('one rule: object entries and the class lists', () => {
  it('a table entry overrides the class verdict for that table, both ways', () => {
    const p = { rules: [{ name: 'r', allow: ['read' as const], deny: ['write' as const], tables: { 'public.customers': 'deny' as const, 'public.scratch': 'allow' as const } }] };
    expect(decide(p, read('public.orders'))).toMatchObject({ decision: 'allow' });
    expect(decide(p, read('public.customers'))).toMatchObject({ decision: 'deny', rule: 'r', object: 'public.customers' });
    expect(decide(p, write('public.scratch'))).toMatchObject({ decision: 'allow', rule: 'r' });
    // A relation without an entry brings the class verdict back in.
    expect(decide(p, write('public.scratch', 'public.orders'))).toMatchObject({ decision: 'deny', object: 'public.orders' });
  });

  it("a statement's verdict is the most restrictive over its objects", () => {
    const p = { rules: [{ name: 'r', allow: ['read' as const], tables: { 'public.a': 'allow' as const, 'public.b': 'review' as const, 'audit.*': 'deny' as const } }] };
    expect(decide(p, read('public.a', 'public.b'))).toMatchObject({ decision: 'review', object: 'public.b' });
    expect(decide(p, read('public.a', 'public.b', 'audit.log'))).toMatchObject({ decision: 'deny', object: 'audit.log' });
  });

  it('per-class table entries apply to the classes they list and fall back to the class lists otherwise', () => {
    const p = { rules: [{ name: 'r', allow: ['read' as const], tables: { 'public.scratch': { allow: ['write' as const], deny: ['ddl' as const] } } }] };
    expect(decide(p, write('public.scratch'))).toMatchObject({ decision: 'allow' });
    expect(decide(p, stmt({ class: 'ddl', kind: 'DropStmt', writes: ['public.scratch'] }))).toMatchObject({ decision: 'deny', rule: 'r' });
    expect(decide(p, read('public.scratch'))).toMatchObject({ decision: 'allow' });
    expect(decide(p, stmt({ class: 'copy_out', reads: ['public.scratch'] }))).toMatchObject({ decision: 'deny', rule: 'default-deny' });
  });

  it('function entries match with and without the schema; an entry alone can decide a statement', () => {
    const p = { rules: [{ name: 'r', allow: ['read' as const], functions: { pg_sleep: 'allow' as const, 'dblink*': 'deny' as const } }] };
    expect(decide(p, stmt({ functions: ['pg_catalog.pg_sleep'] }))).toMatchObject({ decision: 'allow' });
    expect(decide(p, stmt({ functions: ['public.dblink_exec'] }))).toMatchObject({ decision: 'deny' });
    const onlySleep = { rules: [{ name: 'sleep', functions: { pg_sleep: 'allow' as const } }] };
    expect(decide(onlySleep, stmt({ functions: ['pg_sleep'] }))).toMatchObject({ decision: 'allow', rule: 'sleep' });
    expect(decide(onlySleep, stmt({ functions: ['now'] }))).toMatchObject({ decision: 'deny', rule: 'default-deny' });
    const qualified = { rules: [{ name: 'q', deny: ['read' as const], functions: { 'util.f': 'allow' as const } }] };
    expect(decide(qualified, stmt({ functions: ['util.f'] }))).toMatchObject({ decision: 'allow' });
    expect(decide(qualified, stmt({ functions: ['other.f'] }))).toMatchObject({ decision: 'deny', rule: 'q' });
    // An unqualified call may resolve to util.f or not: the allow needs the default schema.
    expect(decide(qualified, stmt({ functions: ['f'] }))).toMatchObject({ decision: 'deny', rule: 'q' });
  });

  it('a function without an entry does not bring back the class verdict for a covered table', () => {
    const p = { rules: [{ name: 'r', deny: ['read' as const], tables: { 'public.orders': 'allow' as const } }] };
    expect(decide(p, stmt({ reads: ['public.orders'], functions: ['count'] }))).toMatchObject({ decision: 'allow' });
  });

  it('unqualified relations: public.<name> for every entry, <any schema>.<name> for deny and review entries', () => {
    const p = { rules: [{ name: 'r', allow: ['read' as const], deny: ['write' as const], tables: { 'public.scratch': 'allow' as const, 'audit.*': 'deny' as const, 'ops.jobs': 'allow' as const } }] };
    const d = decide(p, read('secrets'));
    expect(d).toMatchObject({ decision: 'deny', rule: 'r', object: 'secrets' });
    expect(d.hint).toMatch(/"secrets" is not schema-qualified/);
    expect(decide(p, read('public.secrets'))).toMatchObject({ decision: 'allow' });
    const noAudit = { rules: [{ name: 'r', deny: ['write' as const], tables: { 'public.scratch': 'allow' as const, 'ops.jobs': 'allow' as const } }] };
    expect(decide(noAudit, write('scratch'))).toMatchObject({ decision: 'allow' });
    // ops.jobs: allow does not reach an unqualified `jobs` (it may be public.jobs).
    expect(decide(noAudit, write('jobs'))).toMatchObject({ decision: 'deny', rule: 'r' });
    expect(decide(noAudit, write('ops.jobs'))).toMatchObject({ decision: 'allow' });
  });
});

describe('wrappers and several statements', () => {
  it('PREPARE and DECLARE are decided on the statement they wrap', () => {
    const p = { rules: [{ name: 'r', allow: ['read' as const, 'utility' as const], deny: ['write' as const] }] };
    const prepare = stmt({ class: 'utility', kind: 'PrepareStmt', prepare: { name: 'p1', statement: write('public.orders') } });
    expect(decide(p, prepare)).toMatchObject({ decision: 'deny', class: 'write', object: 'public.orders' });
    const declare = stmt({ class: 'utility', kind: 'DeclareCursorStmt', declare: { cursor: 'c', statement: read('public.orders') } });
    expect(decide(p, declare)).toMatchObject({ decision: 'allow' });
  });

  it('refuses an EXECUTE or FETCH the caller did not resolve', () => {
    const p = { rules: [{ name: 'r', allow: ['utility' as const] }] };
    const exec = stmt({ class: 'utility', kind: 'ExecuteStmt', execute: { name: 'p1' } });
    expect(decide(p, exec)).toMatchObject({ decision: 'deny', rule: 'builtin:unresolved', object: 'EXECUTE p1' });
    expect(decide(p, stmt({ class: 'utility', kind: 'FetchStmt', fetch: { cursor: 'c' } }))).toMatchObject({ decision: 'deny', rule: 'builtin:unresolved' });
  });

  it('names the first denied statement; deny anywhere beats an earlier review', () => {
    const p = { rules: [{ name: 'r', allow: ['read' as const, 'transaction' as const], review: ['write' as const], deny: ['ddl' as const] }] };
    const begin = stmt({ class: 'transaction', kind: 'TransactionStmt' });
    const ddl = stmt({ class: 'ddl', kind: 'DropStmt', writes: ['public.orders'] });
    const d = decide(p, begin, write('public.orders'), ddl, read('public.a'));
    expect(d).toMatchObject({ decision: 'deny', statementIndex: 2, class: 'ddl', object: 'public.orders', rule: 'r' });
    expect(d.statements.map((s) => s.decision)).toEqual(['allow', 'review', 'deny', 'allow']);
    expect(decide(p, begin, write('public.orders'))).toMatchObject({ decision: 'review', statementIndex: 1, class: 'write' });
    expect(decide(p, begin, read('public.a'))).toMatchObject({ decision: 'allow', rule: 'r', statementIndex: null, class: null, object: null });
  });
});

describe('secondary classes', () => {
  it('every class of a statement must be allowed; the refusal names the class that was not', () => {
    const selectInto = stmt({ class: 'write', secondary: ['ddl'], reads: ['orders'], writes: ['newt'] });
    expect(decide({ rules: [{ name: 'w', allow: ['write'] }] }, selectInto)).toMatchObject({ decision: 'deny', rule: 'default-deny', class: 'ddl' });
    expect(decide({ rules: [{ name: 'w', allow: ['write'], review: ['ddl'] }] }, selectInto)).toMatchObject({ decision: 'review', class: 'ddl' });
    expect(decide({ rules: [{ name: 'w', allow: ['write', 'ddl'] }] }, selectInto)).toMatchObject({ decision: 'allow', rule: 'w' });
    const setConfig = stmt({ class: 'read', secondary: ['session'], functions: ['set_config'], settings: [{ name: 'application_name', value: 'x' }] });
    const d = decide({ rules: [{ name: 'r', allow: ['read'] }] }, setConfig);
    expect(d).toMatchObject({ decision: 'deny', class: 'session', object: 'SET application_name' });
    expect(d.statements).toEqual([{ decision: 'deny', rule: 'default-deny', class: 'session', object: 'SET application_name' }]);
    expect(decide({ rules: [{ name: 'r', allow: ['read', 'session'] }] }, setConfig)).toMatchObject({ decision: 'allow' });
  });

  it('per-class table entries are applied per class', () => {
    const selectInto = stmt({ class: 'write', secondary: ['ddl'], reads: ['public.orders'], writes: ['public.newt'] });
    const p = { rules: [{ name: 'r', allow: ['write' as const, 'ddl' as const], tables: { 'public.newt': { deny: ['ddl' as const] } } }] };
    expect(decide(p, selectInto)).toMatchObject({ decision: 'deny', class: 'ddl', object: 'public.newt' });
  });
});

describe('messages', () => {
  it('a refusal names the class, the object, the identity and the rule, and the hint says what to do', () => {
    const p = { rules: [{ name: 'ci-readonly', match: { groups: ['ci'] }, allow: ['read' as const], deny: ['write' as const] }] };
    const d = decide(p, write('public.orders'));
    expect(d.message).toBe('Sluice policy refuses write on public.orders for identity "ci-bot" (rule "ci-readonly")');
    expect(d.hint).toMatch(/Rule "ci-readonly" denies write statements/);
    expect(d.hint).toMatch(/operator/);
  });

  it('review and default-deny messages', () => {
    const r = decide({ rules: [{ name: 'rv', review: ['write'] }] }, write('public.orders'));
    expect(r.message).toBe('Sluice policy sends write on public.orders to review for identity "ci-bot" (rule "rv")');
    expect(r.hint).toMatch(/operator must approve/);
    const d = decide({ rules: [{ name: 'reads', allow: ['read'] }] }, stmt({ class: 'ddl', kind: 'CreateStmt' }));
    expect(d.message).toBe('Sluice policy refuses ddl for identity "ci-bot" (rule "default-deny")');
    expect(d.hint).toMatch(/No policy rule allows ddl .* \(default deny\)/);
  });

  it('an entry refusal points at the entry', () => {
    const d = decide({ rules: [{ name: 'r', allow: ['read'], functions: { 'lo_*': 'deny' } }] }, stmt({ functions: ['lo_get'] }));
    expect(d).toMatchObject({ decision: 'deny', object: 'lo_get()' });
    expect(d.message).toBe('Sluice policy refuses read on lo_get() for identity "ci-bot" (rule "r")');
    expect(d.hint).toMatch(/functions entry "lo_\*"/);
  });
});
