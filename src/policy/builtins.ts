/**
 * Shipped safeguards. They apply to every statement of every identity, whatever the rules say: an `allow`
 * in a rule never lifts them (a builtin refusal is a deny, and deny beats allow). An operator who really needs
 * one of them gone lists it by name in `policy.disableBuiltins`, so the choice is written in the config and
 * visible to anyone reviewing it. `pinned-settings` cannot be disabled at all.
 *
 * Function names are compared case-insensitively and without their schema, so `pg_catalog.PG_READ_FILE(...)`
 * and `pg_read_file(...)` are both caught (refusing a same-named user function is the safe mistake).
 */
import { globMatch } from './glob.js';
import type { ClassifiedStatement } from '../sql/types.js';

export const BUILTIN_NAMES = [
  'file-access',
  'copy-server-files',
  'copy-program',
  'network-access',
  'server-control',
  'backend-signals',
  'role-switch',
  'role-management',
  'alter-system',
  'load',
] as const;
export type BuiltinName = (typeof BUILTIN_NAMES)[number];

/** Builtins that no config can disable. */
export const PINNED_BUILTINS = ['pinned-settings'] as const;

/** Settings the proxy pins upstream so that its parse of every statement equals the server's. */
export const PINNED_SETTINGS = ['client_encoding', 'standard_conforming_strings'] as const;

export interface BuiltinFinding {
  /** What the refusal is about, for the message: `pg_read_file()`, `SET role`, `COPY PROGRAM`. */
  object: string | null;
}

export interface Builtin {
  name: BuiltinName | (typeof PINNED_BUILTINS)[number];
  /** One sentence for humans: what it refuses and why. Shown in hints and `sluice policy` output. */
  summary: string;
  check(stmt: ClassifiedStatement): BuiltinFinding | null;
  /** Statement kinds the check refuses by kind alone (lets `builtinFindings` skip ordinary statements). */
  kinds?: readonly string[];
}

/** First function call whose bare name (schema stripped, case folded) matches one of `patterns`. */
function callsFunction(patterns: readonly string[]) {
  return (stmt: ClassifiedStatement): BuiltinFinding | null => {
    for (const fn of stmt.functions) {
      const bare = bareName(fn).toLowerCase();
      if (patterns.some((p) => globMatch(p, bare))) return { object: `${fn}()` };
    }
    return null;
  };
}

function byKind(kinds: readonly string[], label: string): Pick<Builtin, 'check' | 'kinds'> {
  return { kinds, check: (stmt) => (kinds.includes(stmt.kind) ? { object: label } : null) };
}

function changesSetting(names: readonly string[]) {
  return (stmt: ClassifiedStatement): BuiltinFinding | null => {
    const s = stmt.settings.find((x) => names.includes(x.name.toLowerCase()));
    return s === undefined ? null : { object: `SET ${s.name}` };
  };
}

/** `pg_catalog.pg_read_file` -> `pg_read_file`; a quoted name containing a dot is rare enough to over-match. */
export function bareName(qualified: string): string {
  const dot = qualified.lastIndexOf('.');
  return dot < 0 ? qualified : qualified.slice(dot + 1);
}

export const BUILTINS: readonly Builtin[] = [
  {
    name: 'pinned-settings',
    summary:
      'client_encoding and standard_conforming_strings are pinned (UTF8, on) so that Sluice reads every statement ' +
      'exactly as the server will; they cannot be changed through Sluice.',
    check(stmt) {
      // Name '*' without `dynamic` is RESET ALL / DISCARD ALL: back to the session defaults, where the pins live.
      const s = stmt.settings.find((x) => (x.name === '*' && x.dynamic === true) || (PINNED_SETTINGS as readonly string[]).includes(x.name.toLowerCase()));
      if (s !== undefined) return { object: s.name === '*' ? 'set_config() of a setting named at run time' : `SET ${s.name}` };
      // Defence in depth: a set_config call the classifier reported no setting for.
      const setConfig = stmt.functions.find((f) => bareName(f).toLowerCase() === 'set_config');
      if (setConfig !== undefined && stmt.settings.length === 0) return { object: `${setConfig}() of a setting Sluice cannot read` };
      return null;
    },
  },
  {
    name: 'file-access',
    summary: 'Functions that read, list or write files on the database server are refused.',
    check: callsFunction([
      'pg_read_file',
      'pg_read_binary_file',
      'pg_ls_*',
      'pg_stat_file',
      'lo_import',
      'lo_export',
      'pg_file_*', // adminpack: pg_file_write, pg_file_rename, pg_file_unlink, pg_file_sync
      'pg_logdir_ls',
    ]),
  },
  {
    name: 'copy-server-files',
    summary: 'COPY to or from a file on the database server is refused; use COPY ... TO STDOUT / FROM STDIN.',
    check: (stmt) => (stmt.hidden.includes('server_file') ? { object: 'COPY with a server file' } : null),
  },
  {
    name: 'copy-program',
    summary: 'COPY ... PROGRAM runs a shell command on the database server and is refused.',
    check: (stmt) => (stmt.hidden.includes('copy_program') ? { object: 'COPY PROGRAM' } : null),
  },
  {
    name: 'network-access',
    summary: 'dblink functions open connections from the database server to other servers and are refused.',
    check: callsFunction(['dblink*']),
  },
  {
    name: 'server-control',
    summary: 'Functions that reload the configuration, promote a standby or rotate the log are refused.',
    check: callsFunction(['pg_reload_conf', 'pg_promote', 'pg_rotate_logfile', 'pg_logfile_rotate']),
  },
  {
    name: 'backend-signals',
    summary: 'pg_cancel_backend and pg_terminate_backend act on other sessions and are refused.',
    check: callsFunction(['pg_cancel_backend', 'pg_terminate_backend']),
  },
  {
    name: 'role-switch',
    summary:
      'SET ROLE, SET SESSION AUTHORIZATION and set_config of role/session_authorization are refused: a session ' +
      'keeps the database role Sluice logged in with, so policy decisions stay true.',
    check: changesSetting(['role', 'session_authorization']),
  },
  {
    name: 'role-management',
    summary: 'Creating, altering, dropping or granting roles (SUPERUSER and the like) is refused even where admin is allowed.',
    ...byKind(['CreateRoleStmt', 'AlterRoleStmt', 'AlterRoleSetStmt', 'DropRoleStmt', 'GrantRoleStmt'], 'roles'),
  },
  {
    name: 'alter-system',
    summary: 'ALTER SYSTEM changes the server configuration file and is refused.',
    ...byKind(['AlterSystemStmt'], 'ALTER SYSTEM'),
  },
  {
    name: 'load',
    summary: 'LOAD loads a shared library into the server process and is refused.',
    ...byKind(['LoadStmt'], 'LOAD'),
  },
];

const KIND_CHECKED: ReadonlySet<string> = new Set(BUILTINS.flatMap((b) => b.kinds ?? []));

/**
 * The builtins that refuse `stmt`. Every check looks only at functions, settings, hidden constructs or its
 * declared `kinds`, so a statement with none of them (most statements) skips the list.
 */
export function builtinFindings(stmt: ClassifiedStatement, builtins: readonly Builtin[]): { builtin: Builtin; object: string | null }[] {
  if (stmt.functions.length === 0 && stmt.settings.length === 0 && stmt.hidden.length === 0 && !KIND_CHECKED.has(stmt.kind)) return [];
  const out: { builtin: Builtin; object: string | null }[] = [];
  for (const builtin of builtins) {
    const hit = builtin.check(stmt);
    if (hit) out.push({ builtin, object: hit.object });
  }
  return out;
}

/** The builtins in force when `disabled` are turned off (pinned ones stay). */
export function activeBuiltins(disabled: readonly string[]): readonly Builtin[] {
  if (disabled.length === 0) return BUILTINS;
  return BUILTINS.filter((b) => !disabled.includes(b.name) || (PINNED_BUILTINS as readonly string[]).includes(b.name));
}
