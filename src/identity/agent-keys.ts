import { createHash, randomBytes, scrypt, scryptSync, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import type Database from 'better-sqlite3';

/**
 * Agent keys: `sluice key add NAME --groups a,b` prints a random secret once; only a salted scrypt hash is kept.
 * A client presents NAME as the PostgreSQL user and the secret as its cleartext password.
 */

export interface Identity {
  name: string;
  groups: string[];
}

export type KeyCheck =
  | { ok: true; identity: Identity }
  | { ok: false; reason: 'unknown' | 'mismatch' | 'revoked' | 'expired' | 'malformed' };

export type AgentKeyStatus = 'active' | 'expired' | 'revoked';

/** What may be shown about a key (CLI, UI). Never the salt or hash. */
export interface AgentKeyInfo {
  name: string;
  groups: string[];
  createdAt: number;
  expiresAt: number | null;
  revokedAt: number | null;
  lastUsedAt: number | null;
  status: AgentKeyStatus;
}

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
  keylen: number;
}

/** Key names are the PostgreSQL user names clients send in the StartupMessage (NAMEDATALEN - 1 = 63 bytes). */
export const AGENT_KEY_NAME = /^[A-Za-z0-9_.@-]{1,63}$/;
/** Group names: no whitespace or commas (the CLI takes `--groups a,b`). */
export const GROUP_NAME = /^[^\s,]{1,128}$/;
const SECRET = /^sk_[A-Za-z0-9_-]{43}$/; // 'sk_' + base64url(32 bytes) without padding

/** Cost for new keys (~32 MiB, tens of ms). Stored per row, so raising it later leaves old keys verifiable. */
export const DEFAULT_SCRYPT: Readonly<ScryptParams> = { N: 2 ** 15, r: 8, p: 1, keylen: 32 };
const SALT_BYTES = 32;
const MAX_PROVEN = 4096;

interface KeyRow {
  id: number;
  name: string;
  groups: string;
  salt: Buffer | null;
  hash: Buffer | null;
  scrypt_params: string | null;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
  last_used_at: number | null;
}

export class AgentKeyStore {
  private readonly byName: Database.Statement<[string], KeyRow>;
  private readonly all: Database.Statement<[], KeyRow>;
  private readonly touch: Database.Statement<[{ id: number; hash: Buffer; now: number }]>;
  // Spent on unknown names so that timing does not reveal which names exist.
  private readonly dummySalt = randomBytes(SALT_BYTES);
  /**
   * Secrets already proven against a row's scrypt hash: row id -> (that hash, SHA-256 of the secret). A client that
   * reconnects with the same key then skips the ~70 ms derivation (a pool of 16 connections would otherwise spend a
   * second of CPU). SHA-256 suffices here because the secret is 256 random bits; scrypt stays the stored form.
   * Only the right secret takes the fast path: any other goes through scrypt, so timing tells nothing new.
   */
  private readonly proven = new Map<number, { hash: Buffer; digest: Buffer }>();
  /**
   * scrypt runs in progress, by row, stored hash and secret digest: a burst of connections presenting the same key
   * (a CI fan-out, a pool filling up) costs one scrypt, not one each queued on libuv's four threads (measured: 1000
   * concurrent logins with one key took ~15 s and starved every other crypto call, upstream SCRAM included).
   * Only an identical secret joins a run, so a wrong guess never learns anything from the right one's timing.
   */
  private readonly running = new Map<string, Promise<boolean>>();

  constructor(private readonly db: Database.Database) {
    this.byName = db.prepare('SELECT * FROM agent_keys WHERE name = ?');
    this.all = db.prepare('SELECT * FROM agent_keys ORDER BY name');
    this.touch = db.prepare(
      `UPDATE agent_keys SET last_used_at = @now
        WHERE id = @id AND hash = @hash AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > @now)`,
    );
  }

  /**
   * Create a key and return its secret (shown once, never stored). Hashing runs synchronously (tens of ms):
   * this is an operator action, not the connection path.
   */
  add(name: string, opts: { groups: string[]; expiresAt?: number }, now = Date.now()): { secret: string } {
    if (!AGENT_KEY_NAME.test(name)) {
      throw new Error(`invalid key name "${name}": use 1-63 characters from A-Z a-z 0-9 _ . @ -`);
    }
    const groups = [...new Set(opts.groups)];
    for (const g of groups) {
      if (!GROUP_NAME.test(g)) throw new Error(`invalid group name "${g}": 1-128 characters, no spaces or commas`);
    }
    const expiresAt = opts.expiresAt ?? null;
    if (expiresAt !== null && (!Number.isSafeInteger(expiresAt) || expiresAt <= now)) {
      throw new Error('expiry must be a time in the future');
    }

    const secret = 'sk_' + randomBytes(32).toString('base64url');
    const salt = randomBytes(SALT_BYTES);
    const hash = scryptSync(secret, salt, DEFAULT_SCRYPT.keylen, scryptOptions(DEFAULT_SCRYPT));
    const row = {
      name,
      groups: JSON.stringify(groups),
      salt,
      hash,
      params: JSON.stringify(DEFAULT_SCRYPT),
      now,
      expiresAt,
    };

    this.db
      .transaction(() => {
        const existing = this.byName.get(name);
        if (existing && statusOf(existing, now) === 'active') {
          throw new Error(`an active key named "${name}" already exists; revoke it first (sluice key revoke ${name})`);
        }
        // A revoked or expired name is reused in place: new secret, groups and times; the old secret stops working.
        this.db
          .prepare(
            `INSERT INTO agent_keys (name, groups, salt, hash, scrypt_params, created_at, expires_at)
             VALUES (@name, @groups, @salt, @hash, @params, @now, @expiresAt)
             ON CONFLICT (name) DO UPDATE SET groups = excluded.groups, salt = excluded.salt, hash = excluded.hash,
               scrypt_params = excluded.scrypt_params, created_at = excluded.created_at,
               expires_at = excluded.expires_at, revoked_at = NULL, last_used_at = NULL`,
          )
          .run(row);
      })
      .immediate();
    return { secret };
  }

  list(now = Date.now()): AgentKeyInfo[] {
    return this.all.all().map((r) => ({
      name: r.name,
      groups: parseGroups(r.groups),
      createdAt: r.created_at,
      expiresAt: r.expires_at,
      revokedAt: r.revoked_at,
      lastUsedAt: r.last_used_at,
      status: statusOf(r, now),
    }));
  }

  /** Revoke an active (or expired) key. Returns false if there is no such key or it was already revoked. */
  revoke(name: string, now = Date.now()): boolean {
    const res = this.db
      .prepare('UPDATE agent_keys SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL')
      .run(now, name);
    return res.changes === 1;
  }

  /**
   * Check a presented name + secret. The row is read on every call, so revocation and expiry apply to the next
   * connection, also when another process changed the same database file.
   *
   * The secret is checked before the key's state: 'revoked' and 'expired' are only reported to a caller who holds
   * the right secret; everyone else gets 'mismatch' (or 'unknown', after the same scrypt cost).
   * Rejects only if the store cannot be read or written (callers must treat that as a failed login).
   */
  async verify(name: string, secret: string, now = Date.now()): Promise<KeyCheck> {
    if (!AGENT_KEY_NAME.test(name) || !SECRET.test(secret)) return { ok: false, reason: 'malformed' };

    const row = this.byName.get(name);
    const stored = row ? storedHash(row) : null;
    if (!row || !stored) {
      await scryptAsync(secret, this.dummySalt, DEFAULT_SCRYPT);
      return { ok: false, reason: row ? 'mismatch' : 'unknown' };
    }
    const digest = createHash('sha256').update(secret).digest();
    const memo = this.proven.get(row.id);
    if (!(memo && memo.hash.equals(stored.hash) && timingSafeEqual(memo.digest, digest))) {
      const key = `${row.id}:${stored.hash.toString('hex')}:${digest.toString('hex')}`;
      let run = this.running.get(key);
      if (!run) {
        run = scryptAsync(secret, stored.salt, stored.params)
          .then((presented) => presented.length === stored.hash.length && timingSafeEqual(presented, stored.hash))
          .finally(() => this.running.delete(key));
        this.running.set(key, run);
      }
      if (!(await run)) return { ok: false, reason: 'mismatch' };
      if (this.proven.size >= MAX_PROVEN) this.proven.delete(this.proven.keys().next().value!);
      this.proven.set(row.id, { hash: stored.hash, digest });
    }

    // scrypt took a while: the UPDATE re-checks the row so a revoke or re-add in between is not missed.
    if (this.touch.run({ id: row.id, hash: stored.hash, now }).changes !== 1) {
      const current = this.byName.get(name);
      if (!current) return { ok: false, reason: 'unknown' };
      if (current.id !== row.id || !current.hash?.equals(stored.hash)) return { ok: false, reason: 'mismatch' };
      const status = statusOf(current, now);
      return { ok: false, reason: status === 'active' ? 'mismatch' : status };
    }
    return { ok: true, identity: { name: row.name, groups: parseGroups(row.groups) } };
  }
}

function statusOf(r: Pick<KeyRow, 'revoked_at' | 'expires_at'>, now: number): AgentKeyStatus {
  if (r.revoked_at !== null) return 'revoked';
  if (r.expires_at !== null && r.expires_at <= now) return 'expired';
  return 'active';
}

function parseGroups(json: string): string[] {
  const v: unknown = JSON.parse(json);
  if (!Array.isArray(v) || !v.every((g): g is string => typeof g === 'string')) {
    throw new Error('agent_keys.groups is not a JSON array of strings');
  }
  return v;
}

/** Salt, hash and params of a row, or null if missing or out of the bounds we are willing to run. */
function storedHash(r: KeyRow): { salt: Buffer; hash: Buffer; params: ScryptParams } | null {
  if (!r.salt || !r.hash || !r.scrypt_params) return null;
  let p: Record<string, unknown>;
  try {
    p = JSON.parse(r.scrypt_params) as Record<string, unknown>;
  } catch {
    return null;
  }
  const { N, r: blockSize, p: par, keylen } = p;
  // Bounds stop a tampered row from making verify allocate gigabytes.
  if (
    !intIn(N, 2, 2 ** 20) || (N & (N - 1)) !== 0 ||
    !intIn(blockSize, 1, 32) || !intIn(par, 1, 16) || !intIn(keylen, 16, 64)
  ) {
    return null;
  }
  return { salt: r.salt, hash: r.hash, params: { N, r: blockSize, p: par, keylen } };
}

function intIn(v: unknown, min: number, max: number): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max;
}

function scryptOptions(p: ScryptParams): ScryptOptions {
  // OpenSSL needs about 128 * r * (N + p) bytes; Node's default 32 MiB cap is exactly too small for N=2^15, r=8.
  return { N: p.N, r: p.r, p: p.p, maxmem: 128 * p.r * (p.N + p.p) * 2 };
}

/** Async scrypt runs on the libuv thread pool, so verification never blocks the event loop. */
function scryptAsync(secret: string, salt: Buffer, p: ScryptParams): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(secret, salt, p.keylen, scryptOptions(p), (err, key) => (err ? reject(err) : resolve(key)));
  });
}

const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;

/** Parse `--expires` values: a positive whole number and one unit, e.g. `45s`, `90m`, `12h`, `30d`, `2w`. */
export function parseDuration(text: string): number {
  const m = /^([1-9][0-9]{0,8})([smhdw])$/.exec(text.trim());
  if (!m) {
    throw new Error(
      `invalid duration "${text}": expected a positive whole number followed by s, m, h, d or w ` +
        '(for example 90m, 12h, 30d, 2w)',
    );
  }
  return Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
}
