/**
 * Unqualified relation names resolved as the server resolves them, for policy (issue 3: "relations read and
 * written, schema-qualified, resolved as the server would"). PostgreSQL takes the first schema on the session's
 * search_path (pg_catalog implicitly first, temporary tables before everything) that holds a relation of that
 * name. Sluice follows the path (mask-path.ts) and reads the target's catalog (masking/catalog.ts), and qualifies a
 * name only when it can be sure; otherwise the name stays unqualified and policy matches it conservatively
 * (evaluate.ts: allows need `public`, denials and reviews match it under any schema).
 *
 * "Sure" needs a catalog that is not behind the server. Relations appear and disappear through DDL, and through
 * user code that may run DDL (functions, procedures, DO). So while any session on the target has such a statement
 * allowed and its transaction not ended, and until a catalog load that began after it ended, every session on that
 * target matches names conservatively. A DROP in the client's own open transaction cannot make Sluice attribute a
 * name to a table the server no longer resolves it to.
 *
 * What Sluice does not see: DDL run outside Sluice (another client, a migration) is noticed at the next reload
 * (the timer, masking.catalogRefreshMs, 60 s by default), and DDL run by triggers of an ordinary INSERT/UPDATE.
 * Statements prepared earlier are decided again at Bind when the path or the catalog changed (statement-loop.ts),
 * because the server re-resolves their names then too.
 */
import { DEFAULT_SEARCH_PATH, type CatalogCache, type CatalogSnapshot, type PathSpec } from '../masking/index.js';
import type { ClassifiedStatement, RelationRef } from '../sql/types.js';
import { pathKey, SearchPathTracker } from './mask-path.js';

const IDLE = 0x49; // ReadyForQuery 'I'

/** What all sessions of one target share: the catalog and whether a catalog change may be in flight. */
export class TargetNames {
  /** Sessions with a statement that may change the catalog, its transaction not ended yet. */
  private pending = 0;
  /** performance.now() when the last such statement was allowed or its transaction ended. */
  private lastChange = -Infinity;
  /** Counts those events: a decision made before one may resolve differently after it. */
  changes = 0;

  constructor(readonly cache: CatalogCache) {}

  /** The snapshot to resolve names with, or null when it may be behind the server. */
  certain(): CatalogSnapshot | null {
    const snap = this.cache.current();
    return snap !== null && this.pending === 0 && snap.startedAt > this.lastChange ? snap : null;
  }

  begin(): void {
    this.pending++;
    this.touch();
  }

  end(): void {
    this.pending--;
    this.touch();
    // Reloaded now, so names are sure again soon; a load already running is repeated (CatalogCache.refresh).
    this.cache.invalidate();
  }

  private touch(): void {
    this.lastChange = performance.now();
    this.changes++;
  }
}

/** One session's view: its search_path and whether it has a catalog change of its own in flight. */
export class SessionNames {
  readonly path: SearchPathTracker;
  private dirty = false;
  private closed = false;
  /**
   * Qualified copies of relation lists, per snapshot and path. Keyed by the list itself: the classifier's cache
   * hands out one statement object per text (statements differing in literals get copies), but they share the
   * template's lists, so a workload of literal-varying queries hits here too.
   */
  private readonly memo = new WeakMap<readonly RelationRef[], { key: string; out: RelationRef[] }>();
  private scope = { path: '', changes: -1, version: -1, key: '' };

  constructor(
    private readonly target: TargetNames,
    /** The target's database role: "$user" on the path. */
    private readonly user: string,
    startupSearchPath: string | null,
  ) {
    this.path = new SearchPathTracker(user, startupSearchPath);
  }

  /**
   * Learns the role's default path (for a client that set none) from the catalog, loading it if needed. Returns
   * null when it is loaded already, else a promise that settles when the load ends or after `waitMs`, whichever
   * is first (it never rejects): the session's first statement waits for it, so that it is decided like the
   * next ones. A load that fails leaves names unqualified (conservative); the cache's timer tries again.
   */
  start(waitMs: number): Promise<void> | null {
    if (this.target.cache.current()) {
      this.learnDefault();
      return null;
    }
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, waitMs);
      timer.unref();
      this.target.cache.ready()
        .then(() => this.learnDefault(), () => undefined)
        .finally(() => {
          clearTimeout(timer);
          resolve();
        });
    });
  }

  /**
   * The role's default path, from a snapshot that is not behind the server (ALTER ROLE / DATABASE ... SET
   * search_path count as catalog changes): until there is one, the path stays unknown and names unqualified.
   */
  private learnDefault(): void {
    if (this.path.sessionDefault() !== null) return;
    const snap = this.target.certain();
    if (snap) this.path.setServerDefault(snap.defaultSearchPath ?? DEFAULT_SEARCH_PATH);
  }

  /**
   * Changes whenever a decision about names could come out differently: the path, a catalog change in flight or
   * ended, a new snapshot. A prepared statement decided under another key is decided again at Bind.
   */
  scopeKey(): string {
    const path = this.path.key();
    const changes = this.target.changes;
    const version = this.target.cache.current()?.version ?? 0;
    const m = this.scope;
    // Asked for every Parse and Bind of a statement with unqualified names: built only when a part changed.
    if (m.path !== path || m.changes !== changes || m.version !== version) {
      this.scope = { path, changes, version, key: `${path}\u0003${changes}\u0003${version}` };
    }
    return this.scope.key;
  }

  /**
   * `statements` with each unqualified relation qualified when Sluice is sure where the server finds it; the
   * same array when nothing changed. The path moves along the message (SET search_path; SELECT ... in one Query).
   */
  qualify(statements: readonly ClassifiedStatement[]): readonly ClassifiedStatement[] {
    const snap = this.dirty ? null : this.target.certain();
    if (snap === null) return statements;
    this.learnDefault();
    let p = this.path.current();
    let key = `${snap.version}\u0000${this.path.key()}`;
    let out: ClassifiedStatement[] | null = null;
    for (let i = 0; i < statements.length; i++) {
      const s = statements[i]!;
      const q = this.qualifyOne(s, p, snap, key);
      if (q !== s) out ??= statements.slice(0, i);
      out?.push(q);
      // DDL or user code earlier in the same message runs before the statements after it: for those, the catalog
      // (DROP TABLE app.orders; SELECT FROM orders) or the path (a function calling set_config) may have moved.
      if (i + 1 < statements.length && mayChangeCatalog(s, snap)) {
        if (out) out.push(...statements.slice(i + 1));
        return out ?? statements;
      }
      if (s.settings.length > 0) {
        p = SearchPathTracker.then(p, s, this.user, this.path.sessionDefault());
        key = `${snap.version}\u0000${pathKey(p)}`;
      }
    }
    return out ?? statements;
  }

  private qualifyOne(s: ClassifiedStatement, p: PathSpec, snap: CatalogSnapshot, key: string): ClassifiedStatement {
    if (!mentionsUnqualified(s)) return s;
    const out: ClassifiedStatement = { ...s, reads: this.refs(s.reads, p, snap, key), writes: this.refs(s.writes, p, snap, key) };
    // PREPARE and DECLARE are decided on the statement they wrap, resolved with the path in force now (EXECUTE is
    // decided again on what it runs, with the path in force then).
    if (s.prepare) out.prepare = { ...s.prepare, statement: this.qualifyOne(s.prepare.statement, p, snap, key) };
    if (s.declare) out.declare = { ...s.declare, statement: this.qualifyOne(s.declare.statement, p, snap, key) };
    return out;
  }

  private refs(list: RelationRef[], p: PathSpec, snap: CatalogSnapshot, key: string): RelationRef[] {
    if (!hasUnqualified(list)) return list;
    const hit = this.memo.get(list);
    if (hit?.key === key) return hit.out;
    const out = dedupe(list.map((r) => {
      if (r.schema !== null) return r;
      const schema = resolveSchema(r.name, p, snap);
      return schema === null ? r : { schema, name: r.name };
    }));
    this.memo.set(list, { key, out });
    return out;
  }

  /** A message was allowed: follow its search_path changes, and note a catalog change it may make. */
  onAllowed(effective: readonly ClassifiedStatement[], topLevel: readonly ClassifiedStatement[], simpleQuery: boolean): void {
    const snap = this.target.cache.current();
    const userCode = effective.some((s) => runsUserCode(s, snap));
    this.path.onAllowed(topLevel, simpleQuery, userCode);
    if (this.dirty || !(userCode || effective.some(changesSchema))) return;
    this.dirty = true;
    this.target.begin();
  }

  onServerError(): void {
    this.path.onServerError();
  }

  /**
   * The server's ReadyForQuery. `quiet`: nothing else the client sent awaits an answer. A catalog change of this
   * session is over when its transaction is (status I) and nothing later is in flight.
   */
  onReady(status: number, quiet: boolean): void {
    this.path.onReady(status, quiet);
    if (this.dirty && status === IDLE && quiet) {
      this.dirty = false;
      this.target.end();
    }
  }

  /** The session ended: whatever it had in flight is over (committed or rolled back by the server). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.dirty) {
      this.dirty = false;
      this.target.end();
    }
  }
}

function hasUnqualified(refs: readonly RelationRef[]): boolean {
  for (const r of refs) if (r.schema === null) return true;
  return false;
}

/** Whether `s` (or the statement it wraps: PREPARE, DECLARE) names a relation without its schema. */
export function mentionsUnqualified(s: ClassifiedStatement): boolean {
  return hasUnqualified(s.reads) || hasUnqualified(s.writes) ||
    (s.prepare !== undefined && mentionsUnqualified(s.prepare.statement)) ||
    (s.declare !== undefined && mentionsUnqualified(s.declare.statement));
}

/** The schema the server finds `name` in under every path `p` may be; null when not sure (or not found). */
export function resolveSchema(name: string, p: PathSpec, snap: CatalogSnapshot): string | null {
  if (p === null) return null;
  const paths = Array.isArray(p) ? [p as readonly string[]] : (p as { anyOf: readonly (readonly string[])[] }).anyOf;
  let found: string | null = null;
  for (const path of paths) {
    const rels = snap.resolve(null, name, path);
    // None: a relation the catalog does not know (new, or a typo). Several, or a temporary one: a temporary table
    // of that name exists, maybe this session's, which the server would take first.
    if (rels.length !== 1 || rels[0]!.schema.startsWith('pg_temp_')) return null;
    const schema = rels[0]!.schema;
    if (found !== null && found !== schema) return null;
    found = schema;
  }
  return found;
}

/** Whether running `s` may create, drop or rename relations: DDL, or user code (runsUserCode). */
export function mayChangeCatalog(s: ClassifiedStatement, snap: CatalogSnapshot | null): boolean {
  return changesSchema(s) || runsUserCode(s, snap);
}

/** DDL, or a change of the search_path new sessions start with. */
function changesSchema(s: ClassifiedStatement): boolean {
  return s.class === 'ddl' || s.secondary?.includes('ddl') === true || DEFAULTS.has(s.kind);
}

/** Statements that change the search_path a new session starts with (the snapshot's defaultSearchPath). */
const DEFAULTS = new Set(['AlterRoleSetStmt', 'AlterDatabaseSetStmt', 'AlterRoleStmt', 'AlterSystemStmt']);

/**
 * Whether `s` runs code Sluice cannot see into, which may run DDL or set_config() itself: hidden SQL (DO, dynamic
 * SQL) or a function that is not built in (pg_catalog), or that the catalog does not know.
 */
export function runsUserCode(s: ClassifiedStatement, snap: CatalogSnapshot | null): boolean {
  if (s.hidden.length > 0) return true;
  for (const f of s.functions) {
    const name = f.slice(f.lastIndexOf('.') + 1);
    if (snap === null || snap.userFunctions.has(name) || !snap.catalogFunctions.has(name)) return true;
  }
  return false;
}

function dedupe(refs: RelationRef[]): RelationRef[] {
  if (refs.length < 2) return refs;
  const seen = new Set<string>();
  return refs.filter((r) => {
    const k = `${r.schema ?? ''}\u0000${r.name}`;
    return seen.has(k) ? false : (seen.add(k), true);
  });
}
