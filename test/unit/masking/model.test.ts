import { describe, expect, it } from 'vitest';
import { ConfigSchema } from '../../../src/config/model.js';
import { MaskingSchema, normalizeMethod } from '../../../src/masking/model.js';
import { bindMasking } from '../../../src/masking/rules.js';

const rule = (extra: Record<string, unknown>) => ({ name: 'r', columns: ['public.customers.email'], method: 'redact', ...extra });

describe('masking config', () => {
  it('applies defaults: derived mask, predicates review, redact as ***', () => {
    const m = MaskingSchema.parse({ rules: [rule({})] });
    expect(m.rules[0]).toMatchObject({ derived: 'mask', predicates: 'review', except: {} });
    expect(normalizeMethod(m.rules[0]!.method)).toEqual({ kind: 'redact', text: '***' });
    expect(normalizeMethod(MaskingSchema.parse({ rules: [rule({ method: { kind: 'partial' } })] }).rules[0]!.method)).toEqual({ kind: 'partial', first: 0, last: 4, fill: '*' });
    expect(m.catalogRefreshMs).toBe(60_000);
  });

  it('refuses bad columns, methods, regexes, duplicate names and unknown keys', () => {
    const bad = (input: unknown) => MaskingSchema.safeParse(input).success;
    expect(bad({ rules: [rule({ columns: ['customers.email'] })] })).toBe(false);
    expect(bad({ rules: [rule({ method: 'scramble' })] })).toBe(false);
    expect(bad({ rules: [rule({ method: { kind: 'regex', pattern: '(', replacement: '' } })] })).toBe(false);
    expect(bad({ rules: [rule({ derived: 'allow' })] })).toBe(false);
    expect(bad({ rules: [rule({}), rule({})] })).toBe(false);
    expect(bad({ rules: [rule({ colums: [] })] })).toBe(false);
    expect(bad({ rules: [rule({ method: { kind: 'partial', first: -1 } })] })).toBe(false);
    expect(bad({ rules: [rule({ method: { kind: 'regex', pattern: '\\d', replacement: '#' } })] })).toBe(true);
  });

  it('is the masking field of the config file', () => {
    const base = { targets: [{ name: 'a', host: 'h', database: 'd', user: 'u' }] };
    expect(ConfigSchema.parse(base).masking).toBeUndefined();
    expect(ConfigSchema.parse({ ...base, masking: { rules: [rule({})] } }).masking?.rules).toHaveLength(1);
    expect(ConfigSchema.safeParse({ ...base, masking: { rulez: [] } }).success).toBe(false);
  });

  it('binds rules to a session: targets, except identities and groups, first rule wins', () => {
    const m = MaskingSchema.parse({
      rules: [
        rule({ name: 'a', targets: ['prod*'], except: { identities: ['admin'], groups: ['dba*'] } }),
        rule({ name: 'b', columns: ['*.*.email', 'public.*.ssn'], method: 'hash' }),
      ],
    });
    const col = { schema: 'public', table: 'customers', column: 'email' };
    const as = (name: string, groups: string[], target: string) => bindMasking(m, { identity: { name, groups }, target }).ruleFor(col)?.name ?? null;
    expect(as('bot', [], 'prod1')).toBe('a');
    expect(as('bot', [], 'staging')).toBe('b');
    expect(as('admin', [], 'prod1')).toBe('b');
    expect(as('bot', ['dba-team'], 'prod1')).toBe('b');
    const b = bindMasking(m, { identity: { name: 'bot', groups: [] }, target: 'x' });
    expect(b.ruleFor({ schema: 'hr', table: 'people', column: 'ssn' })).toBeNull();
    expect(b.ruleFor({ schema: 'public', table: 'people', column: 'ssn' })?.name).toBe('b');
    expect(bindMasking(undefined, { identity: { name: 'bot', groups: [] }, target: 'x' }).active).toBe(false);
  });
});
