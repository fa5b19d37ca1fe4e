import { parseArgs } from 'node:util';
import type Database from 'better-sqlite3';
import { parseDuration } from '../identity/agent-keys.js';
import { exportAudit } from './export.js';
import { verifyAudit } from './verify.js';

type Out = { log(s: string): void; error(s: string): void };

export const AUDIT_HELP = `sluice audit verify [--anchor SEQ:HASH] [--config FILE]

Walks the audit hash chain and checks every record. Exit 0 with the number of records and the chain head;
exit 1 naming the first record that was changed, deleted, reordered or inserted.
  --anchor SEQ:HASH   a head printed by an earlier verify, kept outside the data directory: also proves that
                      nothing up to it was rewritten (someone with write access to the file could otherwise
                      recompute the whole chain)

sluice audit export [--since 2026-01-01T00:00:00Z|7d] [--format jsonl] [--config FILE]

Writes the audit trail to stdout as JSON Lines, in chain order: statements (with their session, decision and
result) and events (sessions opened/ended, policy versions applied).
  --since T    an ISO 8601 date/time, or a duration back from now (45s, 90m, 12h, 7d, 2w)
  --format F   jsonl (the only format)`;

const COMMON = { config: { type: 'string' }, help: { type: 'boolean', short: 'h' } } as const;

class UsageError extends Error {}

/**
 * `sluice audit verify|export`. `argv` starts after "audit". Exit codes: 0 ok, 1 verification failed or an
 * error, 2 usage. The database from `openDb` is closed before returning.
 */
export async function auditCommand(argv: string[], out: Out, openDb: (configPath: string | undefined) => Database.Database): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    switch (sub) {
      case 'verify': return verify(rest, out, openDb);
      case 'export': return exportCmd(rest, out, openDb);
      case undefined:
      case '--help':
      case '-h':
        out.log(AUDIT_HELP);
        return sub ? 0 : 2;
      default:
        throw new UsageError(`unknown audit command "${sub}"`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      out.error(`${err.message}\n\n${AUDIT_HELP}`);
      return 2;
    }
    out.error(`sluice audit ${sub}: ${(err as Error).message}`);
    return 1;
  }
}

function parse<O extends Record<string, { type: 'string' | 'boolean' }>>(argv: string[], options: O) {
  try {
    return parseArgs({ args: argv, options: { ...options, ...COMMON }, allowPositionals: false, strict: true }).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function verify(argv: string[], out: Out, openDb: (configPath: string | undefined) => Database.Database): number {
  const values = parse(argv, { anchor: { type: 'string' } });
  if (values.help) { out.log(AUDIT_HELP); return 0; }
  let anchor: { seq: number; hash: string } | undefined;
  if (values.anchor !== undefined) {
    const m = /^([1-9][0-9]*):([0-9a-fA-F]{64})$/.exec(values.anchor.trim());
    if (!m) throw new UsageError(`invalid --anchor "${values.anchor}": expected SEQ:HASH as printed by audit verify`);
    anchor = { seq: Number(m[1]), hash: m[2]!.toLowerCase() };
  }
  const db = openDb(values.config);
  try {
    const r = verifyAudit(db, anchor ? { anchor } : {});
    if (r.ok) {
      out.log(`audit chain ok: ${r.rows} record(s) verified${anchor ? `, including anchored record ${anchor.seq}` : ''}`);
      out.log(`head: ${r.head.seq}:${r.head.hash}`);
      out.log('Keep the head line outside the data directory; pass it later as --anchor to prove nothing before it was rewritten.');
      return 0;
    }
    const b = r.firstBad;
    out.error(`audit chain BROKEN at ${b.table} ${b.id}${b.seq === null ? '' : ` (chain seq ${b.seq})`}: ${b.problem}: ${b.detail}`);
    out.error(`${r.rows} record(s) before it verified.`);
    return 1;
  } finally {
    db.close();
  }
}

function exportCmd(argv: string[], out: Out, openDb: (configPath: string | undefined) => Database.Database): number {
  const values = parse(argv, { since: { type: 'string' }, format: { type: 'string' } });
  if (values.help) { out.log(AUDIT_HELP); return 0; }
  const format = values.format ?? 'jsonl';
  if (format !== 'jsonl') throw new UsageError(`unsupported --format "${format}" (only jsonl)`);
  const since = values.since === undefined ? null : parseSince(values.since, Date.now());
  const db = openDb(values.config);
  try {
    exportAudit(db, { since, format }, (line) => out.log(line));
    return 0;
  } finally {
    db.close();
  }
}

/** An ISO 8601 date/time (a date alone is midnight UTC), or a duration back from `now`. */
export function parseSince(text: string, now: number): Date {
  const t = text.trim();
  if (/^\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(t)) {
    const d = new Date(t);
    if (!Number.isNaN(d.getTime())) return d;
  }
  try {
    return new Date(now - parseDuration(t));
  } catch {
    throw new UsageError(`invalid --since "${text}": expected an ISO date/time (2026-01-01T00:00:00Z) or a duration (7d, 12h, 30m)`);
  }
}
