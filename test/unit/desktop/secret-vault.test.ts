/**
 * The desktop secret store with safeStorage injected: encrypted with the OS keychain when there is one, a 0600
 * file with a warning when there is none; the broker's provider takes a target's password from the config source
 * first and keeps it, so the source can go away.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TargetPasswordError } from '../../../src/config/password.js';
import { SecretVault, VAULT_FILE } from '../../../main/core/secret-vault.js';
import type { CipherPort } from '../../../main/core/ports.js';

// A reversible stand-in for safeStorage: the test can tell ciphertext from the secret.
const keychain = (available = true): CipherPort => ({
  isAvailable: () => available,
  encryptString: (s) => Buffer.from(`enc:${Buffer.from(s).toString('hex')}`),
  decryptString: (b) => Buffer.from(b.toString().replace(/^enc:/, ''), 'hex').toString(),
});

let dir: string;
let logs: string[];
const log = (_l: string, m: string) => void logs.push(m);
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-vault-'));
  logs = [];
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const target = (password?: { env: string } | { file: string }) => ({ name: 'app', ...(password ? { password } : {}) });

describe('SecretVault', () => {
  it('encrypts with the OS keychain: the file never holds the secret', () => {
    const v = new SecretVault(dir, keychain(), log);
    v.set('target:app', 's3cret-pw');
    const text = readFileSync(join(dir, VAULT_FILE), 'utf8');
    expect(text).not.toContain('s3cret-pw');
    expect(JSON.parse(text).protection).toBe('os-keychain');
    expect(new SecretVault(dir, keychain(), log).get('target:app')).toBe('s3cret-pw');
    expect(logs).toEqual([]);
  });

  it('without a keychain: a 0600 file, and a warning that says so', () => {
    const v = new SecretVault(dir, keychain(false), log);
    v.set('target:app', 'pw');
    expect(statSync(join(dir, VAULT_FILE)).mode & 0o777).toBe(0o600);
    expect(logs[0]).toMatch(/no OS keychain is available.*unencrypted.*mode 0600/);
    expect(new SecretVault(dir, null, log).get('target:app')).toBe('pw');
  });

  it('encrypts a plain file once the keychain is there, and refuses to drop keychain secrets it cannot read', () => {
    new SecretVault(dir, null, log).set('target:app', 'pw');
    const v = new SecretVault(dir, keychain(), log);
    expect(v.get('target:app')).toBe('pw');
    expect(readFileSync(join(dir, VAULT_FILE), 'utf8')).not.toContain(Buffer.from('pw').toString('base64'));
    expect(() => new SecretVault(dir, keychain(false), log)).toThrow(/OS keychain, which is not available now/);
  });

  it('refuses a file others can read', () => {
    new SecretVault(dir, keychain(), log).set('x', 'y');
    chmodSync(join(dir, VAULT_FILE), 0o644);
    expect(() => new SecretVault(dir, keychain(), log)).toThrow(/readable by other users/);
  });

  it('target passwords: the config source wins and is kept; without it the kept one is used; rotation replaces it', () => {
    const v = new SecretVault(dir, keychain(), log);
    expect(v.targetPassword(target({ env: 'PW' }), { PW: 'one' })).toBe('one');
    expect(logs.join('\n')).toMatch(/kept the password of target "app"/);
    expect(v.targetPassword(target({ env: 'PW' }), {})).toBe('one');
    expect(v.targetPassword(target({ env: 'PW' }), { PW: 'two' })).toBe('two');
    expect(new SecretVault(dir, keychain(), log).targetPassword(target({ env: 'PW' }), {})).toBe('two');
    expect(v.targetPassword(target(), {})).toBeUndefined();
  });

  it('a target whose source is missing and nothing kept fails with the source error', () => {
    const v = new SecretVault(dir, keychain(), log);
    expect(() => v.targetPassword({ name: 'other', password: { env: 'NOPE' } }, {})).toThrow(TargetPasswordError);
  });

  it('the masking key: taken over from masking.key, else made once and kept', () => {
    const key = Buffer.alloc(32, 7);
    writeFileSync(join(dir, 'masking.key'), key, { mode: 0o600 });
    const v = new SecretVault(dir, keychain(), log);
    expect(v.maskingKey(dir).equals(key)).toBe(true);
    rmSync(join(dir, 'masking.key'));
    expect(new SecretVault(dir, keychain(), log).maskingKey(dir).equals(key)).toBe(true);
    const fresh = mkdtempSync(join(tmpdir(), 'sluice-vault-'));
    try {
      const k = new SecretVault(fresh, keychain(), log).maskingKey(fresh);
      expect(k).toHaveLength(32);
      expect(new SecretVault(fresh, keychain(), log).maskingKey(fresh).equals(k)).toBe(true);
    } finally {
      rmSync(fresh, { recursive: true, force: true });
    }
  });
});
