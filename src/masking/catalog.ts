/**
 * Per-target catalog cache (issue 4, "Provenance and taint"): loads a CatalogSnapshot over a side connection,
 * reloads it on a timer and when the proxy says DDL went through, and lets the proxy wait for a version that
 * knows every table OID a RowDescription names.
 */
import type { SideConnection } from '../proxy/side-connection.js';
import { CatalogSnapshot, type CatalogRows } from './catalog-snapshot.js';

export { CatalogSnapshot } from './catalog-snapshot.js';

// Every statement is fully qualified: the side connection's search_path is not trusted to be the default.
const RELATIONS_SQL = `
SELECT c.oid::int8, n.nspname, c.relname, c.relkind::text, a.attnum, a.attname,
       CASE WHEN c.relkind IN ('v', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
            THEN pg_catalog.pg_get_viewdef(c.oid) END
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND n.nspname !~ '^pg_toast'
 ORDER BY c.oid, a.attnum`;
const INHERITS_SQL = 'SELECT inhrelid::int8, inhparent::int8 FROM pg_catalog.pg_inherits';
const FUNCTIONS_SQL = `
SELECT DISTINCT p.proname, (n.nspname = 'pg_catalog')::text::char
  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace`;
const OPERATORS_SQL = `
SELECT DISTINCT o.oprname FROM pg_catalog.pg_operator o JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace
 WHERE n.nspname <> 'pg_catalog'`;
const TEXT_TYPES_SQL = "SELECT oid::int8 FROM pg_catalog.pg_type WHERE typname = 'citext'";

/** Loads one consistent snapshot (one REPEATABLE READ transaction). */
export async function loadCatalog(conn: SideConnection, version: number): Promise<CatalogSnapshot> {
  // Before the transaction's snapshot is taken: whatever committed before this moment is in what it reads.
  const startedAt = performance.now();
  // Pipelined: all statements are sent at once and answered in order on the one connection.
  const begin = conn.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  // Before SET LOCAL: the target role's own default (ALTER ROLE/DATABASE ... SET search_path apply here as they do
  // to a client session that sets none at startup).
  const defaultPath = conn.query('SHOW search_path');
  // With only pg_catalog on the path, pg_get_viewdef() qualifies every other relation a view reads.
  const path = conn.query('SET LOCAL search_path = pg_catalog');
  const parts = [RELATIONS_SQL, INHERITS_SQL, FUNCTIONS_SQL, OPERATORS_SQL, TEXT_TYPES_SQL].map((sql) => conn.query(sql));
  const commit = conn.query('COMMIT');
  try {
    await begin;
    const shown = await defaultPath;
    await path;
    const [relations, inherits, functions, operators, textTypes] = await Promise.all(parts);
    await commit;
    const rows: CatalogRows = {
      relations: relations!.rows, inherits: inherits!.rows, functions: functions!.rows, operators: operators!.rows, textTypes: textTypes!.rows,
    };
    return new CatalogSnapshot(rows, version, Date.now(), shown.rows[0]?.[0] ?? null, startedAt);
  } catch (e) {
    // Settle the other pipelined promises so none rejects unhandled, and leave no transaction open.
    await Promise.allSettled([begin, defaultPath, path, ...parts, commit]);
    await conn.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}

export interface CatalogCacheOptions {
  /** Opens a side connection to the target (the cache keeps one and reopens it after a failure). */
  connect(): Promise<SideConnection>;
  /** Reload period in ms; 0 disables the timer. */
  refreshMs: number;
  log?(level: 'info' | 'warn' | 'error', msg: string): void;
}

export class CatalogCache {
  private snapshot: CatalogSnapshot | null = null;
  private conn: Promise<SideConnection> | null = null;
  private loading: Promise<CatalogSnapshot> | null = null;
  /** Set when a refresh is asked for while one runs: its query may have started before the DDL committed. */
  private again = false;
  private version = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly opts: CatalogCacheOptions) {}

  /** The latest snapshot, or null before the first load finished. Synchronous: for the per-statement path. */
  current(): CatalogSnapshot | null {
    return this.snapshot;
  }

  /** The latest snapshot, loading the first one if needed. */
  ready(): Promise<CatalogSnapshot> {
    return this.snapshot ? Promise.resolve(this.snapshot) : this.refresh();
  }

  /** Loads a new snapshot; concurrent calls share the load, and a call during a load gets the one after it. */
  refresh(): Promise<CatalogSnapshot> {
    if (this.loading) {
      // The running load loops once more before it settles, so its result is newer than this call.
      this.again = true;
      return this.loading;
    }
    const run = async (): Promise<CatalogSnapshot> => {
      try {
        for (;;) {
          this.again = false;
          const snap = await loadCatalog(await this.connection(), ++this.version);
          this.snapshot = snap;
          if (!this.again) return snap;
        }
      } finally {
        this.loading = null;
      }
    };
    this.loading = run();
    return this.loading;
  }

  /** Call after DDL went through (or might have): the next plans should not use the old snapshot. */
  invalidate(): void {
    this.refresh().catch((e: Error) => this.opts.log?.('warn', `catalog refresh failed: ${e.message}`));
  }

  /**
   * A snapshot that knows every given table OID (0 is ignored), reloading once if the current one does not.
   * OIDs still unknown after the reload (a table created in the client's open transaction) stay unknown: the
   * plan then refuses fields it cannot attribute.
   */
  async ensure(oids: Iterable<number>): Promise<CatalogSnapshot> {
    const snap = await this.ready();
    for (const oid of oids) if (oid !== 0 && !snap.relations.has(oid)) return this.refresh();
    return snap;
  }

  /** Starts the reload timer (unref'd: it never keeps the process alive). */
  start(): void {
    if (this.timer || this.opts.refreshMs <= 0) return;
    this.timer = setInterval(() => this.invalidate(), this.opts.refreshMs);
    this.timer.unref();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const conn = this.conn;
    this.conn = null;
    conn?.then((c) => c.close()).catch(() => undefined);
  }

  private connection(): Promise<SideConnection> {
    if (!this.conn) {
      const opening = this.opts.connect();
      this.conn = opening;
      opening.then(
        (c) => {
          // Forget a connection that has closed so the next load reconnects.
          const closed = (c as { closed?: Promise<void> }).closed;
          closed?.then(() => { if (this.conn === opening) this.conn = null; });
        },
        () => { if (this.conn === opening) this.conn = null; },
      );
    }
    return this.conn;
  }
}
