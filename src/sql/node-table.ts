import type { StatementClass } from './types.js';

/**
 * Every top-level node libpg_query (PostgreSQL 17 grammar) can produce, and the class it starts from.
 * statement.ts refines some of them (a SELECT with a data-modifying CTE is a write, COPY FROM is copy_in, ...).
 * A node missing from this table is refused (fail closed): a new PostgreSQL version must be classified here
 * before Sluice lets its new statements through. test/unit/sql/node-table.test.ts checks that every `*Stmt`
 * type in @pgsql/types is listed.
 */

export interface NotAStatement {
  refuse: string;
}

export const STATEMENT_TABLE: Readonly<Record<string, StatementClass | NotAStatement>> = {
  // Queries and DML
  SelectStmt: 'read',
  InsertStmt: 'write',
  UpdateStmt: 'write',
  DeleteStmt: 'write',
  MergeStmt: 'write',
  VariableShowStmt: 'read',
  ExplainStmt: 'read',
  TruncateStmt: 'write',
  LockStmt: 'write',
  // A procedure runs arbitrary code that may write and commit.
  CallStmt: 'write',
  CreateTableAsStmt: 'write',
  CopyStmt: 'copy_out',

  // Session and transaction
  VariableSetStmt: 'session',
  DiscardStmt: 'session',
  TransactionStmt: 'transaction',
  ConstraintsSetStmt: 'transaction',

  // SQL-level prepared statements, cursors, notifications
  PrepareStmt: 'utility',
  ExecuteStmt: 'utility',
  DeallocateStmt: 'utility',
  DeclareCursorStmt: 'utility',
  FetchStmt: 'utility',
  ClosePortalStmt: 'utility',
  ListenStmt: 'utility',
  UnlistenStmt: 'utility',
  NotifyStmt: 'utility',

  // Schema objects
  CreateSchemaStmt: 'ddl',
  CreateStmt: 'ddl',
  CreateForeignTableStmt: 'ddl',
  AlterTableStmt: 'ddl',
  AlterTableMoveAllStmt: 'ddl',
  AlterCollationStmt: 'ddl',
  AlterDomainStmt: 'ddl',
  CreateDomainStmt: 'ddl',
  DefineStmt: 'ddl',
  CompositeTypeStmt: 'ddl',
  CreateEnumStmt: 'ddl',
  CreateRangeStmt: 'ddl',
  AlterEnumStmt: 'ddl',
  AlterTypeStmt: 'ddl',
  CreateSeqStmt: 'ddl',
  AlterSeqStmt: 'ddl',
  IndexStmt: 'ddl',
  ReindexStmt: 'ddl',
  ClusterStmt: 'ddl',
  RefreshMatViewStmt: 'ddl',
  ViewStmt: 'ddl',
  RuleStmt: 'ddl',
  CreateTrigStmt: 'ddl',
  CreatePolicyStmt: 'ddl',
  AlterPolicyStmt: 'ddl',
  CreateStatsStmt: 'ddl',
  AlterStatsStmt: 'ddl',
  CreateFunctionStmt: 'ddl',
  AlterFunctionStmt: 'ddl',
  DoStmt: 'ddl',
  CreateOpClassStmt: 'ddl',
  CreateOpFamilyStmt: 'ddl',
  AlterOpFamilyStmt: 'ddl',
  AlterOperatorStmt: 'ddl',
  CreateConversionStmt: 'ddl',
  CreateCastStmt: 'ddl',
  CreateTransformStmt: 'ddl',
  AlterTSDictionaryStmt: 'ddl',
  AlterTSConfigurationStmt: 'ddl',
  ImportForeignSchemaStmt: 'ddl',
  DropStmt: 'ddl',
  CommentStmt: 'ddl',
  RenameStmt: 'ddl',
  AlterObjectDependsStmt: 'ddl',
  AlterObjectSchemaStmt: 'ddl',
  AlterOwnerStmt: 'ddl',

  // Roles, privileges, server, databases, extensions, replication: things a DBA does
  GrantStmt: 'admin',
  GrantRoleStmt: 'admin',
  AlterDefaultPrivilegesStmt: 'admin',
  CreateRoleStmt: 'admin',
  AlterRoleStmt: 'admin',
  AlterRoleSetStmt: 'admin',
  DropRoleStmt: 'admin',
  DropOwnedStmt: 'admin',
  ReassignOwnedStmt: 'admin',
  SecLabelStmt: 'admin',
  AlterSystemStmt: 'admin',
  VacuumStmt: 'admin',
  CheckPointStmt: 'admin',
  LoadStmt: 'admin',
  CreatedbStmt: 'admin',
  AlterDatabaseStmt: 'admin',
  AlterDatabaseRefreshCollStmt: 'admin',
  AlterDatabaseSetStmt: 'admin',
  DropdbStmt: 'admin',
  CreateTableSpaceStmt: 'admin',
  DropTableSpaceStmt: 'admin',
  AlterTableSpaceOptionsStmt: 'admin',
  CreateExtensionStmt: 'admin',
  AlterExtensionStmt: 'admin',
  AlterExtensionContentsStmt: 'admin',
  CreatePLangStmt: 'admin',
  CreateAmStmt: 'admin',
  CreateEventTrigStmt: 'admin',
  AlterEventTrigStmt: 'admin',
  // Foreign data wrappers and servers open files and network connections, user mappings hold credentials.
  CreateFdwStmt: 'admin',
  AlterFdwStmt: 'admin',
  CreateForeignServerStmt: 'admin',
  AlterForeignServerStmt: 'admin',
  CreateUserMappingStmt: 'admin',
  AlterUserMappingStmt: 'admin',
  DropUserMappingStmt: 'admin',
  CreatePublicationStmt: 'admin',
  AlterPublicationStmt: 'admin',
  CreateSubscriptionStmt: 'admin',
  AlterSubscriptionStmt: 'admin',
  DropSubscriptionStmt: 'admin',

  // Node types that exist in the grammar's output but never as a statement of their own
  RawStmt: { refuse: 'the wrapper around a statement, not a statement' },
  SetOperationStmt: { refuse: 'produced by parse analysis, not by the raw parser' },
  ReturnStmt: { refuse: 'only valid inside a SQL function body' },
  PLAssignStmt: { refuse: 'only valid inside PL/pgSQL' },
  ReplicaIdentityStmt: { refuse: 'only valid inside ALTER TABLE' },
};

/** DROP of these object kinds is a DBA's act, like their CREATE. */
export const ADMIN_DROP_TYPES: ReadonlySet<string> = new Set([
  'OBJECT_EXTENSION',
  'OBJECT_FOREIGN_SERVER',
  'OBJECT_FDW',
  'OBJECT_EVENT_TRIGGER',
  'OBJECT_ACCESS_METHOD',
  'OBJECT_LANGUAGE',
  'OBJECT_PUBLICATION',
]);

/** DROP of these object kinds names relations (as lists of name parts, not RangeVars). */
export const RELATION_DROP_TYPES: ReadonlySet<string> = new Set([
  'OBJECT_TABLE',
  'OBJECT_VIEW',
  'OBJECT_MATVIEW',
  'OBJECT_SEQUENCE',
  'OBJECT_FOREIGN_TABLE',
  'OBJECT_INDEX',
]);

/**
 * Functions that run SQL given as text (or read whole tables, schemas or databases by name), so what they do
 * cannot be classified from the statement. Matched on the last name part: extensions such as dblink can be
 * installed in any schema.
 */
export const DYNAMIC_SQL_FUNCTIONS: ReadonlySet<string> = new Set([
  'dblink',
  'dblink_exec',
  'dblink_open',
  'dblink_fetch',
  'dblink_send_query',
  'query_to_xml',
  'query_to_xmlschema',
  'query_to_xml_and_xmlschema',
  'cursor_to_xml',
  'cursor_to_xmlschema',
  'table_to_xml',
  'table_to_xmlschema',
  'table_to_xml_and_xmlschema',
  'schema_to_xml',
  'schema_to_xmlschema',
  'schema_to_xml_and_xmlschema',
  'database_to_xml',
  'database_to_xmlschema',
  'database_to_xml_and_xmlschema',
  // ts_stat(sqlquery) and ts_rewrite(query, select) run the query text they are given.
  'ts_stat',
  'ts_rewrite',
  'pg_background_launch',
]);

/** Schema-qualified functions that schedule SQL text to run later (pg_cron). */
export const DYNAMIC_SQL_QUALIFIED: ReadonlySet<string> = new Set([
  'cron.schedule',
  'cron.schedule_in_database',
  'cron.alter_job',
]);
