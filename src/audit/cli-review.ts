import { parseArgs } from 'node:util';
import type Database from 'better-sqlite3';
import type { Policy } from '../policy/model.js';
import { parseSince } from './cli-audit.js';
import { accessReview, type AccessReview, type IdentityReview } from './review.js';

type Out = { log(s: string): void; error(s: string): void };
export type OpenReviewStore = (configPath: string | undefined) => { db: Database.Database; policy: Policy | null };

export const REVIEW_HELP = `sluice review [--unused-days 30] [--since 30d|ISO] [--json] [--config FILE]

Access review: per identity (every agent key, and identities seen in sessions without one), its groups, key
status, creation, expiry and last use, sessions, statements by class and refusals with the rules that refused
most; then active keys not used for N days, policy rules that never decided a statement, and builtin
safeguards that refused statements.
  --unused-days N   flag active keys unused (or never used and created) more than N days ago (default 30)
  --since T         count activity from T on: an ISO 8601 date/time, or a duration back from now (7d, 12h, 2w);
                    default: all time. Last use and unused keys always look at all time.
  --json            machine-readable output (one JSON object)`;

class UsageError extends Error {}

const OPTIONS = {
  'unused-days': { type: 'string' },
  since: { type: 'string' },
  json: { type: 'boolean' },
  config: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/**
 * `sluice review`. `argv` starts after "review". Exit codes: 0 ok, 1 an error (store or config), 2 usage.
 * The database from `open` is closed before returning.
 */
export async function reviewCommand(argv: string[], out: Out, open: OpenReviewStore): Promise<number> {
  try {
    let values;
    try {
      values = parseArgs({ args: argv, options: OPTIONS, allowPositionals: false, strict: true }).values;
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    if (values.help) { out.log(REVIEW_HELP); return 0; }
    const unusedDays = parseUnusedDays(values['unused-days'] ?? '30');
    const now = Date.now();
    let since: number | undefined;
    if (values.since !== undefined) {
      try {
        since = parseSince(values.since, now).getTime();
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
    }
    const { db, policy } = open(values.config);
    try {
      const review = accessReview(db, { now, unusedDays, policy, ...(since === undefined ? {} : { since }) });
      if (values.json) out.log(JSON.stringify(review, null, 2));
      else for (const line of formatReview(review)) out.log(line);
      return 0;
    } finally {
      db.close();
    }
  } catch (err) {
    if (err instanceof UsageError) {
      out.error(`${err.message}\n\n${REVIEW_HELP}`);
      return 2;
    }
    out.error(`sluice review: ${(err as Error).message}`);
    return 1;
  }
}

function parseUnusedDays(text: string): number {
  if (!/^[0-9]{1,6}$/.test(text.trim())) throw new UsageError(`invalid --unused-days "${text}": expected a whole number of days (e.g. 30)`);
  return Number(text.trim());
}

const iso = (t: number | null) => (t === null ? '-' : new Date(t).toISOString());
const counts = (entries: { rule: string; count: number }[]) => entries.map((e) => `${e.rule} ${e.count}`).join(', ');

/** Human-readable report: a header, one block per identity, then the policy-wide findings. */
export function formatReview(r: AccessReview): string[] {
  const lines = [
    `Access review at ${iso(r.generatedAt)}; activity ${r.since === null ? 'over all time' : `since ${iso(r.since)}`}; ` +
      `keys unused for ${r.unusedDays} day(s) are flagged.`,
  ];
  if (r.identities.length === 0) lines.push('', 'No agent keys and no sessions recorded.');
  for (const id of r.identities) lines.push('', ...identityBlock(id, r.unusedDays));

  lines.push('', `Unused keys (active, not used for ${r.unusedDays} day(s)):`);
  if (r.unusedKeys.length === 0) lines.push('  none');
  for (const k of r.unusedKeys) {
    lines.push(`  ${k.identity}: ${k.lastUsedAt === null ? `never used, created ${iso(k.createdAt)}` : `last used ${iso(k.lastUsedAt)}`} (${k.idleDays} day(s) idle)`);
  }

  lines.push('', 'Policy rules that never decided a statement:');
  if (r.rules.neverMatched === null) lines.push('  (no policy given; skipped)');
  else lines.push(`  ${r.rules.neverMatched.length === 0 ? 'none' : r.rules.neverMatched.join(', ')}`);
  lines.push(`  Note: ${r.rules.note}`);

  lines.push('', 'Builtin safeguards that refused statements:');
  lines.push(`  ${r.rules.builtinRefusals.length === 0 ? 'none' : counts(r.rules.builtinRefusals)}`);
  lines.push(`Refused by default deny (no rule gave a verdict): ${r.rules.defaultDeny}`);
  return lines;
}

function identityBlock(id: IdentityReview, unusedDays: number): string[] {
  const status = id.hasKey ? id.status : 'no agent key';
  const lines = [
    `${id.identity}  [${status}]  groups: ${id.groups.length === 0 ? '-' : id.groups.join(', ')}`,
  ];
  if (id.hasKey) {
    const revoked = id.revokedAt === null ? '' : `  revoked ${iso(id.revokedAt)}`;
    lines.push(`  created ${iso(id.createdAt)}  expires ${iso(id.expiresAt)}${revoked}`);
  }
  lines.push(`  last used ${iso(id.lastUsedAt)}  sessions ${id.sessions}  statements ${id.statements}`);
  const classes = Object.entries(id.classes).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  lines.push(`  by class: ${classes.length === 0 ? '-' : classes.map(([c, n]) => `${c} ${n}`).join(', ')}`);
  const { deny, review, topRules } = id.refusals;
  lines.push(`  refusals: ${deny} denied, ${review} sent to review${topRules.length === 0 ? '' : `; top rules: ${counts(topRules)}`}`);
  if (id.unused) lines.push(`  ! key not used for ${unusedDays}+ day(s)`);
  return lines;
}
