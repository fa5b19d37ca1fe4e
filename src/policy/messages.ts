/**
 * The words of a decision. A refusal reaches the client as an ErrorResponse (SQLSTATE 42501) whose message names
 * the statement class, the object and the rule, and whose hint says how to get access: an agent reading it
 * should know what to do next, and an operator reading the audit should see why.
 */
import type { HiddenSqlKind, Verdict } from './model.js';
import type { PolicyContext } from './evaluate.js';
import type { StatementClass } from '../sql/types.js';

/** Why a verdict was reached; decides the hint. */
export type Why =
  | { kind: 'class' }
  | { kind: 'entry'; entryKind: 'tables' | 'functions'; pattern: string; unqualified: string | null }
  | { kind: 'builtin'; name: string; summary: string }
  | { kind: 'hidden'; construct: HiddenSqlKind }
  | { kind: 'read-only' }
  | { kind: 'timeout'; ceiling: number }
  | { kind: 'default' }
  | { kind: 'unresolved' };

/** One verdict for one statement from one source (a rule, a builtin, a limit or the default). */
export interface Finding {
  verdict: Verdict;
  rule: string;
  object: string | null;
  why: Why;
}

const PINNED = new Set(['pinned-settings']);
const ASK = 'ask a Sluice operator';

export function describeDecision(
  finding: Finding | null,
  cls: StatementClass | null,
  ctx: PolicyContext,
  statementCount: number,
  matchedRuleCount: number,
): { message: string; hint: string } {
  const who = `identity "${ctx.identity.name}"`;
  if (finding === null) return { message: 'Sluice policy: empty query, nothing to decide', hint: '' };
  if (finding.verdict === 'allow' || cls === null) {
    const what = statementCount === 1 ? 'the statement' : `${statementCount} statements`;
    return { message: `Sluice policy allows ${what} for ${who} (rule "${finding.rule}")`, hint: '' };
  }
  const on = finding.object === null ? '' : ` on ${finding.object}`;
  const message =
    finding.verdict === 'deny'
      ? `Sluice policy refuses ${cls}${on} for ${who} (rule "${finding.rule}")`
      : `Sluice policy sends ${cls}${on} to review for ${who} (rule "${finding.rule}")`;
  return { message, hint: hint(finding, cls, ctx, matchedRuleCount) };
}

function hint(f: Finding, cls: StatementClass, ctx: PolicyContext, matchedRuleCount: number): string {
  const why = f.why;
  const on = f.object === null ? '' : ` on ${f.object}`;
  switch (why.kind) {
    case 'class':
      return f.verdict === 'deny'
        ? `Rule "${f.rule}" denies ${cls} statements. To get access, ${ASK} to change rule "${f.rule}" in policy.rules; ` +
            `a deny in any matching rule beats every allow.`
        : `Rule "${f.rule}" sends ${cls} statements to review: an operator must approve each one in Sluice. ` +
            `To run them without review, ${ASK} to change rule "${f.rule}".`;
    case 'entry': {
      const entry = `its ${why.entryKind} entry "${why.pattern}"`;
      const base =
        f.verdict === 'deny'
          ? `Rule "${f.rule}" denies ${f.object ?? 'this object'} (${entry}). If you need it, ${ASK} to change rule "${f.rule}".`
          : `Rule "${f.rule}" sends ${cls} on ${f.object ?? 'this object'} to review (${entry}): an operator must approve it in Sluice.`;
      if (why.unqualified === null) return base;
      return (
        `${base} "${why.unqualified}" is not schema-qualified, so Sluice matches it under every schema the server could ` +
        `resolve it to; if you mean a table outside ${why.pattern.split('.')[0]}, write it qualified (for example public.${why.unqualified}).`
      );
    }
    case 'builtin':
      return PINNED.has(why.name)
        ? why.summary
        : `${why.summary} This is a built-in safeguard that rules cannot allow; only an operator can turn it off ` +
            `(policy.disableBuiltins: [${why.name}]).`;
    case 'hidden':
      return (
        `${f.object ?? 'This construct'} hides SQL from Sluice's parser, so what it would run cannot be decided. Send the ` +
        `statements it contains directly, or ${ASK} to add allowHidden: [${why.construct}] to a rule that matches you.`
      );
    case 'read-only':
      return (
        `Rule "${f.rule}" makes this session read-only (limits.readOnly): reads, session settings and transaction ` +
        `control run, changes do not. If you need to change data, ${ASK}.`
      );
    case 'timeout':
      return `Rule "${f.rule}" caps statement_timeout at ${why.ceiling} ms (limits.statementTimeoutMs); set a value from 1 to ${why.ceiling} ms.`;
    case 'unresolved':
      return 'Sluice decides EXECUTE and FETCH on the statement they run, and this one was not resolved; send the statement itself.';
    case 'default': {
      const groups = ctx.identity.groups.length > 0 ? ctx.identity.groups.join(', ') : 'none';
      if (matchedRuleCount === 0) {
        const app = ctx.applicationName === null ? '' : `, application "${ctx.applicationName}"`;
        return (
          `No policy rule matches identity "${ctx.identity.name}" (groups: ${groups}) on target "${ctx.target}"${app} ` +
          `from ${ctx.clientAddr}, so every statement is refused (default deny). To get access, ${ASK} to add a rule in policy.rules.`
        );
      }
      return (
        `No policy rule allows ${cls}${on} for identity "${ctx.identity.name}" (groups: ${groups}) on target ` +
        `"${ctx.target}" (default deny). To get access, ${ASK} to allow ${cls} in a rule in policy.rules.`
      );
    }
  }
}
