/**
 * The `policy` section of the config file: rules, shipped builtins an operator may disable, and the file of
 * policy tests. Part of the one zod model the config loader validates with and the JSON Schema (and the rules
 * editor) is generated from, so every field carries a description. Semantics: see evaluate.ts.
 */
import { z } from 'zod';
import { STATEMENT_CLASSES, type HiddenSql } from '../sql/types.js';
import { parseCidr } from './address.js';
import { BUILTIN_NAMES } from './builtins.js';

export const VERDICTS = ['allow', 'review', 'deny'] as const;
export type Verdict = (typeof VERDICTS)[number];
/** Most restrictive first. */
export const VERDICT_ORDER: readonly Verdict[] = ['deny', 'review', 'allow'];

export const HIDDEN_SQL_KINDS = ['do_block', 'function_body', 'dynamic_sql', 'copy_program', 'server_file'] as const;
// Fails to compile when the classifier contract grows a construct this list does not name.
const hiddenKindsComplete: Exclude<HiddenSql, (typeof HIDDEN_SQL_KINDS)[number]> extends never ? true : never = true;
void hiddenKindsComplete;

/** Names a rule may not take: they are how builtins and the default are reported. */
const RULE_NAME_PATTERN = /^(?!builtin:)(?!default-deny$)[A-Za-z0-9_.-][A-Za-z0-9_.:-]{0,62}$/;
const TABLE_PATTERN = /^[^.\s]+\.[^.\s]+$/;
const FUNCTION_PATTERN = /^(?:[^.\s]+\.)?[^.\s]+$/;

const oneOf = (values: readonly string[]) => `must be one of ${values.join(', ')}`;

const StatementClassSchema = z
  .enum(STATEMENT_CLASSES, { error: oneOf(STATEMENT_CLASSES) })
  .describe(`A statement class: ${STATEMENT_CLASSES.join(', ')}.`);

const VerdictSchema = z.enum(VERDICTS, { error: oneOf(VERDICTS) }).describe('allow, review (an operator approves) or deny.');

const classList = (verdict: Verdict) =>
  z
    .array(StatementClassSchema)
    .default([])
    .describe(`Statement classes this rule gives ${verdict}. A class may appear in only one of allow, review and deny.`);

const globList = () =>
  z
    .array(z.string().min(1, { error: 'must not be empty' }))
    .min(1, { error: 'an empty list matches nothing; leave the key out to match any' })
    .optional();

export const PerClassVerdictSchema = z
  .strictObject({
    allow: classList('allow'),
    review: classList('review'),
    deny: classList('deny'),
  })
  .describe('Verdicts for this object per statement class; classes not listed fall back to the rule\'s class lists.');

/** A union hides its members' messages; surface the one that explains the mistake. */
const ObjectVerdictSchema = z
  .union([VerdictSchema, PerClassVerdictSchema], {
    error: (issue) => {
      const input = issue.input;
      if (input !== null && typeof input === 'object' && !Array.isArray(input) && 'errors' in issue) {
        const nested = (issue.errors as z.core.$ZodIssue[][])[1] ?? [];
        const first = nested[0];
        if (first !== undefined) return first.path.length > 0 ? `${first.path.map(String).join('.')}: ${first.message}` : first.message;
      }
      return 'must be allow, review or deny, or a mapping of them to statement classes like { allow: [read], deny: [write] }';
    },
  })
  .describe('allow, review or deny for every statement class that touches the object, or { allow: [...], review: [...], deny: [...] } per class.');

export const MatchSchema = z
  .strictObject({
    identities: globList().describe('Identity (agent key) name globs. With `groups`, the rule matches an identity named here OR in one of those groups.'),
    groups: globList().describe('Group name globs; the rule matches identities in any of these groups (or named in `identities`).'),
    targets: globList().describe('Target name globs (the database name clients connect with).'),
    applications: globList()
      .describe('application_name globs; a client that sent no application_name matches none of them.'),
    addresses: z
      .array(
        z
          .string()
          .superRefine((text, ctx) => {
            const parsed = parseCidr(text);
            if (!parsed.ok) ctx.addIssue({ code: 'custom', message: `not a CIDR block: ${parsed.reason}` });
          })
          .describe('A CIDR block like 10.0.0.0/8 or fd00::/8, or a single address.'),
      )
      .min(1, { error: 'an empty list matches nothing; leave the key out to match any' })
      .optional()
      .describe('Client address CIDR blocks (IPv4 or IPv6, e.g. 127.0.0.0/8, ::1/128); a bare address is a block of one. IPv4-mapped IPv6 clients match IPv4 blocks.'),
  })
  .describe('When the rule applies. Every key given must match (identities/groups count as one condition); an omitted key matches anything.');

export const PolicyLimitsSchema = z
  .strictObject({
    maxRowsPerStatement: z.number().int().min(1, { error: 'must be >= 1' }).optional().describe('Most rows one statement may return; the rest is not sent and the statement ends with an error.'),
    maxRowsPerSession: z.number().int().min(1, { error: 'must be >= 1' }).optional().describe('Most rows a whole session may return.'),
    readOnly: z.boolean().optional().describe('Read-only sessions: pinned upstream (default_transaction_read_only) and write/ddl/admin/copy_in statements are refused.'),
    statementTimeoutMs: z
      .number()
      .int()
      .min(1, { error: 'must be >= 1' })
      .optional()
      .describe('Ceiling for statement_timeout in ms: pinned upstream; SET statement_timeout above it (or 0, or RESET) is refused.'),
  })
  .describe('Limits for sessions this rule matches. Across matching rules the most restrictive wins.');

export const PolicyRuleSchema = z
  .strictObject({
    name: z
      .string()
      .regex(RULE_NAME_PATTERN, { error: 'must be 1-63 characters of letters, digits, _ . - : and not start with "builtin:" or be "default-deny"' })
      .describe('Unique rule name; refusals and the audit name the rule that decided.'),
    description: z.string().optional().describe('Why the rule exists; for people reading the policy.'),
    match: MatchSchema.prefault({}),
    allow: classList('allow'),
    review: classList('review'),
    deny: classList('deny'),
    tables: z
      .record(z.string().regex(TABLE_PATTERN), ObjectVerdictSchema, {
        error: (issue) => (issue.code === 'invalid_key' ? 'table keys are schema.name globs, like public.customers or audit.* (or *.orders for any schema)' : undefined),
      })
      .default({})
      .describe('Per-table verdicts keyed by schema.name globs; they override the class lists for that table. An unqualified table in a statement is matched as public.<name>, and deny/review entries also as <any schema>.<name>.'),
    functions: z
      .record(z.string().regex(FUNCTION_PATTERN), ObjectVerdictSchema, {
        error: (issue) => (issue.code === 'invalid_key' ? 'function keys are name globs, optionally schema-qualified: pg_sleep, dblink*, pg_catalog.pg_sleep' : undefined),
      })
      .default({})
      .describe('Per-function verdicts keyed by name globs; a key without a schema matches the function in any schema.'),
    allowHidden: z
      .array(z.enum(HIDDEN_SQL_KINDS, { error: oneOf(HIDDEN_SQL_KINDS) }))
      .default([])
      .describe(`Constructs that hide SQL from Sluice's parser which this rule lets through (${HIDDEN_SQL_KINDS.join(', ')}); they are refused otherwise. Builtins (copy-program, copy-server-files) still apply.`),
    limits: PolicyLimitsSchema.optional(),
    approvalTimeoutSeconds: z
      .number()
      .int({ error: 'expected an integer' })
      .min(1, { error: 'must be >= 1' })
      .max(86400, { error: 'must be <= 86400' })
      .optional()
      .describe('How long a statement this rule sends to review waits for an operator before it is refused ("approval timed out"); default 120.'),
    redactParams: z
      .boolean()
      .default(false)
      .describe('Keep bind parameter values out of the audit log for sessions this rule matches (each value is stored as "<redacted>"); use when parameters carry secrets or PII.'),
  })
  .superRefine((rule, ctx) => {
    const seen = new Map<string, string>();
    for (const verdict of VERDICTS) {
      rule[verdict].forEach((cls, i) => {
        const first = seen.get(cls);
        if (first === undefined) seen.set(cls, verdict);
        else ctx.addIssue({ code: 'custom', path: [verdict, i], message: `class ${cls} is already listed in ${first}; a class takes one verdict per rule` });
      });
    }
    for (const kind of ['tables', 'functions'] as const) {
      for (const [pattern, entry] of Object.entries(rule[kind])) {
        if (typeof entry === 'string') continue;
        const inEntry = new Set<string>();
        for (const verdict of VERDICTS) {
          entry[verdict].forEach((cls, i) => {
            if (inEntry.has(cls)) ctx.addIssue({ code: 'custom', path: [kind, pattern, verdict, i], message: `class ${cls} is listed twice for ${pattern}` });
            inEntry.add(cls);
          });
        }
      }
    }
  })
  .describe('A policy rule: whom it matches and what it allows, sends to review or denies.');

export const PolicySchema = z
  .strictObject({
    rules: z
      .array(PolicyRuleSchema)
      .default([])
      .superRefine((rules, ctx) => {
        const firstIndex = new Map<string, number>();
        rules.forEach((rule, i) => {
          const first = firstIndex.get(rule.name);
          if (first === undefined) firstIndex.set(rule.name, i);
          else ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate rule name "${rule.name}" (already used by rules[${first}])` });
        });
      })
      .describe('Policy rules. Every rule matching a session gives a verdict per statement; deny beats review beats allow; no verdict means deny.'),
    disableBuiltins: z
      .array(z.enum(BUILTIN_NAMES, { error: oneOf(BUILTIN_NAMES) }))
      .default([])
      .describe(`Shipped safeguards to turn off, by name (${BUILTIN_NAMES.join(', ')}). Rules cannot allow what a builtin refuses; only this can.`),
    tests: z
      .string()
      .min(1, { error: 'must not be empty' })
      .optional()
      .describe("YAML file of policy test cases run by `sluice policy test`; relative to the config file's directory."),
  })
  .describe('Who may run what. Without this section, or with no rules, every statement is refused (default deny).');

export type Policy = z.infer<typeof PolicySchema>;
export type PolicyInput = z.input<typeof PolicySchema>;
export type PolicyRule = z.infer<typeof PolicyRuleSchema>;
export type PolicyMatch = z.infer<typeof MatchSchema>;
export type PolicyLimits = z.infer<typeof PolicyLimitsSchema>;
export type ObjectVerdict = z.infer<typeof ObjectVerdictSchema>;
export type HiddenSqlKind = (typeof HIDDEN_SQL_KINDS)[number];

/** The policy of a config without a `policy` section: no rules (default deny), every builtin on. */
export const DEFAULT_POLICY: Policy = PolicySchema.parse({});
