import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveTargetPassword, TargetPasswordError } from '../../../src/config/load.js';

const dir = mkdtempSync(join(tmpdir(), 'sluice-password-'));

function thrown(fn: () => unknown): TargetPasswordError {
  try {
    fn();
  } catch (err) {
    if (err instanceof TargetPasswordError) return err;
    throw err;
  }
  throw new Error('expected a TargetPasswordError');
}

describe('resolveTargetPassword', () => {
  it('returns undefined for a target without a password', () => {
    expect(resolveTargetPassword({ name: 'shop', password: undefined }, {})).toBeUndefined();
  });

  it('reads the environment variable at use time', () => {
    const target = { name: 'shop', password: { env: 'SHOP_PG_PASSWORD' } };
    expect(resolveTargetPassword(target, { SHOP_PG_PASSWORD: 's3cret\n' })).toBe('s3cret\n');
  });

  it('names the target and variable when the variable is missing, and leaks nothing else', () => {
    const env = { OTHER_SECRET: 'do-not-print', SHOP_PG_PASSWORD_OLD: 'old-secret' };
    const err = thrown(() => resolveTargetPassword({ name: 'shop', password: { env: 'SHOP_PG_PASSWORD' } }, env));
    expect(err.target).toBe('shop');
    expect(err.message).toContain('target "shop"');
    expect(err.message).toContain('SHOP_PG_PASSWORD is not set');
    expect(err.message).not.toContain('do-not-print');
    expect(err.message).not.toContain('old-secret');
  });

  it('refuses an empty variable', () => {
    const err = thrown(() => resolveTargetPassword({ name: 'shop', password: { env: 'PW' } }, { PW: '' }));
    expect(err.message).toBe('target "shop": environment variable PW is empty');
  });

  it('reads a file and strips exactly one trailing newline', () => {
    const lf = join(dir, 'lf');
    const crlf = join(dir, 'crlf');
    const two = join(dir, 'two');
    writeFileSync(lf, 'pa ss\n');
    writeFileSync(crlf, 'pass\r\n');
    writeFileSync(two, 'pass\n\n');
    expect(resolveTargetPassword({ name: 't', password: { file: lf } })).toBe('pa ss');
    expect(resolveTargetPassword({ name: 't', password: { file: crlf } })).toBe('pass');
    expect(resolveTargetPassword({ name: 't', password: { file: two } })).toBe('pass\n');
  });

  it('names the target and file when the file is missing or empty', () => {
    const missing = join(dir, 'missing');
    const err = thrown(() => resolveTargetPassword({ name: 'ci', password: { file: missing } }));
    expect(err.message).toBe(`target "ci": cannot read password file ${missing} (ENOENT)`);
    const empty = join(dir, 'empty');
    writeFileSync(empty, '\n');
    expect(thrown(() => resolveTargetPassword({ name: 'ci', password: { file: empty } })).message).toBe(
      `target "ci": password file ${empty} is empty`,
    );
  });
});
