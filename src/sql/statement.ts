import { ADMIN_DROP_TYPES, RELATION_DROP_TYPES, STATEMENT_TABLE } from './node-table.js';
import type { Refusal } from './parser.js';
import type { ClassifiedStatement, StatementClass } from './types.js';
import { constantText, Facts, nodeType, walk, type Json } from './walk.js';

/**
 * Classifies one top-level statement node: its class from the node table, refined by what it does
 * (DESIGN.md section 2 step 4, issue 3 "Parsing and classification").
 */

export interface Classified {
  statement: ClassifiedStatement;
  /** See Facts.literalDependent: the result must not be reused for the same text with other literals. */
  literalDependent: boolean;
}

type Extra = Pick<ClassifiedStatement, 'prepare' | 'execute' | 'declare' | 'fetch' | 'close' | 'deallocate'>;

function unclassifiable(type: string, why: string): Refusal {
  return {
    ok: false,
    code: '0A000',
    message: `Sluice cannot classify a ${type}: ${why}`,
    hint: 'Sluice refuses statements it cannot classify; run this statement directly against the database if you must.',
  };
}

export function classifyStatement(node: Json, text: string): Classified | Refusal {
  const type = nodeType(node);
  if (type === undefined) return unclassifiable('statement', 'the parser returned no statement node');
  const rule = Object.hasOwn(STATEMENT_TABLE, type) ? STATEMENT_TABLE[type] : undefined;
  if (rule === undefined) return unclassifiable(type, 'this kind of statement is not in Sluice\'s table');
  if (typeof rule !== 'string') return unclassifiable(type, rule.refuse);
  const body = (node[type] ?? {}) as Json;
  const facts = new Facts();
  const secondary = new Set<StatementClass>();
  const extra: Extra = {};
  let cls: StatementClass = rule;

  switch (type) {
    case 'SelectStmt':
    case 'InsertStmt':
    case 'UpdateStmt':
    case 'DeleteStmt':
    case 'MergeStmt':
      walk(node, facts, true);
      if (facts.selectInto) {
        // SELECT INTO creates a table and fills it.
        cls = 'write';
        secondary.add('ddl');
      } else if (facts.dml) {
        cls = 'write';
      } else if (facts.locking) {
        // FOR UPDATE/SHARE locks rows of the tables it reads, like LOCK (a write) locks tables.
        cls = 'write';
        for (const [key, ref] of facts.reads) if (!facts.writes.has(key)) facts.writes.set(key, ref);
      }
      // pg_settings has a rule that turns an UPDATE into set_config(): a settings change whose name is in the data.
      for (const { item: ref } of facts.writes.values()) {
        if (ref.name === 'pg_settings' && (ref.schema === null || ref.schema === 'pg_catalog')) facts.setting('*', null, true);
      }
      break;
    case 'ExplainStmt':
      return explain(body, text);
    case 'CopyStmt': {
      const isFrom = body.is_from === true;
      cls = isFrom ? 'copy_in' : 'copy_out';
      if (body.relation) facts.relation(body.relation as Json, isFrom ? 'write' : 'read', null);
      // COPY (query) TO runs the query; COPY (DELETE ... RETURNING ...) TO is a write.
      if (body.query) walk(body.query, facts, true);
      if (body.whereClause) walk(body.whereClause, facts, true);
      if (facts.dml) {
        cls = 'write';
        secondary.add('copy_out');
      }
      if (body.is_program === true) facts.hidden.add('copy_program');
      else if (typeof body.filename === 'string') facts.hidden.add('server_file');
      break;
    }
    case 'VariableSetStmt':
      cls = variableSet(body, facts);
      break;
    case 'AlterSystemStmt':
      variableSet((body.setstmt ?? {}) as Json, facts);
      break;
    case 'TransactionStmt':
      transactionOptions(body.options, facts, '');
      break;
    case 'DiscardStmt':
      if (body.target === 'DISCARD_ALL') {
        facts.setting('*', null);
        extra.close = { cursor: '*' };
        extra.deallocate = { name: '*' };
      }
      break;
    case 'PrepareStmt': {
      const inner = classifyStatement((body.query ?? {}) as Json, text);
      if (!('statement' in inner)) return inner;
      extra.prepare = { name: str(body.name), statement: inner.statement };
      facts.literalDependent = inner.literalDependent;
      break;
    }
    case 'DeclareCursorStmt': {
      const inner = classifyStatement((body.query ?? {}) as Json, text);
      if (!('statement' in inner)) return inner;
      // CURSOR_OPT_HOLD (0x20): a WITH HOLD cursor outlives its transaction; others end with it.
      extra.declare = { cursor: str(body.portalname), statement: inner.statement, hold: (((body.options as number | undefined) ?? 0) & 0x20) !== 0 };
      facts.literalDependent = inner.literalDependent;
      break;
    }
    case 'ExecuteStmt':
      extra.execute = { name: str(body.name) };
      // Parameters are expressions evaluated now: EXECUTE p(pg_read_file('...')).
      walk(body.params, facts, true);
      break;
    case 'FetchStmt':
      extra.fetch = { cursor: str(body.portalname) };
      break;
    case 'ClosePortalStmt':
      extra.close = { cursor: typeof body.portalname === 'string' ? body.portalname : '*' };
      break;
    case 'DeallocateStmt':
      extra.deallocate = { name: body.isall === true || typeof body.name !== 'string' ? '*' : body.name };
      break;
    case 'DoStmt':
      facts.hidden.add('do_block');
      break;
    case 'CreateFunctionStmt':
      facts.hidden.add('function_body');
      walk(node, facts, false);
      break;
    case 'CallStmt':
      walk({ FuncCall: body.funccall ?? {} }, facts, true);
      break;
    case 'CreateTableAsStmt': {
      const into = (body.into ?? {}) as Json;
      if (into.rel) facts.relation(into.rel as Json, 'write', null);
      // CREATE TABLE t AS EXECUTE p: what runs is the prepared statement, resolved like EXECUTE.
      const execute = (body.query as Json | undefined)?.ExecuteStmt as Json | undefined;
      if (execute) extra.execute = { name: str(execute.name) };
      walk(body.query, facts, true);
      // CREATE TABLE AS is a write that creates a table; CREATE MATERIALIZED VIEW is DDL that fills one.
      if (body.objtype === 'OBJECT_MATVIEW') {
        cls = 'ddl';
        secondary.add('write');
      } else {
        cls = 'write';
        secondary.add('ddl');
      }
      break;
    }
    case 'LockStmt':
    case 'TruncateStmt':
      for (const r of Array.isArray(body.relations) ? (body.relations as Json[]) : []) {
        if (r.RangeVar) facts.relation(r.RangeVar as Json, 'write', null);
      }
      break;
    case 'DropStmt':
      if (ADMIN_DROP_TYPES.has(String(body.removeType))) cls = 'admin';
      if (RELATION_DROP_TYPES.has(String(body.removeType))) droppedRelations(body.objects, facts);
      break;
    default:
      // DDL, admin, utility: expressions inside are stored or are options, not run as a query now.
      walk(node, facts, false);
  }
  return finish(type, cls, text, facts, secondary, extra);
}

function finish(type: string, cls: StatementClass, text: string, facts: Facts, secondary: Set<StatementClass>, extra: Extra): Classified {
  // Changing settings from inside a query is still changing the session.
  if (facts.settings.length > 0 && cls !== 'session' && cls !== 'transaction' && cls !== 'admin') secondary.add('session');
  secondary.delete(cls);
  const statement: ClassifiedStatement = {
    class: cls,
    kind: type,
    text,
    reads: facts.sortedReads(),
    writes: facts.sortedWrites(),
    functions: facts.sortedFunctions(),
    hidden: [...facts.hidden],
    settings: facts.settings,
    ...extra,
  };
  if (secondary.size > 0) statement.secondary = [...secondary];
  return { statement, literalDependent: facts.literalDependent };
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/** EXPLAIN plans; EXPLAIN ANALYZE also runs the statement, so it is whatever the statement is. */
function explain(body: Json, text: string): Classified | Refusal {
  let literalDependent = false;
  let analyze = false;
  for (const o of Array.isArray(body.options) ? (body.options as Json[]) : []) {
    const d = (o.DefElem ?? {}) as Json;
    if (d.defname !== 'analyze') continue;
    if (d.arg === undefined) {
      analyze = true;
      continue;
    }
    // defGetBoolean: false/off/0 turn it off; anything else is on or an error on the server. Any "on" wins.
    literalDependent = true;
    const v = constantText(d.arg);
    if (!(typeof v === 'string' && ['false', 'off', '0'].includes(v.toLowerCase()))) analyze = true;
  }
  const inner = classifyStatement((body.query ?? {}) as Json, text);
  if (!('statement' in inner)) return inner;
  // EXPLAIN DECLARE explains the cursor's query.
  const target = inner.statement.declare?.statement ?? inner.statement;
  literalDependent ||= inner.literalDependent;
  if (analyze) return { statement: { ...target, kind: 'ExplainStmt', text }, literalDependent };
  const reads = [...target.reads];
  for (const w of target.writes) if (!reads.some((r) => r.schema === w.schema && r.name === w.name)) reads.push(w);
  // Nothing runs, but settings stay listed with the set_config() calls that name them (policy reads both).
  const statement: ClassifiedStatement = {
    class: 'read',
    kind: 'ExplainStmt',
    text,
    reads,
    writes: [],
    functions: target.functions,
    hidden: target.hidden,
    settings: target.settings,
  };
  if (target.settings.length > 0) statement.secondary = ['session'];
  return { statement, literalDependent };
}

function variableSet(body: Json, facts: Facts): StatementClass {
  const name = str(body.name).toLowerCase();
  const args = Array.isArray(body.args) ? body.args : [];
  const local = body.is_local === true;
  switch (body.kind) {
    case 'VAR_SET_VALUE':
      facts.setting(name, args.map((a) => constantText(a) ?? '?').join(', '), false, local);
      return 'session';
    case 'VAR_SET_MULTI':
      // SET TRANSACTION ... / SET SESSION CHARACTERISTICS AS TRANSACTION ... (the session's defaults)
      if (name === 'transaction') {
        transactionOptions(args, facts, '');
        return 'transaction';
      }
      transactionOptions(args, facts, name === 'session characteristics' ? 'default_' : '');
      return 'session';
    case 'VAR_RESET_ALL':
      facts.setting('*', null);
      return 'session';
    default:
      // VAR_SET_DEFAULT, VAR_SET_CURRENT, VAR_RESET
      facts.setting(name || '*', null, false, local);
      return 'session';
  }
}

function transactionOptions(options: unknown, facts: Facts, prefix: string): void {
  for (const o of Array.isArray(options) ? (options as Json[]) : []) {
    const d = (o.DefElem ?? {}) as Json;
    if (typeof d.defname === 'string') facts.setting(prefix + d.defname, constantText(d.arg) ?? null);
  }
}

/** DROP TABLE names relations as lists of name parts ([catalog.]schema.name), not as RangeVars. */
function droppedRelations(objects: unknown, facts: Facts): void {
  for (const o of Array.isArray(objects) ? (objects as Json[]) : []) {
    const items = Array.isArray((o.List as Json | undefined)?.items) ? ((o.List as Json).items as Json[]) : [];
    const parts = items.map((i) => constantText(i) ?? '');
    const name = parts[parts.length - 1];
    if (name) facts.addRelation({ schema: parts.length >= 2 ? parts[parts.length - 2]! : null, name }, 'read', Number.MAX_SAFE_INTEGER);
  }
}
