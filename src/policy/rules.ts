/**
 * Rules compiled once per policy version, and matched against a session and against objects. A match is `sure`
 * or `maybe`: `maybe` (an address that cannot be read for sure, an unqualified name that may resolve to the
 * entry's schema) lets a rule or entry restrict but never allow. See evaluate.ts for the semantics.
 */
import { cidrContains, parseCidr, type CidrBlock, type IpAddress } from './address.js';
import { anyGlobMatches, globMatch, globToRegExp } from './glob.js';
import type { PolicyContext } from './evaluate.js';
import { VERDICT_ORDER, type ObjectVerdict, type PolicyRule, type Verdict } from './model.js';
import type { StatementClass } from '../sql/types.js';

export type Certainty = 'sure' | 'maybe';

export interface CompiledEntry {
  pattern: string;
  /** Glob of the schema part; null for a function entry without one (any schema). */
  schema: RegExp | null;
  name: RegExp;
  /** Whether the schema glob matches `public`, the schema an unqualified name is taken to be for allows. */
  public: boolean;
  /** The entry's verdict for a class, or undefined when it has none for that class. */
  verdictFor(cls: StatementClass): Verdict | undefined;
}

export interface CompiledRule {
  rule: PolicyRule;
  classVerdict: ReadonlyMap<StatementClass, Verdict>;
  tables: CompiledEntry[];
  functions: CompiledEntry[];
  addresses: CidrBlock[] | undefined;
}

const compiledRules = new WeakMap<PolicyRule, CompiledRule>();

/** Cached per rule object, so a policy version is compiled once however many sessions bind it. */
export function compileRule(rule: PolicyRule): CompiledRule {
  let c = compiledRules.get(rule);
  if (c === undefined) {
    const classVerdict = new Map<StatementClass, Verdict>();
    for (const v of VERDICT_ORDER) for (const cls of rule[v]) if (!classVerdict.has(cls)) classVerdict.set(cls, v);
    const entries = (record: Record<string, ObjectVerdict>) =>
      Object.entries(record).map(([pattern, value]): CompiledEntry => {
        const dot = pattern.indexOf('.');
        const schema = dot < 0 ? null : pattern.slice(0, dot);
        return {
          pattern,
          schema: schema === null ? null : globToRegExp(schema),
          name: globToRegExp(dot < 0 ? pattern : pattern.slice(dot + 1)),
          public: schema === null || globMatch(schema, 'public'),
          verdictFor: typeof value === 'string' ? () => value : perClass(value),
        };
      });
    const addresses = rule.match.addresses?.map((a) => {
      const p = parseCidr(a);
      // The zod model refuses these; a policy built around it must not silently lose a condition.
      if (!p.ok) throw new Error(`policy rule "${rule.name}": ${a} is not a CIDR block: ${p.reason}`);
      return p.block;
    });
    c = { rule, classVerdict, tables: entries(rule.tables), functions: entries(rule.functions), addresses };
    compiledRules.set(rule, c);
  }
  return c;
}

export function matchRule(rule: CompiledRule, ctx: PolicyContext, candidates: readonly IpAddress[]): Certainty | null {
  const { identities, groups, targets, applications } = rule.rule.match;
  if (identities !== undefined || groups !== undefined) {
    const named = identities !== undefined && anyGlobMatches(identities, ctx.identity.name);
    const member = groups !== undefined && ctx.identity.groups.some((g) => anyGlobMatches(groups, g));
    if (!named && !member) return null;
  }
  if (targets !== undefined && !anyGlobMatches(targets, ctx.target)) return null;
  if (applications !== undefined && (ctx.applicationName === null || !anyGlobMatches(applications, ctx.applicationName))) return null;
  if (rule.addresses === undefined) return 'sure';
  // An address Sluice cannot read can match nothing for sure, so such a rule may restrict but never allow.
  if (candidates.length === 0) return 'maybe';
  const hits = candidates.filter((ip) => rule.addresses!.some((block) => cidrContains(block, ip))).length;
  return hits === candidates.length ? 'sure' : hits > 0 ? 'maybe' : null;
}

function perClass(value: Exclude<ObjectVerdict, string>): (cls: StatementClass) => Verdict | undefined {
  const byClass = new Map<StatementClass, Verdict>();
  for (const v of VERDICT_ORDER) for (const cls of value[v]) if (!byClass.has(cls)) byClass.set(cls, v);
  return (cls) => byClass.get(cls);
}

/**
 * Whether an entry matches a relation or function named `schema.name` (schema null: unqualified). An unqualified
 * name matches for sure as `public.<name>`, and only maybe under any other schema the entry names.
 */
export function nameMatch(e: CompiledEntry, schema: string | null, name: string): Certainty | null {
  if (!e.name.test(name)) return null;
  if (e.schema === null) return 'sure';
  if (schema !== null) return e.schema.test(schema) ? 'sure' : null;
  return e.public ? 'sure' : 'maybe';
}

