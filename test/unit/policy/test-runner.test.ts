import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { policyTestCommand } from '../../../src/policy/cli-policy.js';
import { parsePolicyTests, runPolicyTests, type Classify } from '../../../src/policy/test-runner.js';
import { ConfigError } from '../../../src/config/load.js';
import { policy, read, stmt, write } from './helpers.js';
import type { ClassifiedStatement } from '../../../src/sql/types.js';

/** A stand-in classifier for the few statements these cases use (the real one is tested in src/sql). */
const KNOWN: Record<string, ClassifiedStatement[]> = {
  'SELECT * FROM orders': [read('orders')],
  'DELETE FROM orders': [write('orders')],
  'BEGIN; DELETE FROM orders; COMMIT': [stmt({ class: 'transaction' }), write('orders'), stmt({ class: 'transaction' })],
  'SELECT pg_read_file($1)': [stmt({ functions: ['pg_read_file'] })],
};
const fakeClassify: Classify = (sql) =>
  KNOWN[sql] ? { ok: true, statements: KNOWN[sql], tags: {} } : { ok: false, code: '42601', message: `syntax error in "${sql}"`, hint: '' };

const POLICY_YAML = [
  'policy:',
  '  tests: cases.yaml',
  '  rules:',
  '    - name: ci-readonly',
  '      match: { groups: [ci] }',
  '      allow: [read, transaction]',
  '      deny: [write]',
  '    - name: ops',
  '      match: { groups: [ops] }',
  '      allow: [read, write, transaction]',
];
const CONFIG = ['targets:', '  - name: shop', '    host: db.internal', '    database: shop', '    user: app', ...POLICY_YAML].join('\n');

const PASSING = `
- identity: ci-bot
  groups: [ci]
  target: shop
  statement: SELECT * FROM orders
  expect: allow
  rule: ci-readonly
- name: CI cannot delete
  identity: ci-bot
  groups: [ci]
  target: shop
  statement: DELETE FROM orders
  expect: deny
  rule: ci-readonly
- identity: alice
  groups: [ops]
  target: shop
  statement: "BEGIN; DELETE FROM orders; COMMIT"
  expect: allow
- identity: alice
  groups: [ops]
  target: shop
  statement: SELECT pg_read_file($1)
  expect: deny
  rule: builtin:file-access
`;

const FAILING = `
- identity: ci-bot
  groups: [ci]
  target: shop
  statement: SELECT * FROM orders
  expect: allow
- identity: ci-bot
  groups: [ci]
  target: shop
  statement: DELETE FROM orders
  expect: allow
- identity: alice
  groups: [ops]
  target: shop
  statement: DELETE FROM orders
  expect: allow
  rule: ci-readonly
`;

function workspace(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-policy-test-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

function capture() {
  const logs: string[] = [];
  const errors: string[] = [];
  return { out: { log: (s: string) => logs.push(s), error: (s: string) => errors.push(s) }, logs, errors, all: () => [...logs, ...errors].join('\n') };
}

const fakeDeps = { loadClassifier: async () => fakeClassify };

describe('runPolicyTests', () => {
  it('passes cases whose decision (and rule, when given) match, and reports what differs otherwise', async () => {
    const p = policy({ rules: [{ name: 'ci-readonly', allow: ['read'], deny: ['write'] }] });
    const cases = parsePolicyTests(FAILING, 'cases.yaml');
    const results = await runPolicyTests(p, cases, fakeClassify);
    expect(results.map((r) => [r.passed, r.mismatches, r.got.decision, r.got.rule])).toEqual([
      [true, [], 'allow', 'ci-readonly'],
      [false, ['decision'], 'deny', 'ci-readonly'],
      [false, ['decision'], 'deny', 'ci-readonly'],
    ]);
    expect(results.map((r) => r.case.line)).toEqual([2, 7, 12]);
  });

  it('decides a statement the classifier cannot parse as the proxy does: deny by the parser', async () => {
    const [result] = await runPolicyTests(policy({}), parsePolicyTests('- { identity: a, target: shop, statement: "SELEC 1", expect: deny, rule: parser }', 'c.yaml'), fakeClassify);
    expect(result).toMatchObject({ passed: true, got: { decision: 'deny', rule: 'parser', message: 'syntax error in "SELEC 1"' } });
  });

  it('refuses a malformed case file with lines', () => {
    const bad = (text: string) => {
      try {
        parsePolicyTests(text, 'c.yaml');
      } catch (err) {
        if (err instanceof ConfigError) return err.message;
      }
      return 'no error';
    };
    expect(bad('- identity: a\n  target: shop\n  statement: x\n  expect: allowed\n')).toBe('c.yaml:4:11: [0].expect: must be one of allow, review, deny');
    expect(bad('- identity: a\n  target: shop\n  statement: x\n')).toBe('c.yaml:1:3: [0].expect: required key is missing');
    expect(bad('- identity: a\n  target: shop\n  statement: x\n  expect: deny\n  expected: deny\n')).toMatch(/^c\.yaml:5:3: \[0\]\.expected: unknown key "expected"; did you mean "expect"\?$/);
    expect(bad('identity: a\n')).toMatch(/^c\.yaml:1:1: a policy test file is a YAML list of cases/);
    expect(bad('[]\n')).toBe('c.yaml:1:1: the file has no test cases');
  });
});

describe('sluice policy test', () => {
  it('exits 0 when every case passes, with FILE from policy.tests relative to the config', async () => {
    const dir = workspace({ 'sluice.yaml': CONFIG, 'cases.yaml': PASSING });
    const c = capture();
    expect(await policyTestCommand(['--config', join(dir, 'sluice.yaml')], c.out, fakeDeps)).toBe(0);
    expect(c.all()).toMatch(/4 passed, 0 failed/);
    expect(c.errors).toEqual([]);
  });

  it('exits 1 on a mismatch with a readable diff per failing case', async () => {
    const dir = workspace({ 'sluice.yaml': CONFIG, 'failing.yaml': FAILING });
    const c = capture();
    expect(await policyTestCommand([join(dir, 'failing.yaml'), '--config', join(dir, 'sluice.yaml')], c.out, fakeDeps)).toBe(1);
    const report = c.all();
    expect(report).toContain(`FAIL  ${join(dir, 'failing.yaml')}:7  ci-bot on shop`);
    expect(report).toContain('      statement: DELETE FROM orders\n    - expected:  allow\n    + got:       deny (rule "ci-readonly")');
    expect(report).toContain('    - expected:  allow (rule "ci-readonly")\n    + got:       allow (rule "ops")');
    expect(report).toContain('message:   Sluice policy refuses write on orders for identity "ci-bot" (rule "ci-readonly")');
    expect(report).toMatch(/1 passed, 2 failed/);
    expect(c.errors.join('\n')).toMatch(/2 of 3 case\(s\) did not get the expected decision/);
  });

  it('exits 2 on usage and file errors', async () => {
    const dir = workspace({
      'sluice.yaml': CONFIG,
      'broken.yaml': CONFIG.replace('deny: [write]', 'deny: [writes]'),
      'notests.yaml': CONFIG.replace('  tests: cases.yaml\n', ''),
      'badcases.yaml': '- identity: a\n  target: shop\n',
      'othertarget.yaml': '- { identity: a, target: warehouse, statement: SELECT 1, expect: deny }\n',
    });
    const run = async (...argv: string[]) => {
      const c = capture();
      return { code: await policyTestCommand(argv, c.out, fakeDeps), text: c.all() };
    };
    const cfg = (name: string) => ['--config', join(dir, name)];
    expect(await run(...cfg('broken.yaml'))).toMatchObject({ code: 2, text: expect.stringMatching(/broken\.yaml:\d+:\d+: policy\.rules\[0\]\.deny\[0\]: must be one of/) });
    expect(await run(...cfg('notests.yaml'))).toMatchObject({ code: 2, text: expect.stringMatching(/no test file: give FILE or set policy\.tests/) });
    expect(await run(...cfg('sluice.yaml'))).toMatchObject({ code: 2, text: expect.stringMatching(/cases\.yaml:1:1: cannot read policy test file: no such file/) });
    expect(await run(join(dir, 'badcases.yaml'), ...cfg('sluice.yaml'))).toMatchObject({ code: 2, text: expect.stringMatching(/statement: required key is missing/) });
    expect(await run(join(dir, 'othertarget.yaml'), ...cfg('sluice.yaml'))).toMatchObject({ code: 2, text: expect.stringMatching(/othertarget\.yaml:1:1: \[0\]\.target: no target "warehouse" in the config \(targets: shop\)/) });
    expect(await run('a.yaml', 'b.yaml', ...cfg('sluice.yaml'))).toMatchObject({ code: 2, text: expect.stringMatching(/at most one FILE/) });
    expect(await run('--bogus')).toMatchObject({ code: 2, text: expect.stringMatching(/Unknown option '--bogus'/) });
    expect(await run('--help')).toMatchObject({ code: 0, text: expect.stringMatching(/^sluice policy test \[FILE\]/) });
  });

  // Last: needs PostgreSQL's parser (src/sql), which lands separately.
  const classifierPresent = existsSync(new URL('../../../src/sql/classify.ts', import.meta.url));
  it.skipIf(!classifierPresent)('runs the cases through the real classifier', async () => {
    const dir = workspace({ 'sluice.yaml': CONFIG, 'cases.yaml': PASSING });
    const c = capture();
    expect(await policyTestCommand(['--config', join(dir, 'sluice.yaml')], c.out), c.all()).toBe(0);
    const failing = workspace({ 'sluice.yaml': CONFIG, 'cases.yaml': FAILING });
    expect(await policyTestCommand(['--config', join(failing, 'sluice.yaml')], capture().out)).toBe(1);
  });
});
