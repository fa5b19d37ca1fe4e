/**
 * What the classifier says about one statement: the input to policy (src/policy), audit and, later, masking.
 * Produced from PostgreSQL's own parse tree (libpg_query, @libpg-query/parser); never from regexes over the text.
 */

/** Statement classes policy rules are written against. */
export const STATEMENT_CLASSES = [
  'read', // SELECT/VALUES/TABLE/SHOW, EXPLAIN (without ANALYZE of a write), FETCH from a read cursor
  'write', // INSERT/UPDATE/DELETE/MERGE/TRUNCATE, SELECT with data-modifying CTE or INTO, EXPLAIN ANALYZE of a write, LOCK, SELECT ... FOR UPDATE/SHARE, CALL, CREATE TABLE AS
  'ddl', // CREATE/ALTER/DROP/COMMENT/REINDEX/CLUSTER/REFRESH MATERIALIZED VIEW, CREATE FUNCTION, DO
  'admin', // VACUUM/ANALYZE/CHECKPOINT/ALTER SYSTEM/LOAD/GRANT/REVOKE/CREATE ROLE/ALTER ROLE/DROP ROLE/REASSIGN/SECURITY LABEL
  'session', // SET/RESET/SET ROLE/SET SESSION AUTHORIZATION/DISCARD/set-like utility that changes the session
  'transaction', // BEGIN/START/COMMIT/ROLLBACK/SAVEPOINT/RELEASE/PREPARE TRANSACTION/COMMIT PREPARED/SET TRANSACTION
  'copy_in', // COPY ... FROM (STDIN, file or PROGRAM)
  'copy_out', // COPY ... TO (STDOUT, file or PROGRAM)
  'utility', // LISTEN/UNLISTEN/NOTIFY, PREPARE/EXECUTE/DEALLOCATE, DECLARE/FETCH/MOVE/CLOSE (classified by what they run)
] as const;
export type StatementClass = (typeof STATEMENT_CLASSES)[number];

/** A relation as the statement names it. `schema` is null when unqualified (the server resolves it via search_path). */
export interface RelationRef {
  schema: string | null;
  name: string;
}

/** Constructs that hide SQL from the parser: their effect cannot be classified from this statement alone. */
export type HiddenSql =
  | 'do_block' // DO $$ ... $$
  | 'function_body' // CREATE FUNCTION/PROCEDURE with a body
  | 'dynamic_sql' // a call to a function known to run SQL text (dblink, query_to_xml, ...)
  | 'copy_program' // COPY ... PROGRAM
  | 'server_file'; // COPY to/from a server-side file

export interface ClassifiedStatement {
  class: StatementClass;
  /**
   * Other classes the statement also falls into; a policy should require every one of them to be allowed.
   * SELECT INTO / CREATE TABLE AS: class 'write', secondary ['ddl']. A read, write, ddl, copy or utility statement
   * that changes settings (SELECT set_config('role', ...)) lists 'session'. Absent when there are none.
   */
  secondary?: StatementClass[];
  /** libpg_query node name, e.g. 'SelectStmt', 'VariableSetStmt'. */
  kind: string;
  /**
   * The statement's own text (sliced from the message by the parser's locations, whitespace trimmed).
   * For the statement inside PREPARE/DECLARE/EXPLAIN it is the enclosing statement's text.
   */
  text: string;
  /** Relations read and written (deduplicated, lowercased unless quoted in the source). */
  reads: RelationRef[];
  writes: RelationRef[];
  /** Functions called, as written: 'pg_read_file' or 'pg_catalog.pg_read_file' (lowercased unless quoted). */
  functions: string[];
  hidden: HiddenSql[];
  /**
   * Settings the statement changes: SET/RESET/set_config(...), ALTER SYSTEM, transaction characteristics
   * (name lowercased; value null for RESET/DEFAULT). Name '*' means every setting (RESET ALL, DISCARD ALL) or one
   * named only at run time; `dynamic` marks a name or value computed at run time (set_config($1, ...)); `local`
   * a change that ends with the transaction (SET LOCAL, set_config(..., true), or an is_local that is not a constant).
   */
  settings: { name: string; value: string | null; dynamic?: boolean; local?: true }[];
  /** SQL-level prepared statements and cursors, so EXECUTE/FETCH can be resolved to what they run. */
  prepare?: { name: string; statement: ClassifiedStatement };
  execute?: { name: string };
  declare?: { cursor: string; statement: ClassifiedStatement; hold?: boolean };
  fetch?: { cursor: string };
  /** CLOSE / DEALLOCATE, so the tables above can forget entries ('*' = all; DISCARD ALL sets both). */
  close?: { cursor: string };
  deallocate?: { name: string };
}

export type ClassifyResult =
  | { ok: true; statements: ClassifiedStatement[]; tags: Record<string, string> }
  | { ok: false; code: string; message: string; hint: string; position?: number };
