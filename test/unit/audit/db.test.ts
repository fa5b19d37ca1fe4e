import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDataStore, SchemaVersionError, schemaVersion, type DataStore } from '../../../src/audit/db.js';
import { migrations, type Migration } from '../../../src/audit/migrations.js';

let dir: string;
const open: DataStore[] = [];
const track = (db: DataStore): DataStore => (open.push(db), db);

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-db-'));
});
afterEach(() => {
  for (const db of open.splice(0)) if (db.open) db.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('openDataStore', () => {
  it('creates the directory and applies every migration once, recorded in schema_migrations', () => {
    const dataDir = join(dir, 'nested', 'data');
    const db = track(openDataStore(dataDir));
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    const rows = db.prepare('SELECT version, name FROM schema_migrations ORDER BY version').all();
    expect(rows).toEqual(migrations.map((m) => ({ version: m.version, name: m.name })));
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all();
    expect(tables).toEqual(expect.arrayContaining(['agent_keys', 'schema_migrations', 'sessions', 'statements']));
  });

  it('sets WAL, synchronous=NORMAL, busy_timeout and foreign keys', () => {
    const db = track(openDataStore(dir));
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('synchronous', { simple: true })).toBe(1); // NORMAL
    expect(db.pragma('busy_timeout', { simple: true })).toBe(5000);
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(() =>
      db.prepare("INSERT INTO statements (session_id, seq, received_at, protocol, text) VALUES (999, 1, 0, 'simple', 'x')").run(),
    ).toThrow(/FOREIGN KEY/);
  });

  it('is idempotent on reopen and keeps data', () => {
    const first = openDataStore(dir);
    first.prepare("INSERT INTO sessions (identity, target, client_addr, started_at) VALUES ('a', 't', 'c', 1)").run();
    const appliedAt = first.prepare('SELECT applied_at FROM schema_migrations WHERE version = 1').pluck().get();
    first.close();
    const db = track(openDataStore(dir));
    expect(db.prepare('SELECT COUNT(*) FROM schema_migrations').pluck().get()).toBe(migrations.length);
    expect(db.prepare('SELECT applied_at FROM schema_migrations WHERE version = 1').pluck().get()).toBe(appliedAt);
    expect(db.prepare('SELECT COUNT(*) FROM sessions').pluck().get()).toBe(1);
    expect(schemaVersion(db)).toBe(migrations.length);
  });

  it('applies only the pending migrations of a newer build, each in its own transaction', () => {
    track(openDataStore(dir)).close();
    const extra: Migration[] = [
      ...migrations,
      { version: migrations.length + 1, name: 'add t2', sql: 'CREATE TABLE t2 (x INTEGER)' },
      { version: migrations.length + 2, name: 'broken', sql: 'CREATE TABLE t3 (x INTEGER); SELECT * FROM nope' },
    ];
    expect(() => openDataStore(dir, extra)).toThrow(/no such table: nope/);
    const db = track(openDataStore(dir, extra.slice(0, -1)));
    expect(schemaVersion(db)).toBe(migrations.length + 1);
    // the broken migration left nothing behind
    expect(db.prepare("SELECT COUNT(*) FROM sqlite_master WHERE name = 't3'").pluck().get()).toBe(0);
  });

  it('refuses a database written by a newer Sluice', () => {
    track(openDataStore(dir)).close();
    const raw = new Database(join(dir, 'sluice.db'));
    raw.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(
      migrations.length + 1,
      'from the future',
      Date.now(),
    );
    raw.close();
    expect(() => openDataStore(dir)).toThrow(SchemaVersionError);
    expect(() => openDataStore(dir)).toThrow(/newer Sluice/);
  });

  it('refuses a database whose migration history does not match this build', () => {
    track(openDataStore(dir)).close();
    const raw = new Database(join(dir, 'sluice.db'));
    raw.prepare("UPDATE schema_migrations SET name = 'something else' WHERE version = 1").run();
    raw.close();
    expect(() => openDataStore(dir)).toThrow(/does not match/);
  });

  it('creates the database and its WAL files owner-only (0600)', () => {
    const db = track(openDataStore(dir));
    db.prepare("INSERT INTO sessions (identity, target, client_addr, started_at) VALUES ('a', 't', 'c', 1)").run();
    for (const f of ['sluice.db', 'sluice.db-wal', 'sluice.db-shm']) {
      expect({ f, mode: statSync(join(dir, f)).mode & 0o777 }).toEqual({ f, mode: 0o600 });
    }
  });

  it('tightens an existing database file left world-readable', () => {
    writeFileSync(join(dir, 'sluice.db'), '', { mode: 0o644 });
    track(openDataStore(dir));
    expect(statSync(join(dir, 'sluice.db')).mode & 0o777).toBe(0o600);
  });
});
