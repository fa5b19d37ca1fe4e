/**
 * Taint through queries: FROM items (tables, views, CTEs, subqueries, functions, joins with USING / NATURAL),
 * the target list (`*`, `t.*`, expressions), set operations and VALUES, and every clause that filters, groups
 * or orders (a predicate use). Views are analysed from their definition (pg_get_viewdef), memoised per snapshot.
 */
import { parseChecked } from '../sql/parser.js';
import { nodeType, type Json } from '../sql/walk.js';
import { colKey, STATISTICS_RELATIONS, type CatalogRelation, type CatalogSnapshot, type ColKey } from './catalog-snapshot.js';
import {
  arr, expr, Findings, resolveColumnRef, str, UNATTRIBUTED, wholeRow,
  type Analyzer, type CteEnv, type OutCol, type RangeEntry, type Scope, type Source,
} from './taint-expr.js';

type Query = { outputs: OutCol[]; exact: boolean };
interface FromItem {
  entries: RangeEntry[];
  star: OutCol[];
}

const union = (cols: OutCol[]): Set<Source> => {
  const s = new Set<Source>();
  for (const c of cols) for (const x of c.sources) s.add(x);
  return s;
};

function renamed(cols: OutCol[], names: string[]): OutCol[] {
  return cols.map((c, i) => (i < names.length ? { ...c, name: names[i]! } : c));
}

function findCte(scope: Scope | null, name: string): CteEnv | null {
  for (let s = scope; s; s = s.parent) for (let c = s.ctes; c; c = c.parent) if (c.name === name) return c;
  return null;
}

/** Analyses a SELECT (wrapped `{SelectStmt: ...}` or a bare body, as set-operation branches are). */
export function analyzeSelect(a: Analyzer, stmt: Json, outer: Scope | null): Query {
  const body = (stmt.SelectStmt ?? stmt) as Json;
  const ctes = body.withClause ? withClause(a, body.withClause as Json, outer) : outer?.ctes ?? null;
  const base: Scope = { entries: [], star: [], parent: outer, ctes };
  if (body.op !== undefined && body.op !== 'SETOP_NONE') {
    const l = analyzeSelect(a, (body.larg ?? {}) as Json, base);
    const r = analyzeSelect(a, (body.rarg ?? {}) as Json, base);
    // A set operation's columns have no provenance in PostgreSQL's RowDescription.
    const outputs = l.outputs.map((c, i): OutCol => ({ name: c.name, sources: union([c, ...(r.outputs[i] ? [r.outputs[i]] : [])]), direct: null, computed: true }));
    const sortScope: Scope = { ...base, outputs };
    orderingClauses(a, body, sortScope, outputs);
    return { outputs, exact: l.exact && r.exact && l.outputs.length === r.outputs.length };
  }
  if (Array.isArray(body.valuesLists)) {
    const outputs: OutCol[] = [];
    for (const row of arr(body.valuesLists)) {
      arr((row.List as Json | undefined)?.items).forEach((item, i) => {
        const s = expr(item, base, a);
        if (outputs[i]) for (const x of s) outputs[i]!.sources.add(x);
        else outputs[i] = { name: `column${i + 1}`, sources: s, direct: null, computed: true };
      });
    }
    orderingClauses(a, body, { ...base, outputs }, outputs);
    return { outputs, exact: true };
  }
  const scope = fromClause(a, arr(body.fromClause), base);
  a.f.predicate(expr(body.whereClause, scope, a));
  const outputs: OutCol[] = [];
  let exact = true;
  for (const t of arr(body.targetList)) {
    const rt = (t.ResTarget ?? {}) as Json;
    const val = rt.val as Json | undefined;
    const ref = val?.ColumnRef as Json | undefined;
    if (ref && arr(ref.fields).some((f) => f.A_Star)) {
      const cols = resolveColumnRef(arr(ref.fields), scope);
      if (cols.some((c) => c.name === '*')) exact = false;
      outputs.push(...cols);
      continue;
    }
    if (ref) {
      const cols = resolveColumnRef(arr(ref.fields), scope);
      const sources = union(cols);
      for (const x of sources) a.f.all.add(x);
      const direct = cols.length === 1 ? cols[0]!.direct : null;
      const out: OutCol = { name: (rt.name as string | undefined) ?? cols[0]?.name ?? '?column?', sources, direct };
      // A column of a subquery or CTE that computes it is as computed here.
      if (cols.length === 1 && cols[0]!.computed) out.computed = true;
      outputs.push(out);
      continue;
    }
    const out: OutCol = { name: (rt.name as string | undefined) ?? '?column?', sources: expr(val, scope, a), direct: null };
    if (!castOfColumn(val)) out.computed = true;
    outputs.push(out);
  }
  const withOutputs: Scope = { ...scope, outputs };
  orderingClauses(a, body, withOutputs, outputs);
  a.f.predicate(expr(body.havingClause, withOutputs, a));
  for (const w of arr(body.windowClause)) a.f.predicate(expr(w, withOutputs, a));
  if (body.intoClause) a.f.sink(union(outputs), 'SELECT INTO');
  return { outputs, exact };
}

/** ORDER BY, GROUP BY, DISTINCT ON, LIMIT, OFFSET: output aliases and positions count as those outputs. */
function orderingClauses(a: Analyzer, body: Json, scope: Scope, outputs: OutCol[]): void {
  const byOutput = (node: unknown): void => {
    const n = (node as Json | undefined) ?? {};
    const inner = (n.SortBy as Json | undefined)?.node ?? node;
    const c = (inner as Json | undefined)?.A_Const as Json | undefined;
    const position = (c?.ival as Json | undefined)?.ival;
    if (typeof position === 'number' && outputs[position - 1]) {
      a.f.predicate(outputs[position - 1]!.sources);
      return;
    }
    const ref = (inner as Json | undefined)?.ColumnRef as Json | undefined;
    const fields = arr(ref?.fields);
    const named = fields.length === 1 ? outputs.filter((o) => o.name === str(fields[0])) : [];
    if (named.length > 0) {
      a.f.predicate(union(named));
      // The same name may also be an input column; count it too, unless it does not resolve.
      const input = union(resolveColumnRef(fields, { ...scope, outputs: undefined }));
      input.delete(UNATTRIBUTED);
      a.f.predicate(input);
      return;
    }
    a.f.predicate(expr(node, scope, a));
  };
  for (const n of arr(body.sortClause)) byOutput(n);
  for (const n of arr(body.groupClause)) byOutput(n);
  for (const n of arr(body.distinctClause)) if (nodeType(n) !== undefined) byOutput(n);
  a.f.predicate(expr(body.limitCount, scope, a));
  a.f.predicate(expr(body.limitOffset, scope, a));
}

export function withClause(a: Analyzer, w: Json, outer: Scope | null): CteEnv | null {
  let env = outer?.ctes ?? null;
  for (const c of arr(w.ctes)) {
    const cte = (c.CommonTableExpr ?? {}) as Json;
    const name = cte.ctename as string;
    const names = arr(cte.aliascolnames).map(str);
    const run = (self: CteEnv | null): Query => {
      const scope: Scope = { entries: [], star: [], parent: outer, ctes: self ?? env };
      const q = cte.ctequery as Json;
      const r = q.SelectStmt ? analyzeSelect(a, q, scope) : a.dml(q, scope);
      return { outputs: renamed(r.outputs, names), exact: r.exact };
    };
    let result: Query;
    if (w.recursive) {
      // A recursive CTE reads itself: iterate until its columns' sources stop growing.
      let self: CteEnv = { name, columns: [], exact: false, parent: env };
      result = run(self);
      for (let i = 0; i < 8; i++) {
        self = { name, columns: result.outputs, exact: result.exact, parent: env };
        const next = run(self);
        const grew = next.outputs.some((o, j) => o.sources.size !== (result.outputs[j]?.sources.size ?? -1));
        result = next;
        if (!grew) break;
      }
    } else {
      result = run(null);
    }
    env = { name, columns: result.outputs, exact: result.exact, parent: env };
  }
  return env;
}

export function fromClause(a: Analyzer, items: Json[], base: Scope): Scope {
  const scope: Scope = { ...base, entries: [], star: [] };
  for (const item of items) {
    // LATERAL items see the items before them; seeing them always is harmless (only more sources).
    const fi = fromItem(a, item, scope);
    scope.entries.push(...fi.entries);
    scope.star.push(...fi.star);
  }
  return scope;
}

function aliasOf(node: Json): { name: string | null; colnames: string[] } {
  const al = node.alias as Json | undefined;
  return { name: (al?.aliasname as string | undefined) ?? null, colnames: arr(al?.colnames).map(str) };
}

function entryItem(alias: string | null, schema: string | null, columns: OutCol[], exact: boolean, extra: Set<Source>): FromItem {
  const entry: RangeEntry = { alias, schema, columns, exact, extra };
  const star = exact ? columns : [...columns, { name: '*', sources: new Set(extra), direct: null }];
  return { entries: [entry], star };
}

function fromItem(a: Analyzer, node: Json, scope: Scope): FromItem {
  const type = nodeType(node);
  const b = (type ? node[type] : node) as Json;
  switch (type) {
    case 'RangeVar':
      return rangeVar(a, b, scope);
    case 'RangeSubselect': {
      const q = analyzeSelect(a, (b.subquery ?? {}) as Json, scope);
      const al = aliasOf(b);
      return entryItem(al.name, null, renamed(q.outputs, al.colnames), q.exact, q.exact ? new Set() : union(q.outputs));
    }
    case 'RangeFunction': {
      const sources = new Set<Source>();
      const defs: string[] = [];
      for (const f of arr(b.functions)) {
        const [call, coldefs] = arr((f.List as Json | undefined)?.items);
        for (const x of expr(call, scope, a)) sources.add(x);
        for (const d of arr(coldefs)) defs.push(((d.ColumnDef as Json | undefined)?.colname as string | undefined) ?? '');
      }
      for (const d of arr(b.coldeflist)) defs.push(((d.ColumnDef as Json | undefined)?.colname as string | undefined) ?? '');
      const al = aliasOf(b);
      const names = defs.length > 0 ? defs : al.colnames.length > 0 ? al.colnames : [al.name ?? '?column?'];
      const cols = names.map((n) => ({ name: n, sources: new Set(sources), direct: null }));
      // Only a column definition list fixes the width; a function may return any number of columns.
      return entryItem(al.name, null, cols, defs.length > 0 && !b.ordinality, sources);
    }
    case 'JoinExpr':
      return join(a, b, scope);
    case 'RangeTableSample': {
      const inner = fromItem(a, (b.relation ?? {}) as Json, scope);
      a.f.predicate(expr([b.args, b.repeatable], scope, a));
      return inner;
    }
    default: {
      // XMLTABLE, JSON_TABLE and anything newer: its columns carry whatever its expressions read.
      const sources = expr(b, scope, a);
      const al = aliasOf(b);
      return entryItem(al.name, null, [], false, sources.size > 0 ? sources : new Set([UNATTRIBUTED]));
    }
  }
}

function rangeVar(a: Analyzer, b: Json, scope: Scope): FromItem {
  const schema = (b.schemaname as string | undefined) ?? null;
  const name = b.relname as string;
  const al = aliasOf(b);
  const cte = schema === null ? findCte(scope, name) : null;
  if (cte) return entryItem(al.name ?? name, null, renamed(cte.columns, al.colnames), cte.exact, cte.exact ? new Set() : union(cte.columns));
  const rels = a.cat.resolve(schema, name, a.searchPath);
  const qualifiedAlias = al.name ?? name;
  const entrySchema = al.name ? null : schema;
  if (rels.length === 0) {
    // Unknown to the catalog (created in the client's open transaction, or not there at all).
    return entryItem(qualifiedAlias, entrySchema, [], false, new Set([`?${schema ?? ''}.${name}.*`]));
  }
  const perRel = rels.map((r) => relationColumns(a, r));
  if (perRel.length === 1) return entryItem(qualifiedAlias, entrySchema ?? (al.name ? null : rels[0]!.schema), renamed(perRel[0]!, al.colnames), true, new Set());
  // Ambiguous (a temporary table may shadow it): columns by name across candidates, width unknown.
  const byName = new Map<string, OutCol>();
  for (const cols of perRel) for (const c of cols) {
    const seen = byName.get(c.name);
    if (seen) { for (const x of c.sources) seen.sources.add(x); seen.direct = null; }
    else byName.set(c.name, { name: c.name, sources: new Set(c.sources), direct: c.direct });
  }
  const all = [...byName.values()];
  return entryItem(qualifiedAlias, entrySchema, all, false, union(all));
}

/** A relation's columns as base columns; a user view's columns as the base columns its definition reads. */
export function relationColumns(a: { cat: CatalogSnapshot; f: Findings }, rel: CatalogRelation): OutCol[] {
  if (STATISTICS_RELATIONS.has(`${rel.schema}.${rel.name}`)) a.f.opaque.add(`${rel.schema}.${rel.name} holds sampled column values`);
  if (rel.viewDef === null) return rel.columns.map((c) => ({ name: c.name, sources: new Set([colKey(rel.oid, c.attnum)]), direct: colKey(rel.oid, c.attnum) }));
  const view = viewColumns(a.cat, rel);
  for (const fn of view.userFunctions) a.f.userFunctions.add(fn);
  for (const why of view.opaque) a.f.opaque.add(why);
  return rel.columns.map((c, i) => ({ name: c.name, sources: new Set(view.columns[i]?.sources ?? view.fallback), direct: view.columns[i]?.direct ?? null }));
}

interface ViewTaint {
  columns: { sources: Set<Source>; direct: ColKey | null }[];
  fallback: Set<Source>;
  userFunctions: Set<string>;
  opaque: Set<string>;
}

/** The taint of each column of a view, from its definition (schema-qualified by the catalog load). */
export function viewColumns(cat: CatalogSnapshot, rel: CatalogRelation): ViewTaint {
  const key = `view:${rel.oid}`;
  const memo = cat.memo.get(key) as ViewTaint | 'busy' | undefined;
  if (memo === 'busy') return { columns: [], fallback: new Set([UNATTRIBUTED]), userFunctions: new Set(), opaque: new Set() };
  if (memo) return memo;
  cat.memo.set(key, 'busy');
  const f = new Findings();
  let result: ViewTaint;
  const parsed = parseChecked(rel.viewDef ?? '');
  const stmt = parsed.ok ? (parsed.tree.stmts?.[0]?.stmt as Json | undefined) : undefined;
  if (!stmt) {
    result = { columns: [], fallback: new Set([UNATTRIBUTED]), userFunctions: f.userFunctions, opaque: f.opaque };
  } else {
    const a: Analyzer = {
      cat, searchPath: ['pg_catalog'], f,
      select: (s, o) => analyzeSelect(a, s, o),
      dml: () => ({ outputs: [], exact: false }),
    };
    const q = analyzeSelect(a, stmt, null);
    const columns = q.exact && q.outputs.length === rel.columns.length ? q.outputs.map((o) => ({ sources: o.sources, direct: o.direct })) : [];
    result = { columns, fallback: union(q.outputs), userFunctions: f.userFunctions, opaque: f.opaque };
    if (columns.length === 0) result.fallback.add(UNATTRIBUTED);
  }
  cat.memo.set(key, result);
  return result;
}

function join(a: Analyzer, b: Json, scope: Scope): FromItem {
  const left = fromItem(a, (b.larg ?? {}) as Json, scope);
  const right = fromItem(a, (b.rarg ?? {}) as Json, scope);
  const inner: Scope = { ...scope, entries: [...scope.entries, ...left.entries, ...right.entries], star: [...left.star, ...right.star] };
  a.f.predicate(expr(b.quals, inner, a));
  let using = arr(b.usingClause).map(str);
  if (b.isNatural) {
    const rightNames = new Set(right.star.map((c) => c.name));
    using = left.star.filter((c) => c.name !== '*' && rightNames.has(c.name)).map((c) => c.name);
    // NATURAL over a side of unknown width may join on columns not listed: every column is a join column.
    if (left.star.some((c) => c.name === '*') || right.star.some((c) => c.name === '*')) {
      a.f.predicate(union([...left.star, ...right.star]));
    }
  }
  let star = [...left.star, ...right.star];
  const entries = [...left.entries, ...right.entries];
  if (using.length > 0) {
    const merged = using.map((n) => {
      const cols = star.filter((c) => c.name === n || c.name === '*');
      const sources = union(cols);
      a.f.predicate(sources);
      return { name: n, sources, direct: null };
    });
    const names = new Set(using);
    star = [...merged, ...star.filter((c) => !names.has(c.name))];
    entries.unshift({ alias: null, schema: null, columns: merged, exact: true, extra: new Set() });
  }
  const al = aliasOf(b);
  if (al.name) {
    const cols = renamed(star, al.colnames);
    const exact = !cols.some((c) => c.name === '*');
    const j: RangeEntry = { alias: al.name, schema: null, columns: cols.filter((c) => c.name !== '*'), exact, extra: union(cols) };
    return { entries: [j], star: cols };
  }
  return { entries, star };
}

export { wholeRow };

/** `col::type` (casts of casts too): PostgreSQL drops a cast to the column's own type, keeping its provenance. */
function castOfColumn(node: Json | undefined): boolean {
  let n = node;
  while (n?.TypeCast) n = (n.TypeCast as Json).arg as Json | undefined;
  return n !== node && n?.ColumnRef !== undefined;
}
