/**
 * SessionNames / TargetNames (proxy/names.ts) against hand-built catalog snapshots: when an unqualified relation is
 * qualified, and every case where it must stay unqualified (policy then matches it conservatively). The same logic
 * against a real PostgreSQL: test/integration/policy/search-path*.test.ts. The cache here is a stand-in holding
 * snapshots the test swaps, so the timing of loads is under the test's control.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { CatalogSnapshot, type CatalogCache } from '../../../src/masking/index.js';
import { resolveSchema, SessionNames, TargetNames } from '../../../src/proxy/names.js';
import { classify } from '../../../src/sql/classify.js';
import { loadParser } from '../../../src/sql/parser.js';
import type { ClassifiedStatement } from '../../../src/sql/types.js';

beforeAll(() => loadParser());

const I = 0x49;
const T = 0x54;

const rel = (oid: number, schema: string, name: string) => [String(oid), schema, name, 'r', '1', 'v', null];

function snapshot(version: number, relations: (string | null)[][], defaultPath = '"$user", public'): CatalogSnapshot {
  return new CatalogSnapshot(
    { relations, inherits: [], functions: [['now', 't'], ['upper', 't'], ['noop', 'f']], operators: [], textTypes: [] },
    version, Date.now(), defaultPath, performance.now(),
  );
}

const BASE = [rel(1, 'app', 'orders'), rel(2, 'public', 'orders'), rel(3, 'public', 'only_public'), rel(4, 'pg_catalog', 'pg_am'), rel(5, 'app', 'pg_am')];

/** A CatalogCache whose current snapshot the test sets; invalidate() only counts. */
class Cache {
  snap: CatalogSnapshot | null;
  invalidated = 0;
  constructor(snap: CatalogSnapshot | null) {
    this.snap = snap;
  }
  current() { return this.snap; }
  ready() { return this.snap ? Promise.resolve(this.snap) : Promise.reject(new Error('not loaded')); }
  invalidate() { this.invalidated++; }
}

function setup(snap: CatalogSnapshot | null = snapshot(1, BASE), startup: string | null = null) {
  const cache = new Cache(snap);
  const target = new TargetNames(cache as unknown as CatalogCache);
  const session = (path: string | null = startup) => {
    const s = new SessionNames(target, 'app', path);
    s.start(1000);
    return s;
  };
  return { cache, target, session };
}

function stmts(sql: string): ClassifiedStatement[] {
  const c = classify(sql, { cache: false });
  if (!c.ok) throw new Error(c.message);
  return c.statements;
}

/** The schemas policy sees for each read relation of each statement ('?' = unqualified). */
const reads = (n: SessionNames, sql: string) => n.qualify(stmts(sql)).map((s) => s.reads.map((r) => `${r.schema ?? '?'}.${r.name}`));
const allowed = (n: SessionNames, sql: string, simple = true) => { const s = stmts(sql); n.onAllowed(s, s, simple); };

describe('qualify', () => {
  it('resolves through the role default path, pg_catalog first unless listed', () => {
    const n = setup().session();
    expect(reads(n, 'SELECT v FROM orders JOIN only_public USING (v)')).toEqual([['app.orders', 'public.only_public']]);
    expect(reads(n, 'SELECT * FROM pg_am')).toEqual([['pg_catalog.pg_am']]);
    expect(reads(setup().session('app, pg_catalog'), 'SELECT * FROM pg_am')).toEqual([['app.pg_am']]);
    // Already qualified, or not in the catalog: left as written.
    expect(reads(n, 'SELECT * FROM public.orders, nowhere')).toEqual([['public.orders', '?.nowhere']]);
  });

  it('follows SET within one message and after it (exactly, once the SET ran alone outside a transaction)', () => {
    const n = setup().session();
    expect(reads(n, 'SET search_path = public; SELECT v FROM orders')).toEqual([[], ['public.orders']]);
    allowed(n, 'SET search_path = public');
    // Not known to have run yet: app or public, which disagree.
    expect(reads(n, 'SELECT v FROM orders')).toEqual([['?.orders']]);
    n.onReady(I, true);
    expect(reads(n, 'SELECT v FROM orders')).toEqual([['public.orders']]);
  });

  it('leaves the rest of a message unqualified after DDL or user code in it (they run first)', () => {
    const n = setup().session();
    expect(reads(n, 'DROP TABLE app.orders; SELECT v FROM orders')).toEqual([['app.orders'], ['?.orders']]);
    expect(reads(n, 'SELECT noop(); SELECT v FROM orders')).toEqual([[], ['?.orders']]);
    expect(reads(n, 'SELECT v FROM orders; SELECT now(); SELECT v FROM only_public')).toEqual([['app.orders'], [], ['public.only_public']]);
  });

  it('qualifies the statement PREPARE and DECLARE wrap', () => {
    const n = setup().session();
    const [p] = n.qualify(stmts('PREPARE p AS SELECT v FROM orders'));
    expect(p!.prepare!.statement.reads).toEqual([{ schema: 'app', name: 'orders' }]);
    const [d] = n.qualify(stmts('DECLARE c CURSOR FOR SELECT v FROM only_public'));
    expect(d!.declare!.statement.reads).toEqual([{ schema: 'public', name: 'only_public' }]);
  });

  it('leaves names unqualified without a catalog, with a temp table of that name, or with an unknown path', () => {
    expect(reads(setup(null).session(), 'SELECT v FROM orders')).toEqual([['?.orders']]);
    const temp = setup(snapshot(1, [...BASE, rel(9, 'pg_temp_3', 'orders')])).session();
    expect(reads(temp, 'SELECT v FROM orders, only_public')).toEqual([['?.orders', 'public.only_public']]);
    const n = setup().session();
    allowed(n, "SELECT set_config('search_path', $1, false)", false);
    n.onReady(I, true);
    expect(reads(n, 'SELECT v FROM orders')).toEqual([['?.orders']]);
  });

  it('user code makes the path unknown until the client sets it again; built-in functions do not', () => {
    const { cache, session } = setup();
    const n = session();
    allowed(n, 'SELECT now()');
    n.onReady(I, true);
    expect(reads(n, 'SELECT v FROM orders')).toEqual([['app.orders']]);
    allowed(n, 'SELECT noop()');
    n.onReady(I, true);
    // It may also have run DDL: the catalog is reloaded; the path stays unknown after that.
    cache.snap = snapshot(2, BASE);
    expect(reads(n, 'SELECT v FROM only_public')).toEqual([['?.only_public']]);
    allowed(n, 'RESET search_path');
    n.onReady(I, true);
    expect(reads(n, 'SELECT v FROM orders')).toEqual([['app.orders']]);
  });
});

describe('catalog changes in flight', () => {
  it('DDL in any session makes every session of the target unsure until it ends and a later load is in', () => {
    const { cache, session } = setup();
    const a = session();
    const b = session();
    allowed(a, 'BEGIN; CREATE TABLE app.x (i int)');
    a.onReady(T, true);
    expect(reads(a, 'SELECT v FROM orders')).toEqual([['?.orders']]);
    expect(reads(b, 'SELECT v FROM orders')).toEqual([['?.orders']]);
    a.onReady(I, false); // an earlier cycle's answer: a's transaction is not known to have ended
    expect(reads(b, 'SELECT v FROM orders')).toEqual([['?.orders']]);
    a.onReady(I, true);
    expect(cache.invalidated).toBe(1);
    // Ended, but the snapshot in hand was loaded before: still unsure.
    expect(reads(b, 'SELECT v FROM orders')).toEqual([['?.orders']]);
    cache.snap = snapshot(2, BASE);
    expect(reads(b, 'SELECT v FROM orders')).toEqual([['app.orders']]);
  });

  it('a session that ends with DDL in flight releases the target', () => {
    const { cache, session } = setup();
    const a = session();
    allowed(a, 'BEGIN; DROP TABLE app.orders');
    a.close();
    cache.snap = snapshot(2, BASE);
    expect(reads(session(), 'SELECT v FROM orders')).toEqual([['app.orders']]);
  });

  it('a new session does not take the role default from a snapshot older than ALTER DATABASE ... SET search_path', () => {
    const { cache, session } = setup();
    const admin = session();
    allowed(admin, 'ALTER DATABASE app SET search_path = public');
    admin.onReady(I, true);
    // Started after the change, before the reload: the server gives it `public`; the old snapshot says "$user".
    const fresh = session();
    expect(reads(fresh, 'SELECT v FROM orders')).toEqual([['?.orders']]);
    cache.snap = snapshot(2, BASE, 'public');
    expect(reads(fresh, 'SELECT v FROM orders')).toEqual([['public.orders']]);
  });

  it('scopeKey changes with the path, a change in flight and a new snapshot', () => {
    const { cache, session } = setup();
    const a = session();
    const k0 = a.scopeKey();
    allowed(a, 'SET search_path = public');
    a.onReady(I, true);
    const k1 = a.scopeKey();
    expect(k1).not.toBe(k0);
    cache.snap = snapshot(2, BASE);
    expect(a.scopeKey()).not.toBe(k1);
  });
});

describe('resolveSchema', () => {
  it('needs every possible path to agree', () => {
    const snap = snapshot(1, BASE);
    expect(resolveSchema('only_public', { anyOf: [['app', 'public'], ['public']] }, snap)).toBe('public');
    expect(resolveSchema('orders', { anyOf: [['app', 'public'], ['public']] }, snap)).toBeNull();
    expect(resolveSchema('orders', null, snap)).toBeNull();
  });
});
