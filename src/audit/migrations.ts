/**
 * Schema migrations for the Sluice data store (`sluice.db`).
 *
 * RULES (the audit trail depends on them):
 * - Append only. A migration is NEVER edited, renumbered or removed once it has shipped: databases in the
 *   field already recorded it as applied and will not run it again. Fix mistakes with a new migration.
 * - Versions are consecutive integers starting at 1; `openDataStore` applies each pending one in order,
 *   in its own transaction, and records it in `schema_migrations` (version, name, applied_at).
 * - A database whose recorded version is newer than the last entry here is refused (an older Sluice must
 *   not write into a schema it does not understand).
 * - Timestamps are INTEGER milliseconds since the Unix epoch (Date.now()).
 */
import type Database from 'better-sqlite3';
import { chainExistingRows } from './chain-backfill.js';

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
  /** Runs after `sql`, in the same transaction, for steps SQL cannot express (hashing). Frozen like `sql`. */
  readonly run?: (db: Database.Database) => void;
}

export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'agent keys, sessions, statements',
    sql: `
      CREATE TABLE agent_keys (
        id            INTEGER PRIMARY KEY,
        name          TEXT    NOT NULL UNIQUE,
        groups        TEXT    NOT NULL,          -- JSON array of group names
        salt          BLOB,
        hash          BLOB,
        scrypt_params TEXT,                      -- JSON {"N","r","p","keylen"}, per row so it can be raised later
        created_at    INTEGER NOT NULL,
        expires_at    INTEGER,
        revoked_at    INTEGER,
        last_used_at  INTEGER
      );

      CREATE TABLE sessions (
        id               INTEGER PRIMARY KEY,
        identity         TEXT    NOT NULL,
        target           TEXT    NOT NULL,
        client_addr      TEXT    NOT NULL,
        application_name TEXT,
        started_at       INTEGER NOT NULL,
        ended_at         INTEGER,
        end_reason       TEXT,
        -- Bounds of the session's rows in statements (by id). statements has no index on session_id on purpose:
        -- sessions interleave, so such an index dirties a different page per session on every commit (measured:
        -- 7.9 vs 3.1 µs per record at 5 records per commit). A session's rows are read by id range instead.
        first_statement_id INTEGER,
        last_statement_id  INTEGER
      );

      CREATE TABLE statements (
        id          INTEGER PRIMARY KEY,
        session_id  INTEGER NOT NULL REFERENCES sessions (id),
        seq         INTEGER NOT NULL,            -- 1, 2, 3... per session, in the order received
        received_at INTEGER NOT NULL,
        protocol    TEXT    NOT NULL CHECK (protocol IN ('simple', 'parse', 'execute')),
        name        TEXT,                        -- prepared statement or portal name (extended protocol)
        text        TEXT    NOT NULL
      );
    `,
  },
  {
    version: 2,
    name: 'statement decisions, results, events, policy versions, hash chain',
    // Chained tables carry chain_seq (1, 2, 3... across all of them, in commit order), prev_hash and hash; see
    // chain.ts for the encoding. chain_seq has no index: within a table, id order is chain order (the writer
    // allocates both under the write lock), so verify and export walk each table by id and merge on chain_seq.
    // An index would cost one more page per commit (measured: +6 µs per record at 1 record per commit).
    sql: `
      ALTER TABLE statements ADD COLUMN classes  TEXT;   -- JSON array: one statement class per statement in the message
      ALTER TABLE statements ADD COLUMN objects  TEXT;   -- JSON array: 'r:public.users', 'w:public.orders', 'f:pg_sleep'
      ALTER TABLE statements ADD COLUMN decision TEXT CHECK (decision IN ('allow', 'deny', 'review'));
      ALTER TABLE statements ADD COLUMN rule     TEXT;   -- the policy rule that decided
      ALTER TABLE statements ADD COLUMN reason   TEXT;   -- the refusal message sent to the client
      ALTER TABLE statements ADD COLUMN params   TEXT;   -- JSON array of bind parameters as text; NULL when none or redacted
      ALTER TABLE statements ADD COLUMN tags     TEXT;   -- JSON object of sqlcommenter tags; NULL when none
      ALTER TABLE statements ADD COLUMN chain_seq INTEGER;
      ALTER TABLE statements ADD COLUMN prev_hash BLOB;
      ALTER TABLE statements ADD COLUMN hash      BLOB;

      -- Completion of a statement, written after it ran (never on the forwarding path).
      CREATE TABLE statement_results (
        id            INTEGER PRIMARY KEY,
        statement_id  INTEGER NOT NULL REFERENCES statements (id),
        completed_at  INTEGER NOT NULL,
        duration_ms   REAL    NOT NULL,
        rows          INTEGER,                   -- rows returned or affected, when known
        bytes         INTEGER,                   -- bytes of result sent to the client, when known
        error_code    TEXT,                      -- SQLSTATE when the statement failed
        error_message TEXT,
        chain_seq     INTEGER NOT NULL,
        prev_hash     BLOB    NOT NULL,
        hash          BLOB    NOT NULL
      );
      -- results arrive in roughly statement order, so this index also grows at its right edge
      CREATE INDEX statement_results_statement ON statement_results (statement_id);

      -- Other auditable events: session_opened / session_ended / policy_applied (see events.ts) and more later.
      CREATE TABLE audit_events (
        id         INTEGER PRIMARY KEY,
        kind       TEXT    NOT NULL,
        session_id INTEGER REFERENCES sessions (id),
        at         INTEGER NOT NULL,
        detail     TEXT,                         -- JSON object
        chain_seq  INTEGER NOT NULL,
        prev_hash  BLOB    NOT NULL,
        hash       BLOB    NOT NULL
      );

      -- Every policy text that was applied. Not chained itself: its 'policy_applied' event holds the text's SHA-256.
      CREATE TABLE policy_versions (
        id          INTEGER PRIMARY KEY,
        applied_at  INTEGER NOT NULL,
        source_path TEXT,
        text        TEXT    NOT NULL,
        sha256      TEXT    NOT NULL            -- hex, of text as UTF-8
      );

      -- The last record of the chain, written in the same transaction as it. Lets the writer start without a
      -- scan and lets verify notice a truncated tail (unless the attacker rewrote this row too).
      CREATE TABLE chain_head (
        id     INTEGER PRIMARY KEY CHECK (id = 1),
        seq    INTEGER NOT NULL,
        tbl    TEXT,
        row_id INTEGER,
        hash   BLOB    NOT NULL
      );
      INSERT INTO chain_head (id, seq, tbl, row_id, hash) VALUES (1, 0, NULL, NULL, zeroblob(32));
    `,
    run: chainExistingRows,
  },
  {
    version: 3,
    name: 'identities seen',
    // One row per identity that logged in: agent keys (kind 'key', issuer '') and OIDC subjects (kind 'oidc', per
    // issuer). Written at each successful login; feeds the access review. Not chained: the audit trail of who
    // connected is the sessions table and its events; this is a summary of it.
    sql: `
      CREATE TABLE identities (
        kind       TEXT    NOT NULL CHECK (kind IN ('key', 'oidc')),
        issuer     TEXT    NOT NULL,            -- '' for agent keys (a NULL would defeat the primary key)
        name       TEXT    NOT NULL,            -- the identity name policy sees (the startup user)
        subject    TEXT,                        -- the token claim value the name came from (before identityMap)
        groups     TEXT    NOT NULL,            -- JSON array, as of the last login
        first_seen INTEGER NOT NULL,
        last_seen  INTEGER NOT NULL,
        PRIMARY KEY (kind, issuer, name)
      );
    `,
  },
  {
    version: 4,
    name: 'masked fields per statement result',
    // How many result columns Sluice masked for the statement (the live feed and replay show it). Part of the
    // chained row as an optional trailing column (chain.ts): NULL for rows written before it, and for no masking.
    sql: `
      ALTER TABLE statement_results ADD COLUMN masked_fields INTEGER;
    `,
  },
];

/** The schema version this build writes. */
export const latestSchemaVersion: number = migrations.at(-1)?.version ?? 0;
