import { DYNAMIC_SQL_FUNCTIONS, DYNAMIC_SQL_QUALIFIED } from './node-table.js';
import type { HiddenSql, RelationRef } from './types.js';

/**
 * A generic walk over libpg_query's JSON tree: every object and array is visited, so a relation or function
 * call nested anywhere (sub-selects, LATERAL, CTEs, function arguments, DDL expressions) is found without a
 * per-node-type list of fields to follow. The walk is iterative: the tree can be thousands of levels deep.
 *
 * JSON shapes: a Node is `{ "TypeName": { ...fields } }` (one key, capitalised); a field typed as a specific
 * struct holds it bare (`InsertStmt.relation` is a bare RangeVar), so bare RangeVars are recognised by shape.
 */

export type Json = Record<string, unknown>;
/** `local`: only until the end of the transaction (SET LOCAL, set_config(..., true) or an is_local not constant). */
export type Setting = { name: string; value: string | null; dynamic?: boolean; local?: true };

/** CTE names in scope at a point of the tree, innermost first. */
export interface CteScope {
  name: string;
  parent: CteScope | null;
}

interface Located<T> {
  item: T;
  at: number;
}

/** What a walk found in one statement. */
export class Facts {
  readonly reads = new Map<string, Located<RelationRef>>();
  readonly writes = new Map<string, Located<RelationRef>>();
  readonly functions = new Map<string, Located<string>>();
  readonly hidden = new Set<HiddenSql>();
  readonly settings: Setting[] = [];
  /** An INSERT/UPDATE/DELETE/MERGE runs (top level, in a CTE, in COPY (...) TO). */
  dml = false;
  /** SELECT ... INTO runs. */
  selectInto = false;
  /** SELECT ... FOR UPDATE/SHARE runs (it locks rows, like LOCK locks tables). */
  locking = false;
  /** The classification used a value written as a literal, so a template must not vary literals (cache.ts). */
  literalDependent = false;

  relation(rv: Json, as: 'read' | 'write', scope: CteScope | null): void {
    const name = rv.relname;
    if (typeof name !== 'string') return;
    const schema = typeof rv.schemaname === 'string' ? rv.schemaname : null;
    // An unqualified name that matches a CTE in scope is the CTE, not a table (PostgreSQL resolves CTEs first).
    if (as === 'read' && schema === null && inScope(scope, name)) return;
    this.addRelation({ schema, name }, as, typeof rv.location === 'number' ? rv.location : Number.MAX_SAFE_INTEGER);
  }

  addRelation(ref: RelationRef, as: 'read' | 'write', at: number): void {
    const map = as === 'write' ? this.writes : this.reads;
    const key = `${ref.schema ?? ''}\u0000${ref.name}`;
    const seen = map.get(key);
    if (!seen) map.set(key, { item: ref, at });
    else if (at < seen.at) seen.at = at;
  }

  setting(name: string, value: string | null, dynamic = false, local = false): void {
    this.literalDependent = true;
    const s: Setting = dynamic ? { name, value, dynamic } : { name, value };
    if (local) s.local = true;
    this.settings.push(s);
  }

  sortedReads(): RelationRef[] {
    return sorted(this.reads);
  }
  sortedWrites(): RelationRef[] {
    return sorted(this.writes);
  }
  sortedFunctions(): string[] {
    return sorted(this.functions);
  }
}

function sorted<T>(map: Map<string, Located<T>>): T[] {
  return [...map.values()].sort((a, b) => a.at - b.at).map((l) => l.item);
}

function inScope(scope: CteScope | null, name: string): boolean {
  for (let s = scope; s; s = s.parent) if (s.name === name) return true;
  return false;
}

// Leaves that can hold no relation or function call.
const LEAVES = new Set(['A_Const', 'String', 'Integer', 'Float', 'Boolean', 'BitString', 'ColumnRef', 'ParamRef', 'A_Star', 'Alias']);
const STATEMENTS = new Set(['SelectStmt', 'InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt']);

function isNodeName(key: string): boolean {
  const c = key.charCodeAt(0);
  return c >= 65 && c <= 90;
}

/** The single `{ Type: body }` key of a Node, or undefined for a bare struct. */
export function nodeType(o: Json): string | undefined {
  let found: string | undefined;
  for (const key in o) {
    if (found !== undefined || !isNodeName(key)) return undefined;
    found = key;
  }
  return found;
}

/** A constant as text (through casts), null for NULL, undefined when the node is not a constant. */
export function constantText(node: unknown): string | null | undefined {
  if (!node || typeof node !== 'object') return undefined;
  const o = node as Json;
  if (o.TypeCast) return constantText((o.TypeCast as Json).arg);
  if (o.String) return ((o.String as Json).sval as string | undefined) ?? '';
  const c = o.A_Const as Json | undefined;
  if (!c) return undefined;
  if (c.isnull) return null;
  if (c.sval) return ((c.sval as Json).sval as string | undefined) ?? '';
  if (c.ival) return String(((c.ival as Json).ival as number | undefined) ?? 0);
  if (c.fval) return ((c.fval as Json).fval as string | undefined) ?? '0';
  if (c.boolval) return (c.boolval as Json).boolval ? 'true' : 'false';
  if (c.bsval) return ((c.bsval as Json).bsval as string | undefined) ?? '';
  return undefined;
}

/**
 * Walks `root`. `exec`: the tree runs now (top-level statement, COPY's query, EXPLAIN ANALYZE) rather than
 * being stored for later (a view, rule or function body): DML found where nothing runs is only a reference.
 */
export function walk(root: unknown, facts: Facts, exec: boolean, rootScope: CteScope | null = null): void {
  const values: unknown[] = [root];
  const scopes: (CteScope | null)[] = [rootScope];
  const push = (v: unknown, scope: CteScope | null): void => {
    if (v !== null && typeof v === 'object') {
      values.push(v);
      scopes.push(scope);
    }
  };
  // Children pushed in reverse keep the visit in source order (only for readability of results).
  const pushFields = (o: Json, scope: CteScope | null, skip?: ReadonlySet<string>): void => {
    const keys = Object.keys(o);
    for (let i = keys.length - 1; i >= 0; i--) if (!skip?.has(keys[i]!)) push(o[keys[i]!], scope);
  };

  while (values.length > 0) {
    const v = values.pop();
    const scope = scopes.pop() ?? null;
    // Absent optional fields (e.g. EXECUTE without parameters) arrive as undefined: nothing to visit.
    if (v === null || typeof v !== 'object') continue;
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) push(v[i], scope);
      continue;
    }
    const o = v as Json;
    const type = nodeType(o);
    if (type === undefined) {
      if (typeof o.relname === 'string' && typeof o.relpersistence === 'string') facts.relation(o, 'read', scope);
      else pushFields(o, scope);
      continue;
    }
    const body = o[type] as Json;
    if (LEAVES.has(type)) continue;
    if (type === 'RangeVar') facts.relation(body, 'read', scope);
    else if (type === 'FuncCall') functionCall(body, facts, scope, push);
    else if (STATEMENTS.has(type)) statement(type, body, facts, exec, scope, push, pushFields);
    else if (type === 'LockingClause') {
      // lockedRels name FROM items (often aliases), not tables: the locked tables are already in FROM.
      if (exec) facts.locking = true;
    } else pushFields(body, scope);
  }
}

type Push = (v: unknown, scope: CteScope | null) => void;
type PushFields = (o: Json, scope: CteScope | null, skip?: ReadonlySet<string>) => void;

const NOT_FUNCNAME = new Set(['funcname']);

function functionCall(body: Json, facts: Facts, scope: CteScope | null, push: Push): void {
  const parts = Array.isArray(body.funcname) ? (body.funcname as Json[]) : [];
  const names = parts.map((p) => ((p.String as Json | undefined)?.sval as string | undefined) ?? '');
  const full = names.join('.');
  const last = names[names.length - 1] ?? '';
  const at = typeof body.location === 'number' ? body.location : Number.MAX_SAFE_INTEGER;
  const seen = facts.functions.get(full);
  if (!seen) facts.functions.set(full, { item: full, at });
  if (DYNAMIC_SQL_FUNCTIONS.has(last) || DYNAMIC_SQL_QUALIFIED.has(full)) facts.hidden.add('dynamic_sql');
  if (last === 'set_config') {
    // set_config(name, value, is_local) changes a setting from inside any statement; reported even where the
    // call is stored rather than run now (a column DEFAULT runs during ALTER TABLE ... ADD COLUMN).
    const args = Array.isArray(body.args) ? body.args : [];
    const name = constantText(args[0]);
    const value = constantText(args[1]);
    const dynamic = typeof name !== 'string' || value === undefined;
    // is_local: only a constant false is surely session-wide.
    const isLocal = constantText(args[2]);
    const local = !(isLocal === 'false' || isLocal === 'f' || isLocal === 'off' || isLocal === 'no' || isLocal === '0');
    facts.setting(typeof name === 'string' ? name.toLowerCase() : '*', value ?? null, dynamic, local);
  }
  for (const key of Object.keys(body).reverse()) if (!NOT_FUNCNAME.has(key)) push(body[key], scope);
}

const STATEMENT_HANDLED = new Set(['withClause', 'relation', 'intoClause', 'larg', 'rarg']);

function statement(
  type: string,
  body: Json,
  facts: Facts,
  exec: boolean,
  outer: CteScope | null,
  push: Push,
  pushFields: PushFields,
): void {
  const scope = body.withClause ? withClause(body.withClause as Json, outer, push) : outer;
  if (type !== 'SelectStmt' && body.relation) {
    // The target of INSERT/UPDATE/DELETE/MERGE is always a table, never a CTE of the same name.
    const target = body.relation as Json;
    facts.relation(target, exec ? 'write' : 'read', null);
    if (exec) {
      facts.dml = true;
      // UPDATE/DELETE/MERGE ... RETURNING hand back rows that were already there: a read too. A plain
      // INSERT ... RETURNING id hands back what the client just wrote (ORMs do it for every insert);
      // with ON CONFLICT DO UPDATE it can return an existing row.
      const returns = Array.isArray(body.returningList) && body.returningList.length > 0;
      if (returns && (type !== 'InsertStmt' || body.onConflictClause)) facts.relation(target, 'read', null);
    }
  }
  const into = body.intoClause as Json | undefined;
  if (into?.rel) {
    facts.relation(into.rel as Json, exec ? 'write' : 'read', null);
    if (exec) facts.selectInto = true;
  }
  // UNION/INTERSECT/EXCEPT branches are bare SelectStmt structs; wrapped, they get their own WITH scoping.
  if (body.larg) push({ SelectStmt: body.larg }, scope);
  if (body.rarg) push({ SelectStmt: body.rarg }, scope);
  pushFields(body, scope, STATEMENT_HANDLED);
}

/**
 * CTE scoping as PostgreSQL does it: without RECURSIVE a CTE sees only the ones listed before it (so
 * `WITH t AS (SELECT * FROM t)` reads the table t); with RECURSIVE every CTE sees all of them.
 */
function withClause(w: Json, outer: CteScope | null, push: Push): CteScope | null {
  const ctes = Array.isArray(w.ctes) ? (w.ctes as Json[]) : [];
  let scope = outer;
  const bodies: { query: unknown; scope: CteScope | null }[] = [];
  for (const c of ctes) {
    const cte = (c.CommonTableExpr ?? {}) as Json;
    bodies.push({ query: cte.ctequery, scope });
    if (typeof cte.ctename === 'string') scope = { name: cte.ctename, parent: scope };
  }
  for (const b of bodies) push(b.query, w.recursive ? scope : b.scope);
  return scope;
}
