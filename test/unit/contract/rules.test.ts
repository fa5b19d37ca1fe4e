import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { putRules, RULE_SECTIONS, rulesJsonSchema, sha256, splitRules } from '../../../src/operator/rules.js';

const CONFIG = `# Sluice config
listen:
  port: 0
targets:
  - name: app
    host: 127.0.0.1
    database: app
    user: app

# who may do what
policy:
  rules:
    - name: readers
      match: { groups: [test] }
      allow: [read]

dataDir: ./data   # stays where it is
`;

let dir: string;
let file: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-rules-'));
  file = join(dir, 'sluice.yaml');
  writeFileSync(file, CONFIG);
  chmodSync(file, 0o640);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('rules text of the config file', () => {
  it('splits out the policy section with its comment and keeps the rest as written', () => {
    const { rules, rest } = splitRules(CONFIG);
    expect(rules).toBe('# who may do what\npolicy:\n  rules:\n    - name: readers\n      match: { groups: [test] }\n      allow: [read]\n\n');
    expect(rest).toBe('# Sluice config\nlisten:\n  port: 0\ntargets:\n  - name: app\n    host: 127.0.0.1\n    database: app\n    user: app\n\ndataDir: ./data   # stays where it is\n');
    expect(RULE_SECTIONS).toContain('policy');
    expect(JSON.stringify(rulesJsonSchema())).toContain('"policy"');
  });

  it('writes a valid edit atomically, keeps the other settings and the file mode, and applies it', () => {
    let applied = 0;
    const text = 'policy:\n  rules:\n    - name: writers\n      match: { groups: [test] }\n      allow: [read, write]\n';
    const r = putRules(file, text, sha256(splitRules(CONFIG).rules), () => applied++);
    expect(r).toMatchObject({ applied: true });
    expect(applied).toBe(1);
    const after = readFileSync(file, 'utf8');
    expect(after).toContain('dataDir: ./data   # stays where it is');
    expect(after).toContain('name: writers');
    expect(after).not.toContain('name: readers');
    expect(statSync(file).mode & 0o777).toBe(0o640);
    expect(readdirSync(dir)).toEqual(['sluice.yaml']);
    if (r.applied) expect(r.sha256).toBe(sha256(splitRules(after).rules));
  });

  it('refuses an invalid edit with the line in the rules text and leaves the file untouched', () => {
    let applied = 0;
    const text = 'policy:\n  rules:\n    - name: writers\n      allow: [read, wrte]\n';
    const r = putRules(file, text, undefined, () => applied++);
    expect(r.applied).toBe(false);
    if (!r.applied) {
      expect(r.problems[0]).toMatchObject({ line: 4, key: 'policy.rules[0].allow[1]' });
      expect(r.problems[0]!.reason).toMatch(/must be one of/);
    }
    expect(applied).toBe(0);
    expect(readFileSync(file, 'utf8')).toBe(CONFIG);
  });

  it('refuses YAML errors and keys that are not rules sections', () => {
    const bad = putRules(file, 'policy:\n  rules: [\n', undefined, () => {});
    expect(bad.applied).toBe(false);
    const other = putRules(file, 'listen:\n  port: 1\n', undefined, () => {});
    expect(other).toMatchObject({ applied: false, problems: [{ line: 1, key: 'listen' }] });
    expect(readFileSync(file, 'utf8')).toBe(CONFIG);
  });

  it('refuses to overwrite an edit made since the caller read the rules', () => {
    expect(() => putRules(file, 'policy: {}\n', sha256('something else'), () => {})).toThrow(/changed since you read them/);
    expect(readFileSync(file, 'utf8')).toBe(CONFIG);
  });
});
