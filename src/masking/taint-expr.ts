/**
 * Taint through expressions: which base columns an expression's value may carry, and which uses let a value be
 * inferred (comparisons, conditions, function arguments), echoed in an error (casts that parse text), or
 * stored/sent elsewhere (pg_notify, set_config). Shapes are libpg_query's JSON (see src/sql/walk.ts).
 */
import { DYNAMIC_SQL_FUNCTIONS } from '../sql/node-table.js';
import { nodeType, type Json } from '../sql/walk.js';
import type { CatalogSnapshot, ColKey, PathSpec } from './catalog-snapshot.js';

/** A source is a base column (ColKey), `?schema.table.column` of a relation the catalog does not know, or `?`. */
export type Source = string;
/** Something Sluice could not attribute: masked whenever any masking rule is in force. */
export const UNATTRIBUTED: Source = '?';

export interface OutCol {
  name: string;
  sources: Set<Source>;
  /** The base column when the value is exactly that column's (a plain reference through aliases). */
  direct: ColKey | null;
  /**
   * Certainly computed: PostgreSQL reports no provenance for it (table OID 0), so a rule's `derived` applies to its
   * sources. Unset for column references and casts of them (a same-type cast is dropped and keeps provenance):
   * those are judged when the RowDescription arrives.
   */
  computed?: true;
}

/** What the whole statement does with sources; filled while walking. */
export class Findings {
  readonly all = new Set<Source>();
  readonly predicates = new Set<Source>();
  readonly echoes = new Set<Source>();
  readonly sinks = new Map<Source, string>();
  readonly userFunctions = new Set<string>();
  readonly opaque = new Set<string>();

  predicate(s: ReadonlySet<Source>): void {
    for (const x of s) this.predicates.add(x);
  }
  sink(s: ReadonlySet<Source>, why: string, except?: ColKey | null): void {
    for (const x of s) if (x !== except && !this.sinks.has(x)) this.sinks.set(x, why);
  }
}

/** A FROM item as expressions see it. */
export interface RangeEntry {
  /** The name that qualifies its columns (alias, or the relation / CTE name); null for an unaliased join. */
  alias: string | null;
  /** The relation's schema when named without alias (for schema.table.column references). */
  schema: string | null;
  columns: OutCol[];
  /** False when its columns are not all known (an unknown relation, a function returning record). */
  exact: boolean;
  /** Sources of columns not listed (inexact entries). */
  extra: Set<Source>;
}

export interface Scope {
  entries: RangeEntry[];
  /** What `*` expands to, in order (a USING join shows its merged columns once). */
  star: OutCol[];
  parent: Scope | null;
  /** CTEs visible here (innermost first), with their columns. */
  ctes: CteEnv | null;
  /** The SELECT's outputs, for ORDER BY / GROUP BY by alias or position. */
  outputs?: OutCol[];
}

export interface CteEnv {
  name: string;
  columns: OutCol[];
  exact: boolean;
  parent: CteEnv | null;
}

/** The analysis a subquery needs; provided by taint-select.ts (kept there to avoid an import cycle). */
export interface Analyzer {
  cat: CatalogSnapshot;
  searchPath: PathSpec;
  f: Findings;
  select(stmt: Json, outer: Scope | null): { outputs: OutCol[]; exact: boolean };
  /** A data-modifying statement inside WITH: its RETURNING columns. */
  dml(stmt: Json, outer: Scope | null): { outputs: OutCol[]; exact: boolean };
}

const TEXT_TYPES = new Set(['text', 'varchar', 'bpchar', 'char', 'name', 'citext', 'unknown']);
/** Operators whose result cannot raise on their input's value; everything else (comparisons, arithmetic) can reveal it. */
const NEUTRAL_OPERATORS = new Set(['||']);
/** Functions that neither fail on any input value nor compare it: their arguments are not a predicate use. */
const TOTAL_FUNCTIONS = new Set([
  'upper', 'lower', 'initcap', 'btrim', 'ltrim', 'rtrim', 'concat', 'concat_ws', 'to_json', 'to_jsonb', 'row_to_json',
  'json_build_object', 'jsonb_build_object', 'json_build_array', 'jsonb_build_array', 'json_agg', 'jsonb_agg',
  'json_object_agg', 'jsonb_object_agg', 'array_agg', 'string_agg', 'array_to_json', 'array_to_string', 'md5',
  'length', 'char_length', 'character_length', 'octet_length', 'substr', 'substring', 'left', 'right', 'replace',
  'reverse', 'count', 'quote_literal', 'quote_nullable', 'quote_ident', 'unnest', 'json_each', 'jsonb_each',
  'json_each_text', 'jsonb_each_text', 'row_number', 'rank', 'dense_rank', 'first_value', 'last_value', 'lag', 'lead',
  'nth_value', 'to_char', 'text', 'varchar', 'bpchar', 'now', 'current_timestamp', 'coalesce', 'format',
]);
/** Functions that store or send their argument somewhere the mask does not reach. */
const SINK_FUNCTIONS = new Set([
  'pg_notify', 'set_config', 'lo_from_bytea', 'lo_put', 'lo_import', 'lo_export', 'pg_logical_emit_message', 'pg_file_write',
]);
/** Functions that parse text and quote the offending input in their error. */
const ECHO_FUNCTIONS = new Set([
  'to_number', 'to_date', 'to_timestamp', 'int2', 'int4', 'int8', 'float4', 'float8', 'numeric', 'date', 'timestamp',
  'timestamptz', 'time', 'timetz', 'interval', 'inet', 'cidr', 'uuid', 'bool', 'json', 'jsonb', 'xml', 'money',
  'macaddr', 'macaddr8', 'point', 'regclass', 'regproc', 'regtype', 'jsonb_in', 'json_in', 'xmlparse',
]);

export const str = (n: unknown): string => ((n as Json | undefined)?.String as Json | undefined)?.sval as string ?? '';
export const arr = (v: unknown): Json[] => (Array.isArray(v) ? (v as Json[]) : []);

/** Resolves a ColumnRef (or `a.*`) to the columns it denotes. */
export function resolveColumnRef(fields: Json[], scope: Scope | null): OutCol[] {
  const names = fields.map((f) => (f.A_Star ? '*' : str(f)));
  const last = names[names.length - 1]!;
  if (names.length === 1) {
    if (last === '*') return scope ? scope.star : [];
    for (let s = scope; s; s = s.parent) {
      const hits = s.entries.flatMap((e) => byName(e, last));
      if (hits.length > 0) return hits.length === 1 ? hits : [merge(last, hits)];
      // No column of that name: a whole-row reference to a FROM item (`SELECT row_to_json(u) FROM users u`).
      const whole = s.entries.find((e) => e.alias === last);
      if (whole) return [wholeRow(whole)];
      if (s.entries.some((e) => !e.exact)) return [inexact(last, s.entries)];
    }
    return [{ name: last, sources: new Set([UNATTRIBUTED]), direct: null }];
  }
  // a.col, a.*, schema.a.col, db.schema.a.col
  const rel = names[names.length - 2]!;
  const schema = names.length >= 3 ? names[names.length - 3]! : null;
  for (let s = scope; s; s = s.parent) {
    const entry = s.entries.find((e) => e.alias === rel && (schema === null || e.schema === schema));
    if (!entry) continue;
    if (last === '*') return entry.columns.length > 0 || entry.exact ? [...entry.columns, ...(entry.exact ? [] : [inexact('*', [entry])])] : [inexact('*', [entry])];
    const hits = byName(entry, last);
    if (hits.length > 0) return hits;
    if (!entry.exact) return [inexact(last, [entry])];
    // (u).field-style or composite column access falls here only on a typo; keep it attributable to the row.
    return [wholeRow(entry)];
  }
  return [{ name: last, sources: new Set([UNATTRIBUTED]), direct: null }];
}

function byName(e: RangeEntry, name: string): OutCol[] {
  return e.columns.filter((c) => c.name === name);
}

function merge(name: string, cols: OutCol[]): OutCol {
  const sources = new Set<Source>();
  for (const c of cols) for (const x of c.sources) sources.add(x);
  return { name, sources, direct: null };
}

export function wholeRow(e: RangeEntry): OutCol {
  const all = merge(e.alias ?? '?column?', e.columns);
  for (const x of e.extra) all.sources.add(x);
  return all;
}

function inexact(name: string, entries: RangeEntry[]): OutCol {
  const sources = new Set<Source>();
  for (const e of entries) if (!e.exact) for (const x of e.extra) sources.add(x);
  return { name, sources, direct: null };
}

export function starOf(entries: RangeEntry[]): OutCol[] {
  const out: OutCol[] = [];
  for (const e of entries) {
    out.push(...e.columns);
    if (!e.exact) out.push(inexact('*', [e]));
  }
  return out;
}

function typeNameOf(typeName: Json | undefined): string {
  const names = arr(typeName?.names).map(str);
  return (names[names.length - 1] ?? '').toLowerCase();
}

function funcNames(body: Json): string[] {
  return arr(body.funcname).map(str);
}

/** True when a call may run user code: a function outside pg_catalog, or a name the catalog does not know. */
export function isUserFunction(names: string[], cat: CatalogSnapshot): boolean {
  const name = names[names.length - 1] ?? '';
  if (names.length >= 2) return names[names.length - 2] !== 'pg_catalog';
  // Overload resolution can pick a same-named function in another schema over pg_catalog's.
  return cat.userFunctions.has(name) || !cat.catalogFunctions.has(name);
}

/** The sources of an expression's value; records predicate, echo and sink uses in `a.f` on the way. */
export function expr(node: unknown, scope: Scope | null, a: Analyzer): Set<Source> {
  const out = new Set<Source>();
  visit(node, scope, a, out);
  for (const x of out) a.f.all.add(x);
  return out;
}

function addAll(into: Set<Source>, from: Iterable<Source>): void {
  for (const x of from) into.add(x);
}

function visit(node: unknown, scope: Scope | null, a: Analyzer, out: Set<Source>): void {
  if (node === null || typeof node !== 'object') return;
  if (Array.isArray(node)) {
    for (const n of node) visit(n, scope, a, out);
    return;
  }
  const o = node as Json;
  const type = nodeType(o);
  if (type === undefined) {
    for (const k in o) visit(o[k], scope, a, out);
    return;
  }
  const b = o[type] as Json;
  switch (type) {
    case 'ColumnRef':
      for (const c of resolveColumnRef(arr(b.fields), scope)) addAll(out, c.sources);
      return;
    case 'A_Const': case 'ParamRef': case 'SQLValueFunction': case 'String': case 'Integer': case 'Float':
      return;
    case 'TypeCast': {
      const s = expr(b.arg, scope, a);
      if (s.size > 0 && !TEXT_TYPES.has(typeNameOf(b.typeName as Json))) addAll(a.f.echoes, s);
      addAll(out, s);
      return;
    }
    case 'A_Expr': {
      const s = new Set<Source>();
      visit(b.lexpr, scope, a, s);
      visit(b.rexpr, scope, a, s);
      const op = arr(b.name).map(str);
      if (op.length > 1 || (op[0] && a.cat.userOperators.has(op[0]))) a.f.userFunctions.add(`operator ${op.join('.')}`);
      if (!(b.kind === 'AEXPR_OP' && op.length === 1 && NEUTRAL_OPERATORS.has(op[0]!))) a.f.predicate(s);
      addAll(out, s);
      return;
    }
    case 'NullTest': case 'BooleanTest': {
      const s = expr(b.arg, scope, a);
      a.f.predicate(s);
      addAll(out, s);
      return;
    }
    case 'CaseExpr': {
      const conds = expr(b.arg, scope, a);
      for (const w of arr(b.args)) {
        const cw = (w.CaseWhen ?? {}) as Json;
        addAll(conds, expr(cw.expr, scope, a));
        visit(cw.result, scope, a, out);
      }
      visit(b.defresult, scope, a, out);
      a.f.predicate(conds);
      // The branch taken reveals the condition: the result carries the condition's sources too.
      addAll(out, conds);
      return;
    }
    case 'FuncCall':
      return call(b, scope, a, out);
    case 'SubLink': {
      const sub = a.select((b.subselect as Json) ?? {}, scope);
      const s = new Set<Source>();
      for (const c of sub.outputs) addAll(s, c.sources);
      if (b.subLinkType === 'EXISTS_SUBLINK') return; // its conditions were recorded inside
      if (b.testexpr !== undefined) {
        visit(b.testexpr, scope, a, s);
        a.f.predicate(s);
      }
      addAll(out, s);
      return;
    }
    case 'SelectStmt': {
      for (const c of a.select(o, scope).outputs) addAll(out, c.sources);
      return;
    }
    case 'XmlExpr':
      if (b.op === 'IS_XMLPARSE') {
        const s = expr(b.args, scope, a);
        addAll(a.f.echoes, s);
        addAll(out, s);
        return;
      }
      for (const k in b) visit(b[k], scope, a, out);
      return;
    default:
      // Every other node (RowExpr, CoalesceExpr, A_Indirection, BoolExpr, ...) carries its children's sources.
      for (const k in b) visit(b[k], scope, a, out);
  }
}

function call(b: Json, scope: Scope | null, a: Analyzer, out: Set<Source>): void {
  const names = funcNames(b);
  const name = (names[names.length - 1] ?? '').toLowerCase();
  const args = new Set<Source>();
  visit(b.args, scope, a, args);
  visit(b.agg_order, scope, a, args);
  if (b.agg_filter !== undefined) a.f.predicate(expr(b.agg_filter, scope, a));
  const over = b.over as Json | undefined;
  if (over) {
    a.f.predicate(expr(over.partitionClause, scope, a));
    a.f.predicate(expr(over.orderClause, scope, a));
  }
  if (isUserFunction(names, a.cat)) {
    a.f.userFunctions.add(names.join('.'));
    // A user function can read any table: its result is not attributable.
    out.add(UNATTRIBUTED);
  }
  if (DYNAMIC_SQL_FUNCTIONS.has(name)) a.f.opaque.add(`${name}() runs SQL text Sluice cannot see`);
  if (SINK_FUNCTIONS.has(name)) a.f.sink(args, `${name}()`);
  if (ECHO_FUNCTIONS.has(name)) addAll(a.f.echoes, args);
  if (!TOTAL_FUNCTIONS.has(name)) a.f.predicate(args);
  // count() reveals how many values there are, not what they are.
  if (name !== 'count') addAll(out, args);
}
