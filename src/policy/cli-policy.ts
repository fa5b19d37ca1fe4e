/**
 * `sluice policy test [FILE] [--config FILE]`: runs policy test cases against the config's policy.
 * Exit codes: 0 every case passed; 1 a case did not get its expected decision (a diff per failing case);
 * 2 usage, config or case-file errors (FILE:LINE:COL: reason).
 */
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config/load.js';
import { classify } from '../sql/classify.js';
import { loadParser } from '../sql/parser.js';
import { DEFAULT_POLICY } from './model.js';
import { checkCaseTargets, formatPolicyTestResults, loadPolicyTests, runPolicyTests, type Classify } from './test-runner.js';

export const POLICY_TEST_HELP = `sluice policy test [FILE] [--config FILE]

Runs policy test cases (a YAML list of identity, groups, target, statement, expect: allow|review|deny and
optionally rule) against the policy in the config file, like unit tests for the policy.
  FILE           the case file (default: policy.tests in the config, relative to the config file)
  --config FILE  config file (default: $SLUICE_CONFIG, else ./sluice.yaml)
Exit status: 0 all cases pass, 1 some case got another decision, 2 usage or file errors.`;

type Out = { log(s: string): void; error(s: string): void };

export interface PolicyTestDeps {
  /** Loads the classifier; the real one (PostgreSQL's parser, WASM) by default. */
  loadClassifier?: () => Promise<Classify>;
}

async function realClassifier(): Promise<Classify> {
  await loadParser();
  return (sql) => classify(sql);
}

/** `argv` is what follows `sluice policy test`. */
export async function policyTestCommand(argv: string[], out: Out, deps: PolicyTestDeps = {}): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: { config: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    out.error(`${(err as Error).message}\n\n${POLICY_TEST_HELP}`);
    return 2;
  }
  if (parsed.values.help) {
    out.log(POLICY_TEST_HELP);
    return 0;
  }
  if (parsed.positionals.length > 1) {
    out.error(`expected at most one FILE argument\n\n${POLICY_TEST_HELP}`);
    return 2;
  }
  const configPath = parsed.values.config
    ? resolve(parsed.values.config)
    : process.env.SLUICE_CONFIG
      ? resolve(process.env.SLUICE_CONFIG)
      : existsSync('sluice.yaml')
        ? resolve('sluice.yaml')
        : undefined;
  if (configPath === undefined) {
    out.error(`no config file: give --config FILE, set $SLUICE_CONFIG, or run where ./sluice.yaml is\n\n${POLICY_TEST_HELP}`);
    return 2;
  }
  try {
    const config = loadConfig(configPath);
    const policy = config.policy ?? DEFAULT_POLICY;
    const positional = parsed.positionals[0];
    const casesPath =
      positional !== undefined ? resolve(positional) : policy.tests !== undefined ? resolve(dirname(configPath), policy.tests) : undefined;
    if (casesPath === undefined) {
      out.error(`no test file: give FILE or set policy.tests in ${configPath}\n\n${POLICY_TEST_HELP}`);
      return 2;
    }
    const cases = loadPolicyTests(casesPath);
    checkCaseTargets(
      cases,
      config.targets.map((t) => t.name),
      casesPath,
    );
    const classifier = await (deps.loadClassifier ?? realClassifier)();
    const results = await runPolicyTests(policy, cases, classifier);
    const report = formatPolicyTestResults(results, casesPath);
    out.log(report);
    const failed = results.filter((r) => !r.passed).length;
    if (failed > 0) out.error(`policy test: ${failed} of ${results.length} case(s) did not get the expected decision`);
    return failed > 0 ? 1 : 0;
  } catch (err) {
    if (err instanceof ConfigError) {
      out.error(err.message);
      return 2;
    }
    throw err;
  }
}
