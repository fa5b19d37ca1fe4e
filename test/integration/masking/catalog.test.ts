import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CatalogCache, loadCatalog } from '../../../src/masking/catalog.js';
import { viewColumns } from '../../../src/masking/taint-select.js';
import { loadParser } from '../../../src/sql/parser.js';
import { SideQueryError, type OpenSideConnection } from '../../../src/proxy/side-connection-impl.js';
import { startPostgres, type PgCluster } from '../../harness/postgres.js';
import { openSide, SETUP_SQL } from './fixture.js';

let cluster: PgCluster;
let side: OpenSideConnection;

beforeAll(async () => {
  await loadParser();
  cluster = await startPostgres();
  await cluster.sql(SETUP_SQL, 'app');
  side = await openSide(cluster);
});
afterAll(async () => {
  side?.close();
  await cluster?.stop();
});

describe('catalog snapshot', () => {
  it('maps table OIDs and attnums to schema.table.column', async () => {
    const cat = await loadCatalog(side, 1);
    const customers = cat.byName('public', 'customers')!;
    expect(customers.kind).toBe('r');
    expect(customers.columns.map((c) => c.name)).toEqual(['id', 'email', 'ssn', 'name']);
    expect(cat.nameOf(customers.oid, 2)).toEqual({ schema: 'public', table: 'customers', column: 'email' });
    expect(cat.byName('other', 'customers')!.oid).not.toBe(customers.oid);
  });

  it('resolves unqualified names through search_path, pg_catalog first', async () => {
    const cat = await loadCatalog(side, 1);
    expect(cat.resolve(null, 'customers', ['app', 'public']).map((r) => r.schema)).toEqual(['public']);
    expect(cat.resolve(null, 'customers', ['other', 'public']).map((r) => r.schema)).toEqual(['other']);
    expect(cat.resolve(null, 'pg_class', ['public']).map((r) => r.schema)).toEqual(['pg_catalog']);
  });

  it('links partitions and inheritance children to their parents, both ways', async () => {
    const cat = await loadCatalog(side, 1);
    const events = cat.byName('public', 'events')!;
    const part = cat.byName('public', 'events_2024')!;
    expect(events.kind).toBe('p');
    const names = (oid: number, col: string) => {
      const rel = cat.relations.get(oid)!;
      return cat.namesOf(oid, rel.byName.get(col)!).map((n) => `${n.table}.${n.column}`).sort();
    };
    expect(names(events.oid, 'payload')).toEqual(['events.payload', 'events_2024.payload']);
    expect(names(part.oid, 'payload')).toEqual(['events.payload', 'events_2024.payload']);
    const child = cat.byName('public', 'child')!;
    expect(names(child.oid, 'secret')).toEqual(['base.secret', 'child.secret']);
    // A column only the child has has no relative.
    expect(names(child.oid, 'extra')).toEqual(['child.extra']);
  });

  it('maps view columns back to base columns through nested views', async () => {
    const cat = await loadCatalog(side, 1);
    const customers = cat.byName('public', 'customers')!;
    const v = cat.byName('public', 'v_customers')!;
    expect(v.viewDef).toMatch(/public\.customers/);
    const cols = viewColumns(cat, v).columns;
    expect(cols.map((c) => c.direct)).toEqual([`${customers.oid}.1`, `${customers.oid}.2`, null, null]);
    expect([...cols[3]!.sources]).toEqual([`${customers.oid}.3`]);
    const nested = viewColumns(cat, cat.byName('public', 'v_contacts')!).columns;
    expect(nested[0]!.direct).toBe(`${customers.oid}.2`);
  });

  it('knows which function names may run user code', async () => {
    const cat = await loadCatalog(side, 1);
    expect(cat.userFunctions.has('leak')).toBe(true);
    expect(cat.catalogFunctions.has('upper')).toBe(true);
    expect(cat.userFunctions.has('upper')).toBe(false);
  });
});

describe('catalog cache', () => {
  it('refreshes after DDL on invalidate() and ensure(), sharing one load at a time', async () => {
    const cache = new CatalogCache({ connect: () => openSide(cluster), refreshMs: 0 });
    try {
      const first = await cache.ready();
      expect(first.byName('public', 'late')).toBeUndefined();
      await cluster.sql('CREATE TABLE late (id int, note text); GRANT ALL ON late TO app;', 'app');
      expect((await cache.ready()).version).toBe(first.version);
      const [a, b] = await Promise.all([cache.refresh(), cache.refresh()]);
      expect(a.byName('public', 'late')).toBeDefined();
      expect(b.version).toBeGreaterThanOrEqual(a.version);
      await cluster.sql('CREATE TABLE later (id int); GRANT ALL ON later TO app;', 'app');
      const oid = Number((await side.query("SELECT 'public.later'::regclass::oid")).rows[0]![0]);
      const ensured = await cache.ensure([0, oid]);
      expect(ensured.relations.has(oid)).toBe(true);
      expect(cache.current()).toBe(ensured);
    } finally {
      cache.close();
    }
  });

  it('reconnects after its side connection is killed', async () => {
    let opened = 0;
    const cache = new CatalogCache({ connect: () => { opened++; return openSide(cluster); }, refreshMs: 0 });
    try {
      await cache.ready();
      await cluster.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'sluice-side' AND pid <> pg_backend_pid() AND usename = 'app' AND state = 'idle'", 'app');
      await new Promise((r) => setTimeout(r, 200));
      await cache.refresh().catch(() => undefined);
      const snap = await cache.refresh();
      expect(snap.byName('public', 'customers')).toBeDefined();
      expect(opened).toBeGreaterThanOrEqual(2);
    } finally {
      cache.close();
    }
    // The shared side connection of this file was terminated too: reopen it for the other tests.
    side = await openSide(cluster);
  });
});

describe('side connection', () => {
  it('runs simple and extended queries and reports provenance', async () => {
    const r = await side.query('SELECT id, email FROM customers WHERE id = $1', ['1']);
    expect(r.rows).toEqual([['1', expect.stringContaining('@')]]);
    expect(r.command).toBe('SELECT 1');
    const oid = Number((await side.query("SELECT 'public.customers'::regclass::oid")).rows[0]![0]);
    expect(r.fields.map((f) => [f.name, f.tableOid, f.attnum])).toEqual([['id', oid, 1], ['email', oid, 2]]);
    expect(await side.query('SELECT NULL::text AS n')).toMatchObject({ rows: [[null]], fields: [{ name: 'n', typeOid: 25 }] });
    const d = await side.describe('SELECT upper(email) AS u FROM customers');
    expect(d).toEqual([{ name: 'u', typeOid: 25, tableOid: 0, attnum: 0 }]);
  });

  it('rejects with the server SQLSTATE and stays usable; it is read-only', async () => {
    const err = await side.query('SELECT * FROM no_such_table').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SideQueryError);
    expect((err as SideQueryError).code).toBe('42P01');
    const ro = await side.query('CREATE TABLE nope (id int)').catch((e: unknown) => e);
    expect((ro as SideQueryError).code).toBe('25006');
    expect((await side.query('SELECT 1 AS one')).rows).toEqual([['1']]);
    const bad = await side.query('SELECT $1::int', ['x']).catch((e: unknown) => e);
    expect((bad as SideQueryError).code).toBe('22P02');
  });
});
