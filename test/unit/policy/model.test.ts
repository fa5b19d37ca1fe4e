import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../../src/config/load.js';
import { configJsonSchema } from '../../../src/config/schema.js';
import { DEFAULT_POLICY } from '../../../src/policy/model.js';

const FILE = '/etc/sluice/sluice.yaml';
const TARGETS = ['targets:', '  - name: shop', '    host: db.internal', '    database: shop', '    user: app'];
const config = (...policy: string[]) => `${[...TARGETS, 'policy:', ...policy].join('\n')}\n`;

function problems(text: string): { line: number; reason: string }[] {
  try {
    parseConfig(text, FILE);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => ({ line: p.line, reason: p.reason }));
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('policy in the config file', () => {
  it('parses a full policy and applies defaults', () => {
    const c = parseConfig(
      config(
        '  disableBuiltins: [backend-signals]',
        '  tests: policy-tests.yaml',
        '  rules:',
        '    - name: ci-readonly',
        '      description: CI reads, writes wait for review',
        '      match: { groups: [ci], targets: [shop], applications: ["ci-*"], addresses: [10.0.0.0/8, "::1/128"] }',
        '      allow: [read, transaction, session]',
        '      review: [write]',
        '      deny: [ddl]',
        "      tables: { 'public.customers': deny, 'audit.*': deny, 'public.scratch': { allow: [write] } }",
        "      functions: { pg_sleep: allow, 'dblink*': deny }",
        '      allowHidden: [do_block]',
        '      limits: { maxRowsPerStatement: 1000, maxRowsPerSession: 100000, readOnly: false, statementTimeoutMs: 30000 }',
        '    - name: everyone',
      ),
      FILE,
    );
    expect(c.policy?.disableBuiltins).toEqual(['backend-signals']);
    expect(c.policy?.tests).toBe('policy-tests.yaml');
    expect(c.policy?.rules[0]?.tables['public.scratch']).toEqual({ allow: ['write'], review: [], deny: [] });
    expect(c.policy?.rules[1]).toEqual({ name: 'everyone', match: {}, allow: [], review: [], deny: [], tables: {}, functions: {}, allowHidden: [], redactParams: false });
  });

  it('is optional; without it the default policy (no rules, every builtin) applies', () => {
    expect(parseConfig(`${TARGETS.join('\n')}\n`, FILE).policy).toBeUndefined();
    expect(DEFAULT_POLICY).toEqual({ rules: [], disableBuiltins: [] });
  });

  it('refuses an unknown statement class with its line', () => {
    expect(problems(config('  rules:', '    - name: r', '      allow:', '        - read', '        - writes'))).toEqual([
      { line: 11, reason: 'policy.rules[0].allow[1]: must be one of read, write, ddl, admin, session, transaction, copy_in, copy_out, utility' },
    ]);
  });

  it('refuses a class given two verdicts in one rule', () => {
    expect(problems(config('  rules:', '    - name: r', '      allow: [read, write]', '      deny: [write]'))).toEqual([
      { line: 10, reason: 'policy.rules[0].deny[0]: class write is already listed in allow; a class takes one verdict per rule' },
    ]);
  });

  it('refuses bad table keys, entry values and per-class entries', () => {
    expect(problems(config('  rules:', '    - name: r', '      tables:', '        customers: deny'))).toEqual([
      { line: 10, reason: expect.stringMatching(/^policy\.rules\[0\]\.tables\.customers: table keys are schema\.name globs/) },
    ]);
    expect(problems(config('  rules:', '    - name: r', '      tables:', '        public.customers: nope'))).toEqual([
      { line: 10, reason: expect.stringMatching(/^policy\.rules\[0\]\.tables\.public\.customers: must be allow, review or deny/) },
    ]);
    expect(problems(config('  rules:', '    - name: r', '      tables:', '        public.customers: { deny: [reads] }'))).toEqual([
      { line: 10, reason: expect.stringMatching(/tables\.public\.customers: deny\.0: must be one of read, write/) },
    ]);
    expect(problems(config('  rules:', '    - name: r', '      functions:', '        a.b.c: deny'))).toEqual([
      { line: 10, reason: expect.stringMatching(/function keys are name globs/) },
    ]);
  });

  it('refuses bad CIDR blocks, empty lists, unknown keys, unknown builtins, reserved and duplicate rule names', () => {
    expect(problems(config('  rules:', '    - name: r', '      match:', '        addresses: [10.0.0.1/8]'))).toEqual([
      { line: 10, reason: 'policy.rules[0].match.addresses[0]: not a CIDR block: host bits are set; did you mean 10.0.0.0/8?' },
    ]);
    expect(problems(config('  rules:', '    - name: r', '      match: { identities: [] }'))).toEqual([
      { line: 9, reason: 'policy.rules[0].match.identities: an empty list matches nothing; leave the key out to match any' },
    ]);
    expect(problems(config('  rules:', '    - name: r', '      alow: [read]'))).toEqual([
      { line: 9, reason: 'policy.rules[0].alow: unknown key "alow"; did you mean "allow"?' },
    ]);
    expect(problems(config('  disableBuiltins: [file-acces]'))).toEqual([
      { line: 7, reason: expect.stringMatching(/^policy\.disableBuiltins\[0\]: must be one of file-access, /) },
    ]);
    expect(problems(config('  rules:', '    - name: "builtin:mine"'))).toEqual([{ line: 8, reason: expect.stringMatching(/not start with "builtin:"/) }]);
    expect(problems(config('  rules:', '    - name: a', '    - name: a'))).toEqual([
      { line: 9, reason: 'policy.rules[1].name: duplicate rule name "a" (already used by rules[0])' },
    ]);
  });

  it('is in the JSON Schema with descriptions for the editor', () => {
    const schema = configJsonSchema() as { properties: Record<string, { description?: string; properties?: Record<string, unknown> }> };
    const policy = schema.properties['policy'];
    expect(policy?.description).toMatch(/default deny/);
    expect(Object.keys(policy?.properties ?? {})).toEqual(['rules', 'disableBuiltins', 'tests']);
    const text = JSON.stringify(policy);
    for (const key of ['maxRowsPerStatement', 'allowHidden', 'addresses', 'applications']) expect(text).toContain(key);
  });
});
