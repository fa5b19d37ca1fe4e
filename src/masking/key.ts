/**
 * The per-install key of the `hash` masking method. One key per data directory keeps hashes stable across
 * restarts (so joins on hashed values line up, and a value hashes the same in every session), while a value
 * cannot be confirmed by hashing guesses without the key. Like an SSH private key, a key file that others can
 * read is refused rather than used.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export const MASK_KEY_FILE = 'masking.key';
export const MASK_KEY_BYTES = 32;

export class MaskKeyError extends Error {}

/** Reads `<dataDir>/masking.key`, creating it (32 random bytes, mode 0600) on first use. */
export function loadOrCreateMaskKey(dataDir: string): Buffer {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const path = join(dataDir, MASK_KEY_FILE);
  try {
    // 'wx' fails when the file exists: two processes starting together cannot both write a key.
    const fd = openSync(path, 'wx', 0o600);
    try {
      const key = randomBytes(MASK_KEY_BYTES);
      writeSync(fd, key);
      return key;
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  const fd = openSync(path, 'r');
  try {
    const st = fstatSync(fd);
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
      throw new MaskKeyError(`${path} is readable by other users (mode ${(st.mode & 0o777).toString(8)}); run chmod 600 on it`);
    }
    const key = readFileSync(fd);
    if (key.length !== MASK_KEY_BYTES) {
      // A truncated or edited key would silently change every hash; refuse instead.
      throw new MaskKeyError(`${path} holds ${key.length} bytes, expected ${MASK_KEY_BYTES}; restore it or delete it to start a new key (hashes will change)`);
    }
    return key;
  } finally {
    closeSync(fd);
  }
}
