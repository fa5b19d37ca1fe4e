/**
 * The session's search_path as Sluice can know it. PostgreSQL 15 does not report search_path in ParameterStatus,
 * so it is followed from what the client runs: the startup parameter, SET / RESET / set_config(), RESET ALL and
 * DISCARD ALL. Unqualified relation names resolve through it, and a wrong guess could attribute a masked column
 * to an unmasked table, so every uncertainty widens the answer instead of picking one: a change whose outcome is
 * not known yet (inside a transaction, SET LOCAL, the extended protocol) leaves "any of the old and the new
 * path", and a value known only at run time (set_config($1, ...)) makes the path unknown (any schema).
 */
import { parseSearchPath, type PathSpec } from '../masking/index.js';
import type { ClassifiedStatement } from '../sql/types.js';

const IDLE = 0x49; // ReadyForQuery status I: not in a transaction block
/** Only this exact shape is a session-level change that is certain once it ran alone, outside a transaction. */
const PLAIN_SET = /^SET\s+(SESSION\s+)?search_path\s*(=|TO)\s/i;

type Path = readonly string[];

function key(p: PathSpec): string {
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

export class SearchPathTracker {
  /** What RESET search_path returns to: the startup parameter, else the role's default; null until known. */
  private sessionPath: Path | null;
  private path: PathSpec;
  private pathKey: string;
  /** A plain SET that ran alone in an idle session: its value is certain if its cycle ends idle without error. */
  private certain: Path | null = null;
  private lastStatus = IDLE;
  private error = false;

  constructor(
    private readonly user: string,
    startup: string | null,
  ) {
    this.sessionPath = startup === null ? null : parseSearchPath(startup, user);
    this.path = this.sessionPath;
    this.pathKey = key(this.path);
  }

  /** The role's default (SHOW search_path on a side connection), used when the client set none at startup. */
  setServerDefault(value: string): void {
    if (this.sessionPath !== null) return;
    this.sessionPath = parseSearchPath(value, this.user);
    if (this.path === null) this.set(this.sessionPath);
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
      let next: PathSpec;
      if (st.value === null) next = sessionDefault; // RESET, SET ... TO DEFAULT, RESET ALL, DISCARD ALL
      else if (s.kind === 'VariableSetStmt') next = fromSetValue(st.value, user);
      else next = parseSearchPath(st.value, user); // set_config('search_path', 'a, b', ...): the server parses it
      out = union(out, next);
    }
    return out;
  }

  /** Statements were allowed (they may run): widen the path by what they may change. */
  onAllowed(statements: readonly ClassifiedStatement[], simpleQuery: boolean): void {
    let next = this.path;
    let changed = false;
    for (const s of statements) {
      const before = key(next);
      next = SearchPathTracker.after(next, s, this.user, this.sessionPath);
      if (key(next) !== before) changed = true;
    }
    if (!changed) return;
    this.set(next);
    const only = statements.length === 1 ? statements[0]! : null;
    const setting = only?.settings.length === 1 ? only.settings[0]! : null;
    this.certain = simpleQuery && this.lastStatus === IDLE && only?.kind === 'VariableSetStmt' && setting?.name === 'search_path' &&
      setting.value !== null && !setting.dynamic && PLAIN_SET.test(only.text)
      ? fromSetValue(setting.value, this.user)
      : null;
    this.error = false;
  }

  onServerError(): void {
    this.error = true;
  }

  onReady(status: number): void {
    if (this.certain && status === IDLE && !this.error) this.set(this.certain);
    this.certain = null;
    this.error = false;
    this.lastStatus = status;
  }

  private set(p: PathSpec): void {
    this.path = p;
    this.pathKey = key(p);
  }
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
