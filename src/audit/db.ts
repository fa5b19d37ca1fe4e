import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { migrations, type Migration } from './migrations.js';

export type DataStore = Database.Database;

export const DATA_STORE_FILE = 'sluice.db';

/** Thrown when the database was written by a newer Sluice (or its migration history does not match this build). */
export class SchemaVersionError extends Error {
  override readonly name = 'SchemaVersionError';
}

/**
 * Open (creating if needed) `${dataDir}/sluice.db` and bring its schema up to date.
 *
 * The file holds key hashes and every statement agents ran, so it is owner-only: the directory is created
 * 0700 and the database file 0600 before SQLite opens it. SQLite creates its `-wal` and `-shm` files with the
 * same mode as the database file, so they inherit 0600.
 */
export function openDataStore(dataDir: string, known: readonly Migration[] = migrations): DataStore {
  // `known` is for tests only; production always uses the shipped list.
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = join(dataDir, DATA_STORE_FILE);
  closeSync(openSync(file, 'a', 0o600));
  // Also tightens files left with a wider mode by an older build or a copy.
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    if (existsSync(f)) chmodSync(f, 0o600);
  }

  const db = new Database(file);
  try {
    // busy_timeout first: another process (e.g. `sluice key add` next to `sluice serve`) may hold the write lock.
    db.pragma('busy_timeout = 5000');
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (mode !== 'wal') throw new Error(`could not enable WAL journal mode on ${file} (got ${String(mode)})`);
    // In WAL mode NORMAL keeps every commit across a process crash; only an OS crash/power loss can lose the
    // last commits. That is the trade-off chosen for hot-path audit writes.
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    migrate(db, known, file);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

function migrate(db: DataStore, known: readonly Migration[], file: string): void {
  const latest = known.at(-1)?.version ?? 0;
  known.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration list is not numbered 1..n (entry ${i} is ${m.version})`);
  });

  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    applied_at INTEGER NOT NULL
  )`);
  const applied = () =>
    db.prepare('SELECT version, name FROM schema_migrations ORDER BY version').all() as { version: number; name: string }[];

  const check = (rows: { version: number; name: string }[]): void => {
    const current = rows.at(-1)?.version ?? 0;
    if (current > latest) {
      throw new SchemaVersionError(
        `${file} has schema version ${current}, but this Sluice only knows up to ${latest}; ` +
          'it was written by a newer Sluice. Upgrade Sluice, or point it at another data directory.',
      );
    }
    rows.forEach((row, i) => {
      const m = known[row.version - 1];
      if (row.version !== i + 1 || m?.name !== row.name) {
        throw new SchemaVersionError(
          `${file}: migration ${row.version} was recorded as "${row.name}" but this build calls it ` +
            `"${m?.name ?? '(missing)'}" (or a version is missing); the migration history does not match this Sluice.`,
        );
      }
    });
  };

  const before = applied();
  check(before);
  for (const m of known.slice(before.length)) {
    // IMMEDIATE takes the write lock before re-reading, so two processes opening a fresh file at once
    // cannot both apply the same migration.
    db.transaction(() => {
      const rows = applied();
      check(rows);
      if (rows.some((r) => r.version === m.version)) return;
      db.exec(m.sql);
      m.run?.(db);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(
        m.version,
        m.name,
        Date.now(),
      );
    }).immediate();
  }
}

/** The highest migration version recorded in the store (0 for an empty file). */
export function schemaVersion(db: DataStore): number {
  const row = db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null } | undefined;
  return row?.v ?? 0;
}
