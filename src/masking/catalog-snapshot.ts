/**
 * One loaded view of a target's catalog: relations and their columns by OID and by name, inheritance (partitions
 * included) both ways, view definitions, and which function and operator names exist outside pg_catalog.
 * Immutable once built, so a statement is analysed and planned against one consistent version.
 */

/** A base column: `${tableOid}.${attnum}`. */
export type ColKey = string;

export const colKey = (oid: number, attnum: number): ColKey => `${oid}.${attnum}`;

export interface QualifiedColumn {
  schema: string;
  table: string;
  column: string;
}

/**
 * pg_class.relkind of the relations loaded: table, partitioned table, view, materialized view, foreign table,
 * sequence (selectable, and it takes a name on search_path like a table).
 */
export type RelKind = 'r' | 'p' | 'v' | 'm' | 'f' | 'S';

export interface CatalogRelation {
  oid: number;
  schema: string;
  name: string;
  kind: RelKind;
  /** Live columns in attnum order (what `*` expands to). */
  columns: { attnum: number; name: string }[];
  byName: Map<string, number>;
  parents: number[];
  children: number[];
  /** pg_get_viewdef() of a user view or materialized view (schema-qualified), else null. */
  viewDef: string | null;
}

export interface CatalogRows {
  /** oid, schema, name, relkind, attnum (null for none), attname, viewdef */
  relations: (string | null)[][];
  /** child oid, parent oid */
  inherits: (string | null)[][];
  /** name, in pg_catalog ('t'/'f') */
  functions: (string | null)[][];
  /** names of operators outside pg_catalog */
  operators: (string | null)[][];
  /** OIDs of text-like types with installation-specific OIDs (citext) */
  textTypes: (string | null)[][];
}

/** Relations PostgreSQL fills with sampled column values (most common values, histograms): a value oracle. */
export const STATISTICS_RELATIONS: ReadonlySet<string> = new Set([
  'pg_catalog.pg_statistic', 'pg_catalog.pg_stats', 'pg_catalog.pg_statistic_ext_data',
  'pg_catalog.pg_stats_ext', 'pg_catalog.pg_stats_ext_exprs',
]);

export class CatalogSnapshot {
  readonly relations = new Map<number, CatalogRelation>();
  private readonly byQualifiedName = new Map<string, number>();
  /** Relation names per schema, for search_path resolution. */
  readonly schemas = new Set<string>();
  /** Function names defined outside pg_catalog (any schema): a call to one may run user code. */
  readonly userFunctions = new Set<string>();
  readonly catalogFunctions = new Set<string>();
  readonly userOperators = new Set<string>();
  readonly extraTextTypes = new Set<number>();
  /** Memo for derived facts computed from this version (view column taint); owned by their modules. */
  readonly memo = new Map<string, unknown>();

  constructor(
    rows: CatalogRows,
    /** Increases with every load; a plan or analysis is only valid for the version it was made with. */
    readonly version: number,
    readonly loadedAt: number = Date.now(),
    /** The target role's default search_path (SHOW search_path on a fresh session), unparsed; null when not loaded. */
    readonly defaultSearchPath: string | null = null,
    /** performance.now() when the load began: what committed before it is in this snapshot. */
    readonly startedAt: number = -Infinity,
  ) {
    for (const r of rows.relations) {
      const oid = Number(r[0]);
      let rel = this.relations.get(oid);
      if (!rel) {
        rel = {
          oid, schema: r[1]!, name: r[2]!, kind: r[3] as RelKind, columns: [], byName: new Map(), parents: [], children: [],
          viewDef: r[6] ?? null,
        };
        this.relations.set(oid, rel);
        this.byQualifiedName.set(`${rel.schema}\u0000${rel.name}`, oid);
        this.schemas.add(rel.schema);
      }
      if (r[4] !== null && r[5] !== null) {
        const attnum = Number(r[4]);
        rel.columns.push({ attnum, name: r[5]! });
        rel.byName.set(r[5]!, attnum);
      }
    }
    for (const r of rows.inherits) {
      const child = this.relations.get(Number(r[0]));
      const parent = this.relations.get(Number(r[1]));
      if (child && parent) {
        child.parents.push(parent.oid);
        parent.children.push(child.oid);
      }
    }
    for (const r of rows.functions) (r[1] === 't' ? this.catalogFunctions : this.userFunctions).add(r[0]!);
    for (const r of rows.operators) this.userOperators.add(r[0]!);
    for (const r of rows.textTypes) this.extraTextTypes.add(Number(r[0]));
  }

  byName(schema: string, name: string): CatalogRelation | undefined {
    const oid = this.byQualifiedName.get(`${schema}\u0000${name}`);
    return oid === undefined ? undefined : this.relations.get(oid);
  }

  /**
   * The relations an unqualified name may denote, as the server resolves it: temporary tables first (any
   * session's: which temp schema is the client's is unknown here, so every one counts), then pg_catalog unless
   * search_path places it, then search_path in order. More than one result means "one of these".
   */
  resolve(schema: string | null, name: string, searchPath: PathSpec): CatalogRelation[] {
    if (schema !== null) {
      if (schema === 'pg_temp') return this.tempRelations(name);
      const r = this.byName(schema, name);
      return r ? [r] : [];
    }
    if (searchPath === null) return this.everyNamed(name);
    if (!isPath(searchPath)) {
      // One of several paths: the union of what each resolves to.
      const out = new Map<number, CatalogRelation>();
      for (const p of searchPath.anyOf) for (const r of this.resolve(null, name, p)) out.set(r.oid, r);
      return [...out.values()];
    }
    const out = this.tempRelations(name);
    const path = searchPath.includes('pg_catalog') ? searchPath : ['pg_catalog', ...searchPath];
    for (const s of path) {
      const r = this.byName(s, name);
      if (r) {
        out.push(r);
        break;
      }
    }
    return out;
  }

  /** Every relation called `name`, in any schema: what an unqualified name may denote when the path is unknown. */
  private everyNamed(name: string): CatalogRelation[] {
    let index = this.memo.get('catalog:byBareName') as Map<string, CatalogRelation[]> | undefined;
    if (!index) {
      index = new Map();
      for (const r of this.relations.values()) {
        const list = index.get(r.name);
        if (list) list.push(r);
        else index.set(r.name, [r]);
      }
      this.memo.set('catalog:byBareName', index);
    }
    return [...(index.get(name) ?? [])];
  }

  private tempRelations(name: string): CatalogRelation[] {
    const out: CatalogRelation[] = [];
    for (const s of this.schemas) {
      if (!s.startsWith('pg_temp_')) continue;
      const r = this.byName(s, name);
      if (r) out.push(r);
    }
    return out;
  }

  /** schema.table.column of a base column, or null when the OID or attnum is unknown. */
  nameOf(oid: number, attnum: number): QualifiedColumn | null {
    const rel = this.relations.get(oid);
    const col = rel?.columns.find((c) => c.attnum === attnum);
    return rel && col ? { schema: rel.schema, table: rel.name, column: col.name } : null;
  }

  /**
   * Every name a rule may use for a base column: its own, and the same-named column of each ancestor and each
   * descendant (a parent's rows include the children's, and a child's rows are the parent's).
   */
  namesOf(oid: number, attnum: number): QualifiedColumn[] {
    const self = this.nameOf(oid, attnum);
    if (!self) return [];
    const out = [self];
    const seen = new Set([oid]);
    const visit = (start: number, edge: 'parents' | 'children'): void => {
      const queue = [...(this.relations.get(start)?.[edge] ?? [])];
      while (queue.length > 0) {
        const id = queue.shift()!;
        if (seen.has(id)) continue;
        seen.add(id);
        const rel = this.relations.get(id);
        if (!rel?.byName.has(self.column)) continue;
        out.push({ schema: rel.schema, table: rel.name, column: self.column });
        queue.push(...rel[edge]);
      }
    };
    visit(oid, 'parents');
    visit(oid, 'children');
    return out;
  }
}

/**
 * The session's search_path as Sluice knows it: one path; any of several (a change whose outcome is not known
 * yet); or null, unknown (a value set at run time): then an unqualified name may be any relation of that name.
 */
export type PathSpec = readonly string[] | { readonly anyOf: readonly (readonly string[])[] } | null;

function isPath(p: NonNullable<PathSpec>): p is readonly string[] {
  return Array.isArray(p);
}

/** Parses search_path as the server does: comma-separated, double-quoted parts keep case and commas. */
export function parseSearchPath(value: string, user: string): string[] {
  const out: string[] = [];
  const re = /\s*(?:"((?:[^"]|"")*)"|([^,\s]+))\s*(?:,|$)/gy;
  let m: RegExpExecArray | null;
  while (re.lastIndex < value.length && (m = re.exec(value)) !== null) {
    const part = m[1] !== undefined ? m[1].replaceAll('""', '"') : m[2]!.toLowerCase();
    // "$user" (quoted or not) names the session user's own schema.
    out.push(part === '$user' ? user : part);
    if (m[0] === '') break;
  }
  return out;
}

export const DEFAULT_SEARCH_PATH = '"$user", public';
