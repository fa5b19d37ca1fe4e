/**
 * Policy tests: example statements written beside the rules, run like unit tests (`sluice policy test`).
 * A case file is a YAML list:
 *
 *   - identity: ci-bot
 *     groups: [ci]
 *     target: shop
 *     statement: DELETE FROM orders
 *     expect: deny
 *     rule: ci-readonly        # optional: the deciding rule must be this one too
 *
 * Optional per case: `name`, `application` (application_name, default none), `address` (client address, default
 * 127.0.0.1). A statement the classifier cannot parse is decided as the proxy decides it: deny, rule `parser`.
 */
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { ConfigError, formatKeyPath, type ConfigProblem } from '../config/load.js';
import { closestKey } from '../config/keys.js';
import { locate, position } from '../config/locate.js';
import { evaluate } from './evaluate.js';
import { VERDICTS, type Policy, type Verdict } from './model.js';
import type { ClassifyResult } from '../sql/types.js';

export const PolicyTestCaseSchema = z
  .strictObject({
    name: z.string().optional().describe('What the case checks; shown in the report.'),
    identity: z.string().min(1, { error: 'must not be empty' }).describe('Identity (agent key name) the statement runs as.'),
    groups: z.array(z.string().min(1, { error: 'must not be empty' })).default([]).describe('Groups of the identity.'),
    target: z.string().min(1, { error: 'must not be empty' }).describe('Target name (the database the client connects to).'),
    application: z.string().nullable().default(null).describe('application_name the client sends; none by default.'),
    address: z.string().min(1, { error: 'must not be empty' }).default('127.0.0.1').describe('Client address; 127.0.0.1 by default.'),
    statement: z.string().min(1, { error: 'must not be empty' }).describe('The SQL text, as a client would send it (may hold several statements).'),
    expect: z
      .enum(VERDICTS, { error: (i) => (i.input === undefined ? 'required key is missing' : `must be one of ${VERDICTS.join(', ')}`) })
      .describe('The expected decision.'),
    rule: z.string().min(1, { error: 'must not be empty' }).optional().describe('The expected deciding rule (optional).'),
  })
  .describe('One policy test case.');

export const PolicyTestFileSchema = z.array(PolicyTestCaseSchema).min(1, { error: 'the file has no test cases' });

export type PolicyTestCase = z.infer<typeof PolicyTestCaseSchema> & {
  /** Line of the case in its file, when it was read from one. */
  line?: number;
};

/** The classifier, or a stand-in in tests. May be synchronous. */
export type Classify = (sql: string) => ClassifyResult | Promise<ClassifyResult>;

export interface PolicyTestResult {
  case: PolicyTestCase;
  passed: boolean;
  got: { decision: Verdict; rule: string; message: string; hint: string };
  /** Which expectations failed. */
  mismatches: ('decision' | 'rule')[];
}

export async function runPolicyTests(policy: Policy, cases: readonly PolicyTestCase[], classify: Classify): Promise<PolicyTestResult[]> {
  const results: PolicyTestResult[] = [];
  for (const c of cases) {
    const classified = await classify(c.statement);
    let got: PolicyTestResult['got'];
    if (!classified.ok) {
      got = { decision: 'deny', rule: 'parser', message: classified.message, hint: classified.hint };
    } else {
      const d = evaluate(
        policy,
        { identity: { name: c.identity, groups: c.groups }, target: c.target, applicationName: c.application, clientAddr: c.address },
        classified.statements,
      );
      got = { decision: d.decision, rule: d.rule, message: d.message, hint: d.hint };
    }
    const mismatches: PolicyTestResult['mismatches'] = [];
    if (got.decision !== c.expect) mismatches.push('decision');
    if (c.rule !== undefined && got.rule !== c.rule) mismatches.push('rule');
    results.push({ case: c, passed: mismatches.length === 0, got, mismatches });
  }
  return results;
}

/** A readable report: one line per passing case, a diff block per failing one, then a summary line. */
export function formatPolicyTestResults(results: readonly PolicyTestResult[], file: string): string {
  const lines: string[] = [];
  for (const r of results) {
    const where = r.case.line === undefined ? file : `${file}:${r.case.line}`;
    const title = r.case.name ?? `${r.case.identity} on ${r.case.target}`;
    if (r.passed) {
      lines.push(`ok    ${where}  ${title}: ${oneLine(r.case.statement)} -> ${r.got.decision} (rule "${r.got.rule}")`);
      continue;
    }
    const expected = `${r.case.expect}${r.case.rule === undefined ? '' : ` (rule "${r.case.rule}")`}`;
    const groups = r.case.groups.length > 0 ? ` (groups: ${r.case.groups.join(', ')})` : '';
    lines.push(
      `FAIL  ${where}  ${title}`,
      `      identity:  ${r.case.identity}${groups} on target ${r.case.target}`,
      `      statement: ${oneLine(r.case.statement)}`,
      `    - expected:  ${expected}`,
      `    + got:       ${r.got.decision} (rule "${r.got.rule}")`,
      `      message:   ${r.got.message}`,
    );
  }
  const failed = results.filter((r) => !r.passed).length;
  lines.push('', `${results.length - failed} passed, ${failed} failed`);
  return lines.join('\n');
}

function oneLine(sql: string): string {
  const s = sql.replace(/\s+/g, ' ').trim();
  return s.length > 120 ? `${s.slice(0, 117)}...` : s;
}

/** Reads and validates a case file; problems are reported as FILE:LINE:COL like the config's. */
export function loadPolicyTests(path: string): PolicyTestCase[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(path, [{ line: 1, column: 1, key: '', reason: `cannot read policy test file: ${code === 'ENOENT' ? 'no such file' : (code ?? String(err))}` }]);
  }
  return parsePolicyTests(text, path);
}

export function parsePolicyTests(text: string, sourcePath: string): PolicyTestCase[] {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      sourcePath,
      doc.errors.map((e) => ({ ...position(lineCounter, e.pos[0]), key: '', reason: `YAML syntax error: ${e.message.split('\n', 1)[0] ?? ''}` })),
    );
  }
  const data: unknown = doc.toJS({ maxAliasCount: 100 });
  const result = PolicyTestFileSchema.safeParse(data, {
    error: (issue) => (issue.code === 'invalid_type' ? (issue.input === undefined ? 'required key is missing' : `expected ${issue.expected}`) : undefined),
  });
  if (!result.success) {
    throw new ConfigError(
      sourcePath,
      result.error.issues.flatMap((issue): ConfigProblem[] => {
        const path = issue.path.map((s) => (typeof s === 'symbol' ? String(s) : s));
        if (issue.code === 'unrecognized_keys') {
          const allowed = Object.keys(PolicyTestCaseSchema.shape);
          return issue.keys.map((k) => {
            const suggestion = closestKey(k, allowed);
            const hint = suggestion === undefined ? `allowed keys: ${allowed.join(', ')}` : `did you mean "${suggestion}"?`;
            return { ...locate(doc, lineCounter, [...path, k], 'key'), key: formatKeyPath([...path, k]), reason: `${formatKeyPath([...path, k])}: unknown key "${k}"; ${hint}` };
          });
        }
        const key = formatKeyPath(path);
        const reason =
          path.length === 0 && issue.code === 'invalid_type'
            ? 'a policy test file is a YAML list of cases (- identity: ..., target: ..., statement: ..., expect: ...)'
            : issue.message;
        return [{ ...locate(doc, lineCounter, path), key, reason: key === '' ? reason : `${key}: ${reason}` }];
      }),
    );
  }
  return result.data.map((c, i) => ({ ...c, line: locate(doc, lineCounter, [i]).line }));
}

/** Cases naming a target the config does not have would never connect: report them like config errors. */
export function checkCaseTargets(cases: readonly PolicyTestCase[], targets: readonly string[], sourcePath: string): void {
  const problems = cases.flatMap((c, i): ConfigProblem[] =>
    targets.includes(c.target)
      ? []
      : [{ line: c.line ?? 1, column: 1, key: `[${i}].target`, reason: `[${i}].target: no target "${c.target}" in the config (targets: ${targets.join(', ')})` }],
  );
  if (problems.length > 0) throw new ConfigError(sourcePath, problems);
}
