import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDataStore, type DataStore } from '../../../src/audit/db.js';
import { AgentKeyStore, parseDuration } from '../../../src/identity/agent-keys.js';

let dir: string;
let db: DataStore;
let keys: AgentKeyStore;
const others: DataStore[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-keys-'));
  db = openDataStore(dir);
  keys = new AgentKeyStore(db);
});
afterEach(() => {
  for (const d of [db, ...others.splice(0)]) if (d.open) d.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('AgentKeyStore', () => {
  it('issues an sk_ secret that verifies to the identity and its groups', async () => {
    const { secret } = keys.add('ci-bot', { groups: ['ci', 'readers'] });
    expect(secret).toMatch(/^sk_[A-Za-z0-9_-]{43}$/);
    expect(await keys.verify('ci-bot', secret)).toEqual({
      ok: true,
      identity: { name: 'ci-bot', groups: ['ci', 'readers'] },
    });
  });

  it('gives every key a different secret', () => {
    const a = keys.add('a', { groups: [] }).secret;
    const b = keys.add('b', { groups: [] }).secret;
    expect(a).not.toBe(b);
  });

  it('reports a wrong secret as mismatch and an unknown name as unknown', async () => {
    const { secret } = keys.add('agent', { groups: [] });
    const other = 'sk_' + Buffer.alloc(32, 7).toString('base64url');
    expect(await keys.verify('agent', other)).toEqual({ ok: false, reason: 'mismatch' });
    expect(await keys.verify('nobody', secret)).toEqual({ ok: false, reason: 'unknown' });
  });

  it('reports malformed names and secrets without looking them up', async () => {
    const { secret } = keys.add('agent', { groups: [] });
    expect(await keys.verify('agent', secret.slice(0, -1))).toEqual({ ok: false, reason: 'malformed' });
    expect(await keys.verify('agent', 'hunter2')).toEqual({ ok: false, reason: 'malformed' });
    expect(await keys.verify('bad name', secret)).toEqual({ ok: false, reason: 'malformed' });
    expect(await keys.verify('x'.repeat(64), secret)).toEqual({ ok: false, reason: 'malformed' });
  });

  it('refuses an expired key', async () => {
    const now = Date.now();
    const { secret } = keys.add('temp', { groups: [], expiresAt: now + 60_000 });
    expect((await keys.verify('temp', secret, now + 59_999)).ok).toBe(true);
    expect(await keys.verify('temp', secret, now + 60_000)).toEqual({ ok: false, reason: 'expired' });
    expect(keys.list(now + 60_000)[0]?.status).toBe('expired');
  });

  it('reports revoked/expired only to a caller holding the right secret', async () => {
    keys.add('temp', { groups: [] });
    keys.revoke('temp');
    const wrong = 'sk_' + Buffer.alloc(32, 1).toString('base64url');
    expect(await keys.verify('temp', wrong)).toEqual({ ok: false, reason: 'mismatch' });
  });

  it('sees a revocation made through another connection on the same file at the next verify', async () => {
    const { secret } = keys.add('agent', { groups: ['g'] });
    expect((await keys.verify('agent', secret)).ok).toBe(true);

    const second = openDataStore(dir);
    others.push(second);
    expect(new AgentKeyStore(second).revoke('agent')).toBe(true);
    expect(new AgentKeyStore(second).revoke('agent')).toBe(false);

    expect(await keys.verify('agent', secret)).toEqual({ ok: false, reason: 'revoked' });
    expect(keys.list()[0]).toMatchObject({ name: 'agent', status: 'revoked' });
  });

  it('skips scrypt for a secret already proven against the same stored hash, and only for that secret', async () => {
    const { secret } = keys.add('agent', { groups: [] });
    expect((await keys.verify('agent', secret)).ok).toBe(true);
    // With a different salt, scrypt of the right secret no longer matches: only the proven-secret memo can accept it.
    db.prepare('UPDATE agent_keys SET salt = randomblob(32)').run();
    expect((await keys.verify('agent', secret)).ok).toBe(true);
    const wrong = 'sk_' + Buffer.alloc(32, 7).toString('base64url');
    expect(await keys.verify('agent', wrong)).toEqual({ ok: false, reason: 'mismatch' });
    // A re-added key has a new hash: the memo of the old secret must not apply to it.
    keys.revoke('agent');
    const fresh = keys.add('agent', { groups: [] }).secret;
    expect(await keys.verify('agent', secret)).toEqual({ ok: false, reason: 'mismatch' });
    expect((await keys.verify('agent', fresh)).ok).toBe(true);
  });

  it('runs one scrypt for a burst of logins with the same key, none shared with a different secret', async () => {
    const { secret } = keys.add('agent', { groups: [] });
    const wrong = 'sk_' + Buffer.alloc(32, 9).toString('base64url');
    const running = (keys as unknown as { running: Map<string, Promise<boolean>> }).running;
    const burst = Array.from({ length: 40 }, () => keys.verify('agent', secret));
    const guess = keys.verify('agent', wrong);
    expect(running.size).toBe(2); // one run for the 40 identical secrets, one for the wrong one
    expect((await Promise.all(burst)).every((r) => r.ok)).toBe(true);
    expect(await guess).toEqual({ ok: false, reason: 'mismatch' });
    expect(running.size).toBe(0);
  });

  it('catches a revocation that lands while scrypt is running', async () => {
    const { secret } = keys.add('agent', { groups: [] });
    const second = openDataStore(dir);
    others.push(second);
    const pending = keys.verify('agent', secret); // row already read, hashing on the thread pool
    new AgentKeyStore(second).revoke('agent');
    expect(await pending).toEqual({ ok: false, reason: 'revoked' });
  });

  it('treats a row with out-of-bounds scrypt parameters as a mismatch instead of running them', async () => {
    const { secret } = keys.add('agent', { groups: [] });
    db.prepare('UPDATE agent_keys SET scrypt_params = ?').run(JSON.stringify({ N: 2 ** 30, r: 8, p: 1, keylen: 32 }));
    expect(await keys.verify('agent', secret)).toEqual({ ok: false, reason: 'mismatch' });
  });

  it('refuses to add over an active key, and replaces a revoked one', async () => {
    const old = keys.add('agent', { groups: ['a'] }).secret;
    expect(() => keys.add('agent', { groups: ['b'] })).toThrow(/revoke it first/);
    expect(keys.revoke('agent')).toBe(true);
    const fresh = keys.add('agent', { groups: ['b'] }).secret;
    expect(await keys.verify('agent', old)).toEqual({ ok: false, reason: 'mismatch' });
    expect(await keys.verify('agent', fresh)).toEqual({ ok: true, identity: { name: 'agent', groups: ['b'] } });
    expect(keys.list()).toHaveLength(1);
  });

  it('validates names, groups and expiry', () => {
    expect(() => keys.add('bad name', { groups: [] })).toThrow(/invalid key name/);
    expect(() => keys.add('', { groups: [] })).toThrow(/invalid key name/);
    expect(() => keys.add('a'.repeat(64), { groups: [] })).toThrow(/invalid key name/);
    expect(() => keys.add('ok', { groups: ['a,b'] })).toThrow(/invalid group/);
    expect(() => keys.add('ok', { groups: [''] })).toThrow(/invalid group/);
    expect(() => keys.add('ok', { groups: [], expiresAt: Date.now() - 1 })).toThrow(/future/);
    expect(keys.add('ci.bot@example-1_x', { groups: [] }).secret).toMatch(/^sk_/);
  });

  it('records last use on success only', async () => {
    const { secret } = keys.add('agent', { groups: [] });
    expect(keys.list()[0]?.lastUsedAt).toBeNull();
    await keys.verify('agent', 'sk_' + Buffer.alloc(32).toString('base64url'));
    expect(keys.list()[0]?.lastUsedAt).toBeNull();
    await keys.verify('agent', secret, 1_234_567);
    expect(keys.list()[0]?.lastUsedAt).toBe(1_234_567);
  });

  it('lists keys without any hash or salt', () => {
    keys.add('b', { groups: ['x'] });
    keys.add('a', { groups: [], expiresAt: Date.now() + 1000 });
    const list = keys.list();
    expect(list.map((k) => k.name)).toEqual(['a', 'b']);
    for (const k of list) {
      expect(Object.keys(k).sort()).toEqual(
        ['createdAt', 'expiresAt', 'groups', 'lastUsedAt', 'name', 'revokedAt', 'status'].sort(),
      );
      expect(k.status).toBe('active');
    }
  });

  it('never writes the secret to disk in plain text', () => {
    const secrets = ['one', 'two', 'three'].map((n) => keys.add(n, { groups: [] }).secret);
    const files = () => readdirSync(dir).filter((f) => f.startsWith('sluice.db'));
    const bytes = () => Buffer.concat(files().map((f) => readFileSync(join(dir, f))));
    const check = () => {
      const all = bytes();
      for (const s of secrets) {
        expect(all.includes(s)).toBe(false);
        expect(all.includes(Buffer.from(s.slice(3), 'base64url'))).toBe(false); // nor its raw bytes
      }
    };
    expect(files()).toContain('sluice.db-wal');
    check(); // still in the WAL
    db.pragma('wal_checkpoint(TRUNCATE)');
    check(); // and after the checkpoint into the main file
    // positive control: the hashes are there, so the search would find stored bytes
    const hash = db.prepare('SELECT hash FROM agent_keys WHERE name = ?').pluck().get('one') as Buffer;
    expect(bytes().includes(hash)).toBe(true);
  });
});

describe('parseDuration', () => {
  it('parses s, m, h, d and w', () => {
    expect(parseDuration('45s')).toBe(45_000);
    expect(parseDuration('90m')).toBe(90 * 60_000);
    expect(parseDuration('12h')).toBe(12 * 3_600_000);
    expect(parseDuration('30d')).toBe(30 * 86_400_000);
    expect(parseDuration('2w')).toBe(14 * 86_400_000);
  });

  it.each(['', '30', 'd', '0d', '-1d', '1.5h', '30 d', '30days', '1y', '10D', '1e3s', '9999999999d'])(
    'rejects %j with a message saying what is expected',
    (text) => {
      expect(() => parseDuration(text)).toThrow(/invalid duration .*s, m, h, d or w/);
    },
  );
});
