/** Policy: the config model, the evaluator, shipped builtins and policy tests. Semantics: evaluate.ts. */
export { bindPolicy, evaluate, parseTimeoutMs, resolveLimits } from './evaluate.js';
export type { BoundPolicy, PolicyContext, PolicyDecision, ResolvedLimits, StatementVerdict } from './evaluate.js';
export { activeBuiltins, BUILTIN_NAMES, BUILTINS, PINNED_BUILTINS, PINNED_SETTINGS } from './builtins.js';
export type { Builtin, BuiltinName } from './builtins.js';
export { DEFAULT_POLICY, HIDDEN_SQL_KINDS, PolicyRuleSchema, PolicySchema, VERDICTS } from './model.js';
export type { HiddenSqlKind, Policy, PolicyInput, PolicyLimits, PolicyMatch, PolicyRule, Verdict } from './model.js';
export { formatPolicyTestResults, loadPolicyTests, parsePolicyTests, runPolicyTests } from './test-runner.js';
export type { Classify, PolicyTestCase, PolicyTestResult } from './test-runner.js';
export { POLICY_TEST_HELP, policyTestCommand } from './cli-policy.js';
