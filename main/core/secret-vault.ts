/**
 * Secrets of the desktop app (target passwords, the masking HMAC key) kept encrypted with Electron safeStorage,
 * i.e. with a key the OS protects (macOS Keychain, Windows DPAPI, Secret Service/KWallet on Linux).
 *
 * Where the OS offers no such key (a Linux session without a keyring, where safeStorage falls back to a hard-coded
 * key, or no Electron at all) the same file holds the secrets unencrypted, created 0600 in the 0700 data directory,
 * and a warning says so once: like `sluice serve`'s password files, protected by file permissions only.
 *
 * The broker never sees this file or safeStorage: it gets a SecretProvider (src/broker.ts) and asks it for a
 * target's password at connect time.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { TargetConfig } from '../../src/config/model.js';
import { resolveTargetPassword, TargetPasswordError } from '../../src/config/password.js';
import { loadOrCreateMaskKey, MASK_KEY_BYTES, MASK_KEY_FILE } from '../../src/masking/key.js';
import type { CipherPort, LogFn } from './ports.js';

export const VAULT_FILE = 'secrets.json';
const MASKING_KEY = 'masking-key';

type Protection = 'os-keychain' | 'file-permissions';

interface VaultFile {
  format: 1;
  protection: Protection;
  /** name -> base64 (ciphertext, or the UTF-8 secret itself under file-permissions). */
  entries: Record<string, string>;
}

export class SecretVault {
  readonly path: string;
  private data: VaultFile;
  /** Decrypted values: safeStorage may ask the OS (a Keychain prompt) for each decryption. */
  private readonly cache = new Map<string, string>();

  constructor(
    private readonly dir: string,
    private readonly cipher: CipherPort | null,
    private readonly log: LogFn,
  ) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.path = join(dir, VAULT_FILE);
    const protection: Protection = cipher?.isAvailable() ? 'os-keychain' : 'file-permissions';
    if (protection === 'file-permissions') {
      log('warn', `no OS keychain is available (Linux without a Secret Service/KWallet keyring, or no Electron): secrets are kept unencrypted in ${this.path}, readable by your user only (mode 0600)`);
    }
    const existing = this.read();
    if (!existing) {
      this.data = { format: 1, protection, entries: {} };
    } else if (existing.protection === protection) {
      this.data = existing;
    } else if (existing.protection === 'file-permissions') {
      // The keychain became available: encrypt what was kept in the clear.
      this.data = existing;
      const plain = Object.keys(existing.entries).map((k) => [k, this.get(k)!] as const);
      this.data = { format: 1, protection, entries: {} };
      this.cache.clear();
      for (const [k, v] of plain) this.set(k, v);
      this.write();
      log('info', `secrets in ${this.path} are now encrypted with the OS keychain`);
    } else {
      // Encrypted with a keychain we cannot reach now: never overwrite it (the secrets would be lost).
      throw new Error(`${this.path} was encrypted with the OS keychain, which is not available now; unlock or start the keyring (or remove the file to start over)`);
    }
  }

  get protection(): Protection {
    return this.data.protection;
  }

  get(name: string): string | undefined {
    const cached = this.cache.get(name);
    if (cached !== undefined) return cached;
    const stored = this.data.entries[name];
    if (stored === undefined) return undefined;
    const bytes = Buffer.from(stored, 'base64');
    const value = this.data.protection === 'os-keychain' ? this.cipher!.decryptString(bytes) : bytes.toString('utf8');
    this.cache.set(name, value);
    return value;
  }

  set(name: string, value: string): void {
    if (this.get(name) === value) return;
    const bytes = this.data.protection === 'os-keychain' ? this.cipher!.encryptString(value) : Buffer.from(value, 'utf8');
    this.data = { ...this.data, entries: { ...this.data.entries, [name]: bytes.toString('base64') } };
    this.cache.set(name, value);
    this.write();
  }

  delete(name: string): boolean {
    if (!(name in this.data.entries)) return false;
    const entries = { ...this.data.entries };
    delete entries[name];
    this.data = { ...this.data, entries };
    this.cache.delete(name);
    this.write();
    return true;
  }

  /**
   * The password of a target. The config's own source (env variable or file) wins when it resolves, and is kept
   * here so that the app can start without it next time (the variable unset, the file removed); a rotated
   * password in the source replaces the kept one. Without a source value, the kept one is used.
   */
  targetPassword(target: Pick<TargetConfig, 'name' | 'password'>, env: NodeJS.ProcessEnv = process.env): string | undefined {
    const key = `target:${target.name}`;
    let fromConfig: string | undefined;
    try {
      fromConfig = resolveTargetPassword(target, env);
    } catch (err) {
      if (!(err instanceof TargetPasswordError)) throw err;
      const kept = this.get(key);
      if (kept !== undefined) return kept;
      throw err;
    }
    if (fromConfig === undefined) return undefined;
    if (this.get(key) !== fromConfig) {
      this.set(key, fromConfig);
      this.log('info', `kept the password of target "${target.name}" in ${this.describe()}; its env variable or file is no longer needed`);
    }
    return fromConfig;
  }

  /**
   * The per-install key of the `hash` masking method. An existing `masking.key` file of the data directory is
   * taken over (hashes stay the same); otherwise a new random key is made.
   */
  maskingKey(dataDir: string): Buffer {
    const kept = this.get(MASKING_KEY);
    if (kept !== undefined) return Buffer.from(kept, 'base64');
    const legacy = join(dataDir, MASK_KEY_FILE);
    const key = existsSync(legacy) ? loadOrCreateMaskKey(dataDir) : randomBytes(MASK_KEY_BYTES);
    this.set(MASKING_KEY, key.toString('base64'));
    if (existsSync(legacy)) this.log('warn', `the masking key of ${legacy} is now kept in ${this.describe()}; delete the file once no \`sluice serve\` uses this data directory`);
    return key;
  }

  private describe(): string {
    return this.data.protection === 'os-keychain' ? `${this.path} (encrypted with the OS keychain)` : `${this.path} (mode 0600, not encrypted)`;
  }

  private read(): VaultFile | null {
    let fd: number;
    try {
      fd = openSync(this.path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    try {
      const mode = fstatSync(fd).mode;
      if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
        throw new Error(`${this.path} is readable by other users (mode ${(mode & 0o777).toString(8)}); run chmod 600 on it`);
      }
      const v = JSON.parse(readFileSync(fd, 'utf8')) as Partial<VaultFile>;
      if (v.format !== 1 || (v.protection !== 'os-keychain' && v.protection !== 'file-permissions') || typeof v.entries !== 'object' || v.entries === null) {
        throw new Error(`${this.path} is not a Sluice secrets file`);
      }
      return v as VaultFile;
    } finally {
      closeSync(fd);
    }
  }

  /** Created 0600 under a temporary name, then renamed: never readable by others, never half-written. */
  private write(): void {
    const tmp = `${this.path}.${randomBytes(6).toString('hex')}.tmp`;
    const fd = openSync(tmp, 'wx', 0o600);
    try {
      writeSync(fd, `${JSON.stringify(this.data, null, 2)}\n`);
    } finally {
      closeSync(fd);
    }
    try {
      renameSync(tmp, this.path);
    } catch (err) {
      try { unlinkSync(tmp); } catch { /* nothing to clean */ }
      throw err;
    }
  }
}
