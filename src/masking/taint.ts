/**
 * Taint analysis (issue 4): from PostgreSQL's parse tree, for every result column of a statement, the base
 * columns its value may derive from; and what else the statement does with column values: predicates
 * (inference one guess at a time), sinks (laundering into tables, views, COPY, notifications, settings), casts
 * that echo a value in an error, user functions (which may read any table), and constructs Sluice cannot see
 * into. Rule-agnostic: `plan.ts` decides with the rules of the session. Depends only on the parse tree, the
 * catalog snapshot and search_path, so a result may be cached per (text, snapshot version, search_path).
 */
import { parseChecked } from '../sql/parser.js';
import { nodeType, type Json } from '../sql/walk.js';
import { colKey, type CatalogSnapshot, type PathSpec } from './catalog-snapshot.js';
import { arr, expr, Findings, str, UNATTRIBUTED, type Analyzer, type OutCol, type RangeEntry, type Scope, type Source } from './taint-expr.js';
import { analyzeSelect, fromClause, relationColumns, withClause } from './taint-select.js';

export { UNATTRIBUTED, type OutCol, type Source } from './taint-expr.js';

export interface StatementTaint {
  /** libpg_query node name of the statement. */
  kind: string;
  /** Result columns (SELECT, VALUES, RETURNING, FETCH of a DECLAREd query); null when it returns none we track. */
  outputs: OutCol[] | null;
  /** False when `outputs` may not line up with the result's fields one to one (a `*` over an unknown width). */
  exact: boolean;
  /** Every source read anywhere in the statement. */
  all: ReadonlySet<Source>;
  predicates: ReadonlySet<Source>;
  /** Source -> what stores or sends it (CREATE TABLE AS, INSERT ... SELECT, COPY TO, pg_notify(), ...). */
  sinks: ReadonlyMap<Source, string>;
  echoes: ReadonlySet<Source>;
  userFunctions: readonly string[];
  /** Why parts of the statement cannot be analysed (DO, dynamic SQL, opaque function bodies, statistics). */
  opaque: readonly string[];
  /** EXECUTE name: the caller resolves it to the PREPAREd statement's taint. */
  executes?: string;
}

export interface TaintOptions {
  /** The session's search_path, parsed (parseSearchPath); several candidates, or null when unknown (see PathSpec). */
  searchPath: PathSpec;
}

/** DDL that touches a table without copying, exposing or renaming its data. */
const HARMLESS_DDL = new Set(['LockStmt', 'VacuumStmt', 'TruncateStmt', 'DropStmt', 'ReindexStmt', 'ClusterStmt', 'RefreshMatViewStmt', 'CommentStmt']);
/** Statements without relations or expressions that matter here. */
const NO_DATA = new Set([
  'TransactionStmt', 'VariableSetStmt', 'VariableShowStmt', 'DiscardStmt', 'ListenStmt', 'UnlistenStmt', 'NotifyStmt',
  'ClosePortalStmt', 'FetchStmt', 'DeallocateStmt', 'CheckPointStmt', 'LoadStmt',
]);

class Run implements Analyzer {
  readonly f = new Findings();
  constructor(readonly cat: CatalogSnapshot, readonly searchPath: PathSpec) {}
  select(stmt: Json, outer: Scope | null) {
    return analyzeSelect(this, stmt, outer);
  }
  dml(stmt: Json, outer: Scope | null) {
    const r = this.statement(stmt, outer);
    return { outputs: r.outputs ?? [], exact: r.exact };
  }

  /** A statement node `{ Kind: body }`. */
  statement(node: Json, outer: Scope | null): { outputs: OutCol[] | null; exact: boolean; executes?: string } {
    const type = nodeType(node) ?? '';
    const b = (node[type] ?? {}) as Json;
    switch (type) {
      case 'SelectStmt':
        return this.select(node, outer);
      case 'InsertStmt':
        return this.insert(b, outer);
      case 'UpdateStmt':
        return this.update(b, outer);
      case 'DeleteStmt': {
        const scope = this.target(b, outer, arr(b.usingClause));
        this.f.predicate(expr(b.whereClause, scope, this));
        return this.returning(b, scope);
      }
      case 'MergeStmt': {
        // MERGE moves values between tables under conditions: every source is both a predicate and a sink.
        const scope = this.target(b, outer, [b.sourceRelation as Json]);
        const s = expr([b.joinCondition, b.mergeWhenClauses], scope, this);
        this.f.predicate(s);
        this.f.sink(s, 'MERGE');
        return this.returning(b, scope);
      }
      case 'CreateTableAsStmt': {
        const q = b.query as Json;
        if (q?.ExecuteStmt) {
          this.f.opaque.add('CREATE TABLE AS EXECUTE');
          return { outputs: null, exact: true };
        }
        const r = this.statement(q ?? {}, outer);
        for (const o of r.outputs ?? []) this.f.sink(o.sources, b.objtype === 'OBJECT_MATVIEW' ? 'CREATE MATERIALIZED VIEW' : 'CREATE TABLE AS');
        return { outputs: null, exact: true };
      }
      case 'ViewStmt': {
        const r = this.select((b.query ?? {}) as Json, outer);
        this.f.sink(new Set([...r.outputs.flatMap((o) => [...o.sources])]), 'CREATE VIEW');
        return { outputs: null, exact: true };
      }
      case 'CopyStmt':
        return this.copy(b, outer);
      case 'ExplainStmt': {
        // The plan text carries no values, but row counts and estimates answer the statement's predicates.
        this.statement((b.query ?? {}) as Json, outer);
        return { outputs: [{ name: 'QUERY PLAN', sources: new Set(), direct: null }], exact: true };
      }
      case 'PrepareStmt':
        return this.statement((b.query ?? {}) as Json, outer);
      case 'DeclareCursorStmt':
        return this.statement((b.query ?? {}) as Json, outer);
      case 'ExecuteStmt':
        expr(b.params, outer, this);
        return { outputs: null, exact: false, executes: typeof b.name === 'string' ? b.name : '' };
      case 'CreateFunctionStmt':
        this.functionBody(b);
        return { outputs: null, exact: true };
      case 'DoStmt':
        this.f.opaque.add('DO block');
        return { outputs: null, exact: true };
      case 'CallStmt':
        expr(b.funccall ? { FuncCall: b.funccall } : null, outer, this);
        // A procedure can read and write any table, whatever its schema.
        this.f.userFunctions.add(`procedure ${arr((b.funccall as Json | undefined)?.funcname).map(str).join('.')}`);
        return { outputs: null, exact: true };
      default:
        if (NO_DATA.has(type)) return { outputs: type === 'VariableShowStmt' ? [{ name: 'setting', sources: new Set(), direct: null }] : null, exact: true };
        if (!HARMLESS_DDL.has(type)) this.ddl(type, node);
        return { outputs: null, exact: true };
    }
  }

  /** The target table of INSERT/UPDATE/DELETE/MERGE plus other FROM items, as a scope (target first). */
  private target(b: Json, outer: Scope | null, from: Json[]): Scope {
    const ctes = b.withClause ? withClause(this, b.withClause as Json, outer) : outer?.ctes ?? null;
    const base: Scope = { entries: [], star: [], parent: outer, ctes };
    return fromClause(this, [{ RangeVar: b.relation }, ...from.filter(Boolean)], base);
  }

  private returning(b: Json, scope: Scope) {
    if (!Array.isArray(b.returningList) || b.returningList.length === 0) return { outputs: null, exact: true };
    const r = this.select({ SelectStmt: { targetList: b.returningList } }, scope);
    return r;
  }

  private insert(b: Json, outer: Scope | null) {
    const sel = b.selectStmt as Json | undefined;
    if (sel) {
      const r = this.select(sel, outer);
      for (const o of r.outputs) this.f.sink(o.sources, 'INSERT ... SELECT');
    }
    const conflict = b.onConflictClause as Json | undefined;
    const scope = this.target(b, outer, []);
    if (conflict) {
      // excluded.* holds the proposed row, i.e. the target's columns.
      const target = scope.entries[0];
      const excluded: RangeEntry | undefined = target && { ...target, alias: 'excluded', schema: null };
      const cscope: Scope = { ...scope, entries: excluded ? [...scope.entries, excluded] : scope.entries };
      for (const t of arr(conflict.targetList)) this.f.sink(expr((t.ResTarget as Json | undefined)?.val, cscope, this), 'INSERT ... ON CONFLICT DO UPDATE');
      this.f.predicate(expr(conflict.whereClause, cscope, this));
    }
    return this.returning(b, scope);
  }

  private update(b: Json, outer: Scope | null) {
    const scope = this.target(b, outer, arr(b.fromClause));
    const target = scope.entries[0];
    for (const t of arr(b.targetList)) {
      const rt = (t.ResTarget ?? {}) as Json;
      // SET email = lower(email) rewrites a column from itself: not a copy of it elsewhere.
      const dest = target?.columns.find((c) => c.name === rt.name)?.direct ?? null;
      this.f.sink(expr(rt.val, scope, this), 'UPDATE ... SET', dest);
    }
    this.f.predicate(expr(b.whereClause, scope, this));
    return this.returning(b, scope);
  }

  private copy(b: Json, outer: Scope | null) {
    if (b.is_from) return { outputs: null, exact: true };
    if (b.query) {
      const r = this.statement(b.query as Json, outer);
      for (const o of r.outputs ?? []) this.f.sink(o.sources, 'COPY TO');
      return { outputs: null, exact: true };
    }
    const rels = this.cat.resolve((b.relation as Json).schemaname as string | null ?? null, (b.relation as Json).relname as string, this.searchPath);
    const attlist = new Set(arr(b.attlist).map(str));
    if (rels.length === 0) this.f.sink(new Set([UNATTRIBUTED]), 'COPY TO');
    for (const rel of rels) {
      const cols = relationColumns(this, rel).filter((c) => attlist.size === 0 || attlist.has(c.name));
      for (const c of cols) this.f.sink(c.sources, 'COPY TO');
    }
    return { outputs: null, exact: true };
  }

  /** A function body Sluice can read (SQL) is analysed; any other language is opaque. */
  private functionBody(b: Json): void {
    const lang = arr(b.options).map((o) => o.DefElem as Json).find((d) => d?.defname === 'language');
    const language = str(lang?.arg).toLowerCase() || 'sql';
    if (b.sql_body) {
      this.ddl('CREATE FUNCTION', b.sql_body as Json);
      return;
    }
    const as = arr(b.options).map((o) => o.DefElem as Json).find((d) => d?.defname === 'as');
    const text = arr((as?.arg as Json | undefined)?.List ? ((as!.arg as Json).List as Json).items : []).map(str)[0];
    if (language !== 'sql' || text === undefined) {
      this.f.opaque.add(`function body in language ${language}`);
      return;
    }
    const parsed = parseChecked(text);
    if (!parsed.ok) {
      this.f.opaque.add('function body that does not parse');
      return;
    }
    for (const s of parsed.tree.stmts ?? []) this.ddl('CREATE FUNCTION', (s.stmt ?? {}) as Json);
  }

  /** DDL that names tables: their every column counts as stored by it (views, indexes, triggers, renames). */
  private ddl(what: string, node: Json): void {
    const stack: unknown[] = [node];
    while (stack.length > 0) {
      const v = stack.pop();
      if (v === null || typeof v !== 'object') continue;
      if (Array.isArray(v)) { stack.push(...v); continue; }
      const o = v as Json;
      const rv = (o.RangeVar ?? (typeof o.relname === 'string' ? o : null)) as Json | null;
      if (rv && typeof rv.relname === 'string') {
        const rels = this.cat.resolve((rv.schemaname as string | undefined) ?? null, rv.relname, this.searchPath);
        if (rels.length === 0) this.f.sink(new Set([`?${(rv.schemaname as string | undefined) ?? ''}.${rv.relname}.*`]), what);
        for (const rel of rels) for (const c of rel.columns) this.f.sink(new Set([colKey(rel.oid, c.attnum)]), what);
      }
      for (const k in o) stack.push(o[k]);
    }
  }
}

/** Analyses one top-level statement node (`raw.stmt` of a parse result). */
export function taintStatement(node: Json, cat: CatalogSnapshot, opts: TaintOptions): StatementTaint {
  const run = new Run(cat, opts.searchPath);
  const kind = nodeType(node) ?? '';
  const r = run.statement(node, null);
  const f = run.f;
  for (const [s] of f.sinks) f.all.add(s);
  const out: StatementTaint = {
    kind,
    outputs: r.outputs,
    exact: r.exact,
    all: f.all,
    predicates: f.predicates,
    sinks: f.sinks,
    echoes: f.echoes,
    userFunctions: [...f.userFunctions],
    opaque: [...f.opaque],
  };
  if (r.executes !== undefined) out.executes = r.executes;
  return out;
}

/** Parses `text` and analyses each statement; null when it does not parse (the classifier refuses it anyway). */
export function taintText(text: string, cat: CatalogSnapshot, opts: TaintOptions): StatementTaint[] | null {
  const parsed = parseChecked(text);
  if (!parsed.ok) return null;
  return (parsed.tree.stmts ?? []).map((s) => taintStatement((s.stmt ?? {}) as Json, cat, opts));
}
