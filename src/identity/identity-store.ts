import type Database from 'better-sqlite3';

/**
 * Every identity that has logged in, agent key or OIDC subject, with its issuer, groups and first/last login.
 * The access review and the UI's identity list read it (`list()`); the authenticator writes it (`seen()`).
 */

export type IdentityKind = 'key' | 'oidc';

export interface SeenIdentity {
  name: string;
  kind: IdentityKind;
  /** The token issuer; null for agent keys. */
  issuer: string | null;
  /** The claim value the name came from (differs from `name` under an identityMap); null for agent keys. */
  subject: string | null;
  /** Groups as of the last login. */
  groups: string[];
  firstSeen: number;
  lastSeen: number;
}

interface Row {
  kind: IdentityKind;
  issuer: string;
  name: string;
  subject: string | null;
  groups: string;
  first_seen: number;
  last_seen: number;
}

export class IdentityStore {
  private readonly upsert: Database.Statement<[{ kind: IdentityKind; issuer: string; name: string; subject: string | null; groups: string; now: number }]>;
  private readonly all: Database.Statement<[], Row>;

  constructor(db: Database.Database) {
    this.upsert = db.prepare(
      `INSERT INTO identities (kind, issuer, name, subject, groups, first_seen, last_seen)
       VALUES (@kind, @issuer, @name, @subject, @groups, @now, @now)
       ON CONFLICT (kind, issuer, name) DO UPDATE SET subject = excluded.subject, groups = excluded.groups,
         last_seen = MAX(last_seen, excluded.last_seen)`,
    );
    this.all = db.prepare('SELECT * FROM identities ORDER BY name, kind, issuer');
  }

  /** Record a successful login. Throws if the store cannot be written (the login is then refused). */
  seen(i: { kind: IdentityKind; name: string; issuer: string | null; subject: string | null; groups: readonly string[] }, now = Date.now()): void {
    this.upsert.run({ kind: i.kind, issuer: i.issuer ?? '', name: i.name, subject: i.subject, groups: JSON.stringify(i.groups), now });
  }

  list(): SeenIdentity[] {
    return this.all.all().map((r) => ({
      name: r.name,
      kind: r.kind,
      issuer: r.issuer === '' ? null : r.issuer,
      subject: r.subject,
      groups: parseGroups(r.groups),
      firstSeen: r.first_seen,
      lastSeen: r.last_seen,
    }));
  }
}

function parseGroups(json: string): string[] {
  const v: unknown = JSON.parse(json);
  return Array.isArray(v) ? v.filter((g): g is string => typeof g === 'string') : [];
}
