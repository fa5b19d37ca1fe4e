import { describe, expect, it } from 'vitest';
import { bindPolicy, evaluate, parseTimeoutMs } from '../../../src/policy/evaluate.js';
import type { PolicyInput } from '../../../src/policy/model.js';
import { ctx, policy, read, setting, stmt, write } from './helpers.js';

const base = { name: 'base', allow: ['read', 'write', 'ddl', 'admin', 'session', 'transaction', 'copy_in', 'copy_out'] } as const;

describe('limits', () => {
  it('are the most restrictive across matching rules: min of maxima, readOnly if any says so', () => {
    const p = policy({
      rules: [
        { ...base, allow: [...base.allow], limits: { maxRowsPerStatement: 1000, statementTimeoutMs: 60_000 } },
        { name: 'ci', match: { groups: ['ci'] }, limits: { maxRowsPerStatement: 100, maxRowsPerSession: 5000, readOnly: true } },
        { name: 'strict', match: { groups: ['ci'] }, limits: { readOnly: false, statementTimeoutMs: 5000, maxRowsPerStatement: 500 } },
        { name: 'ops', match: { groups: ['ops'] }, limits: { maxRowsPerStatement: 1 } },
      ],
    });
    expect(bindPolicy(p, ctx()).limits).toEqual({
      maxRowsPerStatement: 100,
      maxRowsPerSession: 5000,
      readOnly: true,
      statementTimeoutMs: 5000,
      from: { maxRowsPerStatement: 'ci', maxRowsPerSession: 'ci', readOnly: 'ci', statementTimeoutMs: 'strict' },
    });
    expect(evaluate(p, ctx(), [read('public.a')]).limits.maxRowsPerStatement).toBe(100);
  });

  it('are unlimited when no matching rule sets any', () => {
    expect(bindPolicy(policy({ rules: [{ ...base, allow: [...base.allow] }] }), ctx()).limits).toEqual({
      maxRowsPerStatement: null,
      maxRowsPerSession: null,
      readOnly: false,
      statementTimeoutMs: null,
      from: {},
    });
  });
});

describe('read-only sessions', () => {
  const p = policy({ rules: [{ ...base, allow: [...base.allow] }, { name: 'ro', limits: { readOnly: true } }] });
  const decide = (...s: Parameters<typeof evaluate>[2]) => evaluate(p, ctx(), s);

  it('refuse write, ddl, admin and copy_in even where a rule allows them, naming the rule that made it read-only', () => {
    const d = decide(write('public.orders'));
    expect(d).toMatchObject({ decision: 'deny', rule: 'ro', object: 'public.orders', class: 'write' });
    expect(d.hint).toMatch(/read-only \(limits.readOnly\)/);
    for (const cls of ['ddl', 'admin', 'copy_in'] as const) expect(decide(stmt({ class: cls })).decision).toBe('deny');
    for (const cls of ['read', 'copy_out', 'transaction'] as const) expect(decide(stmt({ class: cls })).decision).toBe('allow');
  });

  it('refuse turning transaction_read_only off', () => {
    expect(decide(setting('default_transaction_read_only', 'off'))).toMatchObject({ decision: 'deny', rule: 'ro' });
    expect(decide(setting('transaction_read_only', "'false'"))).toMatchObject({ decision: 'deny', rule: 'ro' });
    expect(decide(setting('default_transaction_read_only', null))).toMatchObject({ decision: 'deny' });
    expect(decide(setting('transaction_read_only', 'on'))).toMatchObject({ decision: 'allow' });
    // BEGIN READ WRITE as the classifier reports it.
    expect(decide(stmt({ class: 'transaction', kind: 'TransactionStmt', settings: [{ name: 'transaction_read_only', value: '0' }] }))).toMatchObject({ decision: 'deny', rule: 'ro' });
    const atRunTime = stmt({ class: 'read', secondary: ['session'], functions: ['set_config'], settings: [{ name: 'default_transaction_read_only', value: null, dynamic: true }] });
    expect(decide(atRunTime)).toMatchObject({ decision: 'deny', rule: 'ro' });
    // RESET ALL returns to the session defaults, where the proxy pins read-only.
    expect(decide(setting('*', null))).toMatchObject({ decision: 'allow' });
  });

  it('refuse a secondary class too (SELECT INTO is write and ddl)', () => {
    expect(decide(stmt({ class: 'read', secondary: ['ddl'] }))).toMatchObject({ decision: 'deny', rule: 'ro', class: 'ddl' });
  });
});

describe('statement_timeout ceiling', () => {
  const input: PolicyInput = { rules: [{ name: 'base', allow: ['session'] }, { name: 'cap', limits: { statementTimeoutMs: 30_000 } }] };
  const decide = (value: string | null) => evaluate(policy(input), ctx(), [setting('statement_timeout', value)]);

  it('allows values up to the ceiling and refuses above it, 0 (off), RESET and unreadable values', () => {
    for (const ok of ['30000', '5s', "'29s'", '0.5min', '100ms']) expect(decide(ok).decision, ok).toBe('allow');
    for (const bad of ['30001', '31s', '1h', '0', null, 'forever']) {
      const d = decide(bad);
      expect(d, String(bad)).toMatchObject({ decision: 'deny', rule: 'cap', object: 'SET statement_timeout' });
      expect(d.hint).toMatch(/caps statement_timeout at 30000 ms/);
    }
  });

  it('refuses a value or a name given only at run time', () => {
    const s = (name: string) => stmt({ class: 'read', secondary: ['session'], functions: ['set_config'], settings: [{ name, value: null, dynamic: true }] });
    const p = policy({ rules: [{ name: 'base', allow: ['read', 'session'] }, { name: 'cap', limits: { statementTimeoutMs: 30_000 } }] });
    expect(evaluate(p, ctx(), [s('statement_timeout')])).toMatchObject({ decision: 'deny', rule: 'cap' });
    expect(evaluate(p, ctx(), [s('*')])).toMatchObject({ decision: 'deny' });
    expect(evaluate(p, ctx(), [setting('*', null)])).toMatchObject({ decision: 'allow' });
  });

  it('parses PostgreSQL time units', () => {
    expect(parseTimeoutMs('250')).toBe(250);
    expect(parseTimeoutMs('2s')).toBe(2000);
    expect(parseTimeoutMs('1.5 min')).toBe(90_000);
    expect(parseTimeoutMs('1h')).toBe(3_600_000);
    expect(parseTimeoutMs('1d')).toBe(86_400_000);
    expect(parseTimeoutMs('500us')).toBe(0.5);
    expect(parseTimeoutMs('ten')).toBeNull();
  });
});
