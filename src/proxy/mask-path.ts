/**
 * The session's search_path as Sluice can know it. PostgreSQL 15 does not report search_path in ParameterStatus,
 * so it is followed from what the client runs: the startup parameter, SET / RESET / set_config(), RESET ALL and
 * DISCARD ALL. Unqualified relation names resolve through it (policy: names.ts; masking), and a wrong guess could
 * attribute a relation to the wrong schema, so every uncertainty widens the answer instead of picking one:
 * - A change is known to have happened only at the next idle ReadyForQuery without an error, and only for a
 *   message that is exactly one plain session-wide SET / RESET search_path or `SELECT set_config('search_path',
 *   '...', false)`. Until then, and for any other change, the path is "any of the old and the new".
 * - Changes that end with their transaction (SET LOCAL, set_config(..., true)) are gone at the next idle
 *   ReadyForQuery: if nothing else changed the path since the last one, it is again what it was then.
 * - A value known only at run time (set_config($1, ...)), or a statement that runs user code (a function that is
 *   not built in, DO: `opaque`), which may call set_config() itself, makes the path unknown (any schema) until the
 *   client sets it again.
 */
import { parseSearchPath, type PathSpec } from '../masking/index.js';
import type { ClassifiedStatement } from '../sql/types.js';

const IDLE = 0x49; // ReadyForQuery status I: not in a transaction block
/** Only these exact shapes are a session-wide change that is certain once it ran alone, outside a transaction. */
const PLAIN_SET = /^(SET\s+(SESSION\s+)?search_path\s*(=|TO)\s|RESET\s+search_path\s*;?\s*$|SELECT\s+(pg_catalog\s*\.\s*)?set_config\s*\(\s*'search_path'\s*,\s*'[^']*'\s*,\s*false\s*\)\s*;?\s*$)/i;

type Path = readonly string[];

/** A string that is equal for equal paths (memo keys). */
export function pathKey(p: PathSpec): string {
  if (p === null) return '*';
  if (Array.isArray(p)) return (p as Path).join('\u0001');
  return (p as { anyOf: readonly Path[] }).anyOf.map((x) => x.join('\u0001')).join('\u0002');
}

/** Both `a` and `b` possible. */
function union(a: PathSpec, b: PathSpec): PathSpec {
  if (a === null || b === null) return null;
  const list = [...(Array.isArray(a) ? [a as Path] : (a as { anyOf: readonly Path[] }).anyOf), ...(Array.isArray(b) ? [b as Path] : (b as { anyOf: readonly Path[] }).anyOf)];
  const seen = new Map(list.map((p) => [p.join('\u0001'), p] as const));
  const paths = [...seen.values()];
  return paths.length === 1 ? paths[0]! : { anyOf: paths };
}

const touchesPath = (s: ClassifiedStatement): boolean => s.settings.some((st) => st.name === 'search_path' || st.name === '*');

export class SearchPathTracker {
  /** What RESET search_path returns to: the startup parameter, else the role's default; null until known. */
  private sessionPath: Path | null;
  private path: PathSpec;
  private pathKey: string;
  /** The path at the last idle ReadyForQuery, and whether anything but a transaction-local change moved it since. */
  private base: PathSpec;
  private lasting = false;
  /** A plain SET that ran alone in an idle session: its value is certain if its cycle ends idle without error. */
  private certain: PathSpec | undefined = undefined;
  private lastStatus = IDLE;
  private error = false;

  constructor(
    private readonly user: string,
    startup: string | null,
  ) {
    this.sessionPath = startup === null ? null : parseSearchPath(startup, user);
    this.path = this.sessionPath;
    this.pathKey = pathKey(this.path);
    this.base = this.path;
  }

  /** The role's default (SHOW search_path on a side connection), used when the client set none at startup. */
  setServerDefault(value: string): void {
    if (this.sessionPath !== null) return;
    this.sessionPath = parseSearchPath(value, this.user);
    // Unknown only because the default was not loaded yet: nothing the client ran can have moved it.
    if (this.path === null && !this.lasting) {
      this.set(this.sessionPath);
      this.base = this.sessionPath;
    }
  }

  current(): PathSpec {
    return this.path;
  }

  key(): string {
    return this.pathKey;
  }

  sessionDefault(): Path | null {
    return this.sessionPath;
  }

  /** The path after statement `s` ran, starting from `p` (within one message, or what may be afterwards). */
  static after(p: PathSpec, s: ClassifiedStatement, user: string, sessionDefault: Path | null): PathSpec {
    let out = p;
    for (const st of s.settings) {
      if (st.name !== 'search_path' && st.name !== '*') continue;
      if (st.dynamic) return null;
      out = union(out, valueOf(st, s, user, sessionDefault));
    }
    return out;
  }

  /**
   * The path once statement `s` has run successfully, starting from `p`: what the next statement of the same
   * Query message sees (it runs only if `s` succeeded). Its set_config() may not have run (a WHERE that is false):
   * then old and new are both possible.
   */
  static then(p: PathSpec, s: ClassifiedStatement, user: string, sessionDefault: Path | null): PathSpec {
    if (s.kind !== 'VariableSetStmt' && s.kind !== 'DiscardStmt') return SearchPathTracker.after(p, s, user, sessionDefault);
    let out = p;
    for (const st of s.settings) {
      if (st.name !== 'search_path' && st.name !== '*') continue;
      if (st.dynamic) return null;
      out = valueOf(st, s, user, sessionDefault);
    }
    return out;
  }

  /**
   * Statements were allowed (they may run): widen the path by what they may change. `opaque`: one of them runs
   * user code, which may change the path unseen.
   */
  onAllowed(statements: readonly ClassifiedStatement[], simpleQuery: boolean, opaque = false): void {
    if (opaque) {
      this.set(null);
      this.lasting = true;
      this.certain = undefined;
      return;
    }
    if (!statements.some(touchesPath)) return;
    let next = this.path;
    for (const s of statements) next = SearchPathTracker.after(next, s, this.user, this.sessionPath);
    this.set(next);
    if (statements.some((s) => s.settings.some((st) => (st.name === 'search_path' || st.name === '*') && !st.local))) this.lasting = true;
    const only = statements.length === 1 ? statements[0]! : null;
    const setting = only?.settings.length === 1 ? only.settings[0]! : null;
    this.certain = simpleQuery && this.lastStatus === IDLE && only !== null && setting?.name === 'search_path' &&
      !setting.dynamic && !setting.local && PLAIN_SET.test(only.text)
      ? valueOf(setting, only, this.user, this.sessionPath)
      : undefined;
    this.error = false;
  }

  onServerError(): void {
    this.error = true;
  }

  /**
   * The server's ReadyForQuery. `quiet`: nothing else the client sent awaits an answer; otherwise this one may end
   * an earlier cycle than the change's, so nothing is concluded from it.
   */
  onReady(status: number, quiet = true): void {
    if (!quiet) {
      this.lastStatus = status;
      return;
    }
    if (status === IDLE) {
      // A lone SET that failed changed nothing.
      if (this.certain !== undefined) this.set(this.error ? this.base : this.certain);
      // Only transaction-local changes since the last idle point: they ended with their transaction.
      else if (!this.lasting) this.set(this.base);
      this.base = this.path;
      this.lasting = false;
    }
    this.certain = undefined;
    this.error = false;
    this.lastStatus = status;
  }

  private set(p: PathSpec): void {
    this.path = p;
    this.pathKey = pathKey(p);
  }
}

/** The path a SET / RESET / set_config() of search_path (or RESET ALL, DISCARD ALL) sets. */
function valueOf(st: ClassifiedStatement['settings'][number], s: ClassifiedStatement, user: string, sessionDefault: Path | null): PathSpec {
  if (st.value === null) return sessionDefault; // RESET, SET ... TO DEFAULT, RESET ALL, DISCARD ALL
  if (s.kind === 'VariableSetStmt') return fromSetValue(st.value, user);
  return parseSearchPath(st.value, user); // set_config('search_path', 'a, b', ...): the server parses it
}

/**
 * The value of SET search_path as the classifier gives it: the server's own names joined with ", " (quotes
 * removed, unquoted names already lowercased). A name that could contain the separator makes it unknown.
 */
function fromSetValue(value: string, user: string): Path | null {
  const parts = value.split(', ');
  if (parts.some((p) => p === '' || p.includes(',') || p.includes('"'))) return null;
  return parts.map((p) => (p === '$user' ? user : p));
}
